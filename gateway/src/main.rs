//! The `onomancer-gateway` binary: settings from the environment, telemetry, then
//! [`onomancer_gateway::run`] until SIGTERM or Ctrl-C.

use onomancer_shared::settings::Settings;

/// mimalloc: the queue's hot path allocates per job; glibc malloc was a fifth of its CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    onomancer_shared::telemetry::init(settings.log_format);
    let shutdown = onomancer_shared::shutdown::on_signals();
    onomancer_gateway::run(&settings, shutdown).await
}
