//! The `onomancer-worker` binary: its arguments (only `--help` and `--version`: every setting
//! is an environment variable), then [`onomancer_worker::run`] through the start every role
//! shares ([`onomancer_shared::role::main`]) until SIGTERM or Ctrl-C.

use clap::Parser;

/// mimalloc: the queue's hot path allocates per job; glibc malloc was a fifth of its CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Onomancer's worker: claims jobs from the Redis queue and runs them (transforms with Claude,
/// Discord notifications, slash commands, digests). Scale by running more.
#[derive(Parser, Debug)]
#[command(
    name = "onomancer-worker",
    version,
    about,
    after_help = "Settings are environment variables (REDIS_URL, DATABASE_URL, \
                  ONOMANCER_WORKER_CONCURRENCY, ANTHROPIC_API_KEY, ...): see the README."
)]
struct Args {}

fn main() -> anyhow::Result<()> {
    Args::parse();
    onomancer_shared::role::main(|settings, shutdown| async move {
        onomancer_worker::run(&settings, shutdown).await
    })
}
