//! The `onomancer-gateway` binary: its arguments (only `--help` and `--version`: every setting
//! is an environment variable), then [`onomancer_gateway::run`] through the start every role
//! shares ([`onomancer_shared::role::main`]) until SIGTERM or Ctrl-C.

use clap::Parser;

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

fn main() -> anyhow::Result<()> {
    Args::parse();
    onomancer_shared::role::main(|settings, shutdown| async move {
        onomancer_gateway::run(&settings, shutdown).await
    })
}
