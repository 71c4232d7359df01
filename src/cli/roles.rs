//! Running the roles: each alone, or all in one process.

use onomancer_shared::settings::Settings;
use tokio_util::sync::CancellationToken;

fn init(settings: &Settings) -> CancellationToken {
    onomancer_shared::telemetry::init(settings.log_format);
    onomancer_shared::shutdown::on_signals()
}

/// `onomancer up`: gateway, worker and scheduler in one process, sharing one shutdown.
pub async fn up(settings: Settings) -> anyhow::Result<()> {
    let shutdown = init(&settings);
    let (w, s) = (settings.clone(), settings.clone());
    let (t1, t2) = (shutdown.clone(), shutdown.clone());
    let worker = tokio::spawn(async move { onomancer_worker::run(&w, t1).await });
    let scheduler = tokio::spawn(async move { onomancer_scheduler::run(&s, Vec::new(), t2).await });
    let results = (worker.await?, scheduler.await?);
    results.0?;
    results.1?;
    Ok(())
}

/// `onomancer gateway`.
pub async fn gateway(settings: Settings) -> anyhow::Result<()> {
    let _shutdown = init(&settings);
    anyhow::bail!("the gateway role is not wired into this build yet")
}

/// `onomancer worker`.
pub async fn worker(settings: Settings) -> anyhow::Result<()> {
    let shutdown = init(&settings);
    onomancer_worker::run(&settings, shutdown).await
}

/// `onomancer scheduler`.
pub async fn scheduler(settings: Settings) -> anyhow::Result<()> {
    let shutdown = init(&settings);
    onomancer_scheduler::run(&settings, Vec::new(), shutdown).await
}
