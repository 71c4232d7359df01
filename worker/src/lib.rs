//! The worker role: claims jobs from the Redis Streams queue and runs their handlers (transforms,
//! notifications, Discord commands, digests), posting results. Scale by running more processes.

pub mod app;
pub mod billed;
pub mod handlers;
pub mod transform;

use std::sync::Arc;

use anyhow::Context;
use onomancer_shared::queue::{
    default_consumer_name, Queue, QueueConfig, WorkerOptions, WorkerRuntime,
};
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::TenantRegistry;
use tokio_util::sync::CancellationToken;

pub use app::Services;
pub use handlers::Handlers;

/// Builds this worker's clients once ([`Services::build`]: database, Claude, Discord, Google,
/// cache, from the tenants its process loaded) and every handler it can run from them.
pub async fn build_handlers(
    settings: &Settings,
    tenants: Arc<TenantRegistry>,
    queue: &Queue,
    registry: &prometheus::Registry,
) -> anyhow::Result<Handlers> {
    let services = Services::build(settings, tenants, queue, registry).await?;
    Ok(Handlers::from_services(&services))
}

/// Runs a worker until `shutdown` is cancelled: loads the tenants (a broken tenant config stops
/// the worker here, naming the file and field), then [`run_with_tenants`].
pub async fn run(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let tenants = Arc::new(
        TenantRegistry::load(&settings.config_dir).context("loading tenant configuration")?,
    );
    run_with_tenants(settings, tenants, shutdown).await
}

/// Runs a worker with the configuration its process loaded once (`onomancer up` shares it with
/// the other roles) until `shutdown` is cancelled: connects, serves `/metrics` on
/// `ONOMANCER_METRICS_ADDR` if set, and drains gracefully at the end.
pub async fn run_with_tenants(
    settings: &Settings,
    tenants: Arc<TenantRegistry>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let registry = prometheus::Registry::new();
    let queue_config = QueueConfig::from(&tenants.defaults().queue).with_settings(settings);
    let shutdown_grace = queue_config.shutdown_grace;
    let Some(queue) = Queue::connect_waiting(settings, queue_config, &registry, &shutdown)
        .await
        .context("connecting to Redis")?
    else {
        return Ok(());
    };
    let handlers = Arc::new(build_handlers(settings, tenants, &queue, &registry).await?);
    let mut options = WorkerOptions::new(
        settings
            .worker_name
            .clone()
            .unwrap_or_else(default_consumer_name),
    );
    options.concurrency = settings.worker_concurrency;
    options.shutdown_grace = shutdown_grace;
    let runtime = WorkerRuntime::new(queue.clone(), handlers, options);
    let handle = runtime.handle();
    if let Some(addr) = settings.metrics_addr {
        let ready_queue = queue.clone();
        let ready: onomancer_shared::ops_http::ReadyCheck = Arc::new(move || {
            let q = ready_queue.clone();
            let h = handle.clone();
            Box::pin(async move {
                let redis =
                    q.ping().await.is_ok() && h.ready.load(std::sync::atomic::Ordering::Relaxed);
                onomancer_shared::ops_http::Readiness {
                    redis,
                    tenants: None,
                }
            })
        });
        let token = shutdown.clone();
        let (bound, _) = onomancer_shared::ops_http::serve(addr, registry, ready, async move {
            token.cancelled().await
        })
        .await
        .with_context(|| format!("binding the metrics address {addr}"))?;
        tracing::info!(%bound, "serving /metrics, /healthz, /readyz");
    }
    runtime.run(shutdown.cancelled_owned()).await?;
    Ok(())
}
