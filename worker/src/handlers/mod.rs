//! Job dispatch: one module per job kind. An unknown kind is a terminal error (dead-lettered with
//! its name), never a crash or a retry loop.

pub mod diag;
pub mod notify;
pub mod transform;

use onomancer_shared::queue::JobHandler;
use onomancer_shared::{Envelope, JobError, JobKind, JobOutcome};

/// Every handler this worker runs, with the clients they need.
#[derive(Clone, Default)]
pub struct Handlers {}

impl Handlers {
    /// Handlers with no external clients (diagnostic kinds only).
    pub fn diagnostics_only() -> Self {
        Self {}
    }
}

impl JobHandler for Handlers {
    async fn handle(&self, job: Envelope) -> Result<JobOutcome, JobError> {
        match job.kind.as_str() {
            JobKind::NOOP | JobKind::SLEEP => diag::run(&job).await,
            other => Err(JobError::terminal(format!("unknown job kind {other:?}"))),
        }
    }
}
