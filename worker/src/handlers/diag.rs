//! Diagnostic jobs: `diag.noop` (benchmarks, smoke tests) and `diag.sleep` (operational checks of
//! long jobs, claim extension and shutdown behaviour).

use std::time::Duration;

use onomancer_shared::{Envelope, JobError, JobKind, JobOutcome};
use serde::{Deserialize, Serialize};

/// Payload of `diag.sleep`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SleepPayload {
    /// How long to sleep, ms.
    pub ms: u64,
    /// Fail this many first attempts with a retryable error (exercises the retry path).
    #[serde(default)]
    pub fail_attempts: u32,
    /// Fail terminally with this message.
    #[serde(default)]
    pub terminal: Option<String>,
}

/// Runs a diagnostic job.
pub async fn run(job: &Envelope) -> Result<JobOutcome, JobError> {
    match job.kind.as_str() {
        JobKind::NOOP => Ok(JobOutcome::default()),
        JobKind::SLEEP => {
            let p: SleepPayload = job.payload_as()?;
            if let Some(msg) = p.terminal {
                return Err(JobError::terminal(msg));
            }
            if job.attempt <= p.fail_attempts {
                return Err(JobError::retryable(format!(
                    "diag.sleep failing attempt {} of {} on purpose",
                    job.attempt, p.fail_attempts
                )));
            }
            tokio::time::sleep(Duration::from_millis(p.ms)).await;
            Ok(JobOutcome {
                result: Some(serde_json::json!({ "slept_ms": p.ms, "attempt": job.attempt })),
            })
        }
        other => Err(JobError::terminal(format!("not a diagnostic job: {other}"))),
    }
}
