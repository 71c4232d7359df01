//! Diagnostic jobs: `diag.noop` (benchmarks, smoke tests) and `diag.sleep` (operational checks of
//! long jobs, claim extension and shutdown behaviour).

use std::time::Duration;

use onomancer_shared::payloads::SleepPayload;
use onomancer_shared::{Envelope, JobError, JobKind, JobOutcome};

/// Runs a diagnostic job.
pub async fn run(job: &Envelope) -> Result<JobOutcome, JobError> {
    match &job.kind {
        JobKind::Noop => Ok(JobOutcome::default()),
        JobKind::Sleep => {
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
