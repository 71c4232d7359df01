//! Running the roles: each alone, or all in one process.

use std::sync::Arc;

use anyhow::Context as _;
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::TenantRegistry;
use tokio_util::sync::CancellationToken;

fn init(settings: &Settings) -> CancellationToken {
    onomancer_shared::telemetry::init(settings.log_format);
    onomancer_shared::shutdown::on_signals()
}

/// `onomancer up`: gateway, worker and scheduler in one process, sharing one shutdown and the
/// configuration loaded once. If any role fails, the others are stopped too and the first error
/// is returned.
pub async fn up(settings: Settings) -> anyhow::Result<()> {
    let shutdown = init(&settings);
    let tenants = Arc::new(
        TenantRegistry::load(&settings.config_dir).context("loading tenant configuration")?,
    );
    let (tg, tw, ts) = (tenants.clone(), tenants.clone(), tenants);
    let mut roles = tokio::task::JoinSet::new();
    let (g, w, mut s) = (settings.clone(), settings.clone(), settings);
    // One metrics address per process: the worker serves it, with the queue depth gauges it
    // refreshes itself.
    s.metrics_addr = None;
    let (t1, t2, t3) = (shutdown.clone(), shutdown.clone(), shutdown.clone());
    roles.spawn(async move {
        let run = onomancer_gateway::startup::run_with_tenants(&g, tg, t1);
        ("gateway", run.await)
    });
    roles.spawn(async move {
        let run = onomancer_worker::run_with_tenants(&w, tw, t2);
        ("worker", run.await)
    });
    roles.spawn(async move {
        let run = onomancer_scheduler::run_with_tenants(&s, &ts, t3);
        ("scheduler", run.await)
    });
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
