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
use tokio_util::sync::CancellationToken;

pub use app::Services;
pub use handlers::Handlers;

/// Builds this worker's clients once ([`Services::build`]: tenants, database, Claude, Discord,
/// Google, cache) and every handler it can run from them. A broken tenant config stops the
/// worker here, naming the file and field.
pub async fn build_handlers(
    settings: &Settings,
    queue: &Queue,
    registry: &prometheus::Registry,
) -> anyhow::Result<Handlers> {
    let services = Services::build(settings, queue, registry).await?;
    Ok(Handlers::from_services(&services))
}

/// Runs a worker until `shutdown` is cancelled: connects, serves `/metrics` on
/// `ONOMANCER_METRICS_ADDR` if set, and drains gracefully at the end.
pub async fn run(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let registry = prometheus::Registry::new();
    let queue_config = QueueConfig::load_with_settings(settings).map_err(anyhow::Error::msg)?;
    let shutdown_grace = queue_config.shutdown_grace;
    let queue = Queue::connect(
        &settings.redis_url,
        settings.key_space(),
        queue_config,
        &registry,
    )
    .await
    .with_context(|| {
        format!(
            "connecting to Redis at {}",
            onomancer_shared::redis_conn::redact_url(&settings.redis_url)
        )
    })?;
    let handlers = Arc::new(build_handlers(settings, &queue, &registry).await?);
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
                q.ping().await.is_ok() && h.ready.load(std::sync::atomic::Ordering::Relaxed)
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
