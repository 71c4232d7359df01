//! The `onomancer-gateway` binary: arguments (only `--help` and `--version`: every setting is an
//! environment variable), settings from the environment, telemetry, then
//! [`onomancer_gateway::run`] until SIGTERM or Ctrl-C.

use clap::Parser;
use onomancer_shared::settings::Settings;

/// mimalloc: the queue's hot path allocates per job; glibc malloc was a fifth of its CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Onomancer's gateway: verifies GitHub and Linear webhooks, Discord interactions and REST
/// calls, and turns them into jobs in Redis.
#[derive(Parser, Debug)]
#[command(
    name = "onomancer-gateway",
    version,
    about,
    after_help = "Settings are environment variables (REDIS_URL, ONOMANCER_HTTP_ADDR, \
                  ONOMANCER_HTTP_HEADER_TIMEOUT_MS, ...): see the README."
)]
struct Args {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Args::parse();
    let settings = Settings::from_env()?;
    onomancer_shared::telemetry::init(settings.log_format);
    let shutdown = onomancer_shared::shutdown::on_signals();
    onomancer_gateway::run(&settings, shutdown).await
}
