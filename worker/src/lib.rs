//! The worker role: claims jobs from the Redis Streams queue and runs their handlers (transforms,
//! notifications, Discord commands, digests), posting results. Scale by running more processes.

pub mod handlers;
pub mod transform;

use std::sync::Arc;

use anyhow::Context;
use onomancer_shared::db::Database;
use onomancer_shared::integrations::discord::{DiscordConfig, DiscordPoster};
use onomancer_shared::queue::{
    default_consumer_name, Queue, QueueConfig, WorkerOptions, WorkerRuntime,
};
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::TenantRegistry;
use tokio_util::sync::CancellationToken;

use handlers::decisions::DecisionSearch;
pub use handlers::Handlers;
use handlers::{DigestHandler, DiscordCommandHandler, NotifyHandler, TransformHandler};
use onomancer_shared::activity::ActivityStore;
use onomancer_shared::admission::Admission;
use onomancer_shared::usage::{UsageMetrics, UsageStore};

/// Opens the database and builds every handler this worker can run with the settings it has and
/// the tenants its process loaded.
pub async fn build_handlers(
    settings: &Settings,
    tenants: Arc<TenantRegistry>,
    queue: &Queue,
    registry: &prometheus::Registry,
) -> anyhow::Result<Handlers> {
    let db = Database::open(&settings.database_url)
        .await
        .context("opening the database (DATABASE_URL)")?;
    // One store for every handler, so every usage record also moves the seed's cost metrics
    // (`onomancer_tokens_used_total`, `onomancer_api_calls_total`,
    // `onomancer_estimated_cost_dollars`) on this worker's `/metrics`.
    let usage = UsageStore::with_metrics(
        db.clone(),
        UsageMetrics::register(registry).context("registering cost metrics")?,
    );
    let transform = match settings.anthropic_api_key {
        Some(_) => Some(TransformHandler::from_settings(
            settings,
            tenants.clone(),
            queue,
            &usage,
            registry,
        )?),
        None => {
            tracing::warn!("ANTHROPIC_API_KEY is not set: transform jobs will be dead-lettered with that reason");
            None
        }
    };
    let discord = match DiscordConfig::from_settings(settings, &tenants.defaults().rate_limits) {
        Some(config) => Some(DiscordPoster::new(
            config,
            queue.conn(),
            queue.keys().clone(),
        )?),
        None => {
            tracing::warn!("DISCORD_BOT_TOKEN or DISCORD_APPLICATION_ID is not set: notifications and slash commands will be dead-lettered with that reason");
            None
        }
    };
    let notify = discord.clone().map(|discord| NotifyHandler {
        tenants: tenants.clone(),
        discord,
    });
    let decisions = DecisionSearch::from_settings(settings, &tenants, queue, &usage)?;
    let discord_command = discord.map(|discord| DiscordCommandHandler {
        tenants: tenants.clone(),
        queue: queue.clone(),
        admission: Admission::new(queue.conn(), queue.keys().clone()),
        usage: Some(usage.clone()),
        discord,
        transform: transform.clone(),
        decisions: Some(decisions.clone()),
    });
    let digest = Some(DigestHandler::from_settings(
        settings,
        tenants.clone(),
        queue,
        &usage,
    )?);
    Ok(Handlers {
        transform,
        notify,
        discord_command,
        digest,
        activity: Some(ActivityStore::new(db)),
        decisions: Some(decisions.store),
    })
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
