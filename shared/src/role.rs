//! The start every role binary shares (`onomancer-gateway`, `onomancer-worker`,
//! `onomancer-scheduler`): transparent huge pages off before the heap grows, the async runtime,
//! settings from the environment, telemetry, and a shutdown token cancelled by SIGTERM or
//! Ctrl-C. A role's `main` parses its arguments and hands its `run` function to [`main`].

use std::future::Future;

use tokio_util::sync::CancellationToken;

use crate::settings::Settings;

/// Runs one role until it returns: builds the runtime, loads [`Settings`], starts telemetry
/// and the signal handler, then awaits `run(settings, shutdown)`.
pub fn main<F, Fut>(run: F) -> anyhow::Result<()>
where
    F: FnOnce(Settings, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    // Before the runtime's threads and the heap grow (see the function).
    let thp = crate::memory::disable_transparent_huge_pages();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let settings = Settings::from_env()?;
            crate::telemetry::init(settings.log_format);
            if let Err(e) = thp {
                tracing::info!(error = %e, "could not turn transparent huge pages off; the heap may take more memory");
            }
            let shutdown = crate::shutdown::on_signals();
            run(settings, shutdown).await
        })
}
