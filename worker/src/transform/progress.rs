//! Following a transform through the queue (for `onomancer transform` and tests): enqueue the
//! job, then poll its status and report every change until it succeeds or is dead-lettered.

use std::time::Duration;

use onomancer_shared::queue::{JobState, JobStatus, Queue, QueueError};
use onomancer_shared::{JobId, Lane, NewJob, TenantId};

use onomancer_shared::transform_job::TransformJob;

/// Enqueues a transform on the interactive lane.
pub async fn enqueue_transform(
    queue: &Queue,
    tenant: &TenantId,
    job: &TransformJob,
) -> Result<JobId, QueueError> {
    let enq = queue
        .enqueue(NewJob::new(tenant.clone(), job).lane(Lane::Interactive))
        .await?;
    Ok(enq.id)
}

/// Polls the job's status every `poll` and calls `on_change` when its state, attempt or progress
/// (personas finished) changes; returns the final status (succeeded or dead). `None` if the
/// status expired or never existed.
pub async fn follow_job(
    queue: &Queue,
    tenant: &TenantId,
    id: &JobId,
    poll: Duration,
    mut on_change: impl FnMut(&JobStatus),
) -> Result<Option<JobStatus>, QueueError> {
    let mut last: Option<(JobState, u32, Option<serde_json::Value>)> = None;
    loop {
        let Some(status) = queue.status(tenant, id).await? else {
            return Ok(None);
        };
        let now = (status.state, status.attempt, status.progress.clone());
        if last.as_ref() != Some(&now) {
            on_change(&status);
            last = Some(now);
        }
        if matches!(status.state, JobState::Succeeded | JobState::Dead) {
            return Ok(Some(status));
        }
        tokio::time::sleep(poll).await;
    }
}
