//! The `onomancer-worker` binary: arguments (only `--help` and `--version`: every setting is an
//! environment variable), settings, telemetry, then [`onomancer_worker::run`] until SIGTERM or
//! Ctrl-C.

use clap::Parser;
use onomancer_shared::settings::Settings;

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
    // Before the runtime's threads and the heap grow (see the function).
    let thp = onomancer_shared::memory::disable_transparent_huge_pages();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            Args::parse();
            let settings = Settings::from_env()?;
            onomancer_shared::telemetry::init(settings.log_format);
            if let Err(e) = thp {
                tracing::info!(error = %e, "could not turn transparent huge pages off; the heap may take more memory");
            }
            let shutdown = onomancer_shared::shutdown::on_signals();
            onomancer_worker::run(&settings, shutdown).await
        })
}
