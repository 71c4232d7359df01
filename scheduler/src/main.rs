//! The `onomancer-scheduler` binary: arguments (only `--help` and `--version`: every setting is
//! an environment variable), settings, telemetry, tenant schedules, then
//! [`onomancer_scheduler::run`] until SIGTERM or Ctrl-C.

use clap::Parser;
use onomancer_shared::settings::Settings;

/// mimalloc: the queue's hot path allocates per job; glibc malloc was a fifth of its CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Onomancer's scheduler: turns tenant cron schedules into jobs and keeps the queue healthy
/// (promotes delayed jobs, trims acknowledged entries, publishes depth gauges).
#[derive(Parser, Debug)]
#[command(
    name = "onomancer-scheduler",
    version,
    about,
    after_help = "Settings are environment variables (REDIS_URL, ONOMANCER_CONFIG_DIR, \
                  ONOMANCER_METRICS_ADDR, ...): see the README."
)]
struct Args {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Args::parse();
    let settings = Settings::from_env()?;
    onomancer_shared::telemetry::init(settings.log_format);
    let shutdown = onomancer_shared::shutdown::on_signals();
    onomancer_scheduler::run(&settings, shutdown).await
}
