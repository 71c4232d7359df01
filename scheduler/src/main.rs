//! The `onomancer-scheduler` binary: its arguments (only `--help` and `--version`: every setting
//! is an environment variable), then [`onomancer_scheduler::run`] through the start every role
//! shares ([`onomancer_shared::role::main`]) until SIGTERM or Ctrl-C.

use clap::Parser;

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

fn main() -> anyhow::Result<()> {
    Args::parse();
    onomancer_shared::role::main(|settings, shutdown| async move {
        onomancer_scheduler::run(&settings, shutdown).await
    })
}
