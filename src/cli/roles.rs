//! Running the roles: each alone, or all in one process.

use onomancer_shared::settings::Settings;
use tokio_util::sync::CancellationToken;

fn init(settings: &Settings) -> CancellationToken {
    onomancer_shared::telemetry::init(settings.log_format);
    onomancer_shared::shutdown::on_signals()
}

/// `onomancer up`: gateway, worker and scheduler in one process, sharing one shutdown. If any role
/// fails, the others are stopped too and the first error is returned.
pub async fn up(settings: Settings) -> anyhow::Result<()> {
    let shutdown = init(&settings);
    let mut roles = tokio::task::JoinSet::new();
    let (g, w, mut s) = (settings.clone(), settings.clone(), settings);
    // One metrics address per process: the worker serves it, with the queue depth gauges it
    // refreshes itself.
    s.metrics_addr = None;
    let (t1, t2, t3) = (shutdown.clone(), shutdown.clone(), shutdown.clone());
    roles.spawn(async move { ("gateway", onomancer_gateway::run(&g, t1).await) });
    roles.spawn(async move { ("worker", onomancer_worker::run(&w, t2).await) });
    roles.spawn(async move { ("scheduler", onomancer_scheduler::run(&s, t3).await) });
    let mut first_error = None;
    while let Some(done) = roles.join_next().await {
        let (role, result) = done?;
        if let Err(e) = result {
            tracing::error!(role, error = %format!("{e:#}"), "role failed; stopping the others");
            shutdown.cancel();
            first_error.get_or_insert(e.context(format!("the {role} role failed")));
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// `onomancer gateway`.
pub async fn gateway(settings: Settings) -> anyhow::Result<()> {
    let shutdown = init(&settings);
    onomancer_gateway::run(&settings, shutdown).await
}

/// `onomancer worker`.
pub async fn worker(settings: Settings) -> anyhow::Result<()> {
    let shutdown = init(&settings);
    onomancer_worker::run(&settings, shutdown).await
}

/// `onomancer scheduler`.
pub async fn scheduler(settings: Settings) -> anyhow::Result<()> {
    let shutdown = init(&settings);
    onomancer_scheduler::run(&settings, shutdown).await
}
