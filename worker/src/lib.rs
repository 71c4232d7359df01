//! The worker role: claims jobs from the Redis Streams queue and runs their handlers (transforms,
//! notifications, Discord commands, digests), posting results. Scale by running more processes.

pub mod handlers;
pub mod transform;

use std::sync::Arc;

use anyhow::Context;
use onomancer_shared::queue::{default_consumer_name, Queue, QueueConfig, WorkerOptions, WorkerRuntime};
use onomancer_shared::settings::Settings;
use tokio_util::sync::CancellationToken;

pub use handlers::Handlers;

/// Runs a worker until `shutdown` is cancelled: connects, serves `/metrics` on
/// `ONOMANCER_METRICS_ADDR` if set, and drains gracefully at the end.
pub async fn run(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let registry = prometheus::Registry::new();
    let queue_config = QueueConfig::load(&settings.config_dir).map_err(anyhow::Error::msg)?;
    let queue = Queue::connect(&settings.redis_url, settings.key_space(), queue_config, &registry)
        .await
        .with_context(|| {
            format!(
                "connecting to Redis at {}",
                onomancer_shared::redis_conn::redact_url(&settings.redis_url)
            )
        })?;
    let handlers = Arc::new(Handlers::diagnostics_only());
    let mut options = WorkerOptions::new(
        settings.worker_name.clone().unwrap_or_else(default_consumer_name),
    );
    options.concurrency = settings.worker_concurrency;
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
