//! How a claimed entry ends: acknowledged (batched), rescheduled, deferred, dead-lettered, or
//! handed back (unstarted, or unfinished at shutdown). Each transition is one atomic script, so
//! a job is always in exactly one place.

use std::sync::Arc;
use std::time::Duration;

use crate::ids::{JobId, TenantId};
use crate::job::{Envelope, JobError, Lane};
use crate::queue::spread;
use crate::queue::{now_ms, Queue, QueueError, GROUP};

/// A claimed stream entry.
#[derive(Clone, Debug)]
pub(crate) struct Claimed {
    /// The consumer that claimed it (whose owned set names the stream).
    pub consumer: Arc<str>,
    /// The job's id, from the entry's `i` field or read from an envelope that does not decode;
    /// `None` only for an entry with neither.
    pub job_id: Option<JobId>,
    /// True when the claim script already marked the job running.
    pub marked: bool,
    /// True when the entry names its job (its `i` field): a read entry's job is then marked
    /// running by the worker's writer, in order before its acknowledgement (`writer.rs`).
    pub named: bool,
    /// Stream key it was read from.
    pub stream: String,
    /// Entry id in that stream.
    pub entry_id: String,
    /// Raw envelope bytes, kept for dead letters of entries that do not decode. Empty once the
    /// envelope is decoded for a run: the decoded payload is a view into these bytes, and a
    /// dead letter or hand-back of a decoded job writes its envelope encoded again, so the
    /// entry (a transform's whole document) is held once per job.
    pub raw: Vec<u8>,
    /// Tenant and lane the stream belongs to (known even when the body is unreadable).
    pub tenant: TenantId,
    /// Lane of the stream.
    pub lane: Lane,
    /// Times Redis delivered this entry (1 for a fresh read).
    pub deliveries: u32,
}

impl Claimed {
    /// The entry's bytes: as read, or (once its envelope was decoded for a run) `env` encoded
    /// again.
    fn entry_bytes<'a>(&'a self, env: Option<&Envelope>) -> std::borrow::Cow<'a, [u8]> {
        match env {
            Some(env) if self.raw.is_empty() => std::borrow::Cow::Owned(env.encode()),
            _ => std::borrow::Cow::Borrowed(&self.raw),
        }
    }
}

impl Queue {
    /// Reschedules a failed or deferred job through the delayed set.
    pub(crate) async fn reschedule(
        &self,
        claimed: &Claimed,
        env: &Envelope,
        wait: Duration,
        state: &str,
        error: &str,
    ) -> Result<(), QueueError> {
        let keys = self.keys();
        let due = now_ms() + wait.as_millis() as i64;
        let member = format!("{}|{}|{}", env.lane.as_str(), env.tenant, env.id);
        let _: i64 = self
            .scripts()
            .retry
            .key(&claimed.stream)
            .key(keys.delayed())
            .key(keys.delayed_bodies())
            .key(keys.status(&env.tenant, &env.id))
            .key(keys.owned(&claimed.consumer))
            .arg(GROUP)
            .arg(&claimed.entry_id)
            .arg(env.id.as_str())
            .arg(env.encode())
            .arg(due)
            .arg(member)
            .arg(state)
            .arg(env.attempt)
            .arg(error)
            .arg(now_ms())
            .arg(&*claimed.consumer)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Moves a claimed entry to the dead-letter stream with `reason`; the job's status becomes
    /// `dead` whenever its id is known (from the envelope, or the entry when it does not decode).
    pub(crate) async fn dead_letter(
        &self,
        claimed: &Claimed,
        env: Option<&Envelope>,
        reason: &str,
    ) -> Result<(), QueueError> {
        let keys = self.keys();
        let job_id = env.map(|e| &e.id).or(claimed.job_id.as_ref());
        let mut inv = self.scripts().dead_letter.prepare_invoke();
        inv.key(&claimed.stream)
            .key(keys.dead_letter())
            .key(keys.owned(&claimed.consumer));
        if let Some(id) = job_id {
            inv.key(keys.status(&claimed.tenant, id));
        }
        inv.arg(GROUP)
            .arg(&claimed.entry_id)
            .arg(job_id.map(|id| id.as_str()).unwrap_or(""))
            .arg(claimed.tenant.as_str())
            .arg(env.map(|e| e.kind.as_str()).unwrap_or(""))
            .arg(claimed.lane.as_str())
            .arg(env.map(|e| e.attempt).unwrap_or(0))
            .arg(reason)
            .arg(&*claimed.entry_bytes(env))
            .arg(now_ms())
            .arg(&*claimed.consumer);
        let _: i64 = inv.invoke_async(&mut self.conn()).await?;
        let kind = env.map(|e| e.kind.as_str()).unwrap_or("unknown");
        self.metrics()
            .dead_lettered
            .with_label_values(&[claimed.tenant.as_str(), kind])
            .inc();
        tracing::warn!(
            tenant = %claimed.tenant,
            job_id = job_id.map(|id| id.as_str()).unwrap_or(""),
            kind,
            reason,
            "job moved to the dead-letter stream"
        );
        Ok(())
    }

    /// Gives an unstarted or unfinished entry back to its stream (and its tenant back to the
    /// ready index) so another worker starts it at once.
    pub(crate) async fn hand_back(
        &self,
        claimed: &Claimed,
        env: &Envelope,
    ) -> Result<(), QueueError> {
        let keys = self.keys();
        let _: i64 = self
            .scripts()
            .handback
            .key(&claimed.stream)
            .key(keys.status(&env.tenant, &env.id))
            .key(keys.owned(&claimed.consumer))
            .arg(GROUP)
            .arg(&claimed.entry_id)
            .arg(&*claimed.entry_bytes(Some(env)))
            .arg(now_ms())
            .arg(env.id.as_str())
            .arg(&*claimed.consumer)
            .arg(keys.queue_keys_prefix())
            .arg(claimed.lane.as_str())
            .arg(claimed.tenant.as_str())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Acts on a handler's failure: retry with backoff (an attempt spent), defer without
    /// spending one (until `defer_deadline` after the first deferral), or dead-letter.
    pub(crate) async fn fail(
        &self,
        claimed: &Claimed,
        env: &Envelope,
        error: &JobError,
    ) -> Result<(), QueueError> {
        let labels = [env.tenant.as_str(), env.kind.as_str()];
        match error {
            JobError::Terminal { message } => self.dead_letter(claimed, Some(env), message).await,
            JobError::Retryable {
                message,
                retry_after,
            } => {
                if env.attempt >= self.config().max_attempts {
                    let reason = format!(
                        "gave up after {} attempts; last error: {message}",
                        env.attempt
                    );
                    return self.dead_letter(claimed, Some(env), &reason).await;
                }
                let wait = self
                    .config()
                    .retry
                    .delay(env.attempt, *retry_after, fastrand::f64());
                let mut next = env.clone();
                next.attempt += 1;
                self.metrics().retried.with_label_values(&labels).inc();
                tracing::info!(attempt = env.attempt, wait_ms = wait.as_millis() as u64, error = %message, "job will be retried");
                self.reschedule(claimed, &next, wait, "retrying", message)
                    .await
            }
            JobError::Deferred {
                wait,
                reason,
                upstream,
            } => {
                let now = now_ms();
                // Only the upstream's refusals start (and count toward) the deadline: waiting for
                // Onomancer's own limits is queueing, however long the tenant's backlog.
                let since = match (*upstream, env.deferred_since_ms) {
                    (_, Some(since)) => Some(since),
                    (true, None) => Some(now),
                    (false, None) => None,
                };
                let deadline = self.config().defer_deadline;
                let waited = Duration::from_millis((now - since.unwrap_or(now)).max(0) as u64);
                if *upstream && waited >= deadline {
                    let reason = format!(
                        "deferred by upstream limits for {:.1}s, past the deadline of {:.1}s (queue.deferDeadlineMs); last: {reason}",
                        waited.as_secs_f64(),
                        deadline.as_secs_f64()
                    );
                    return self.dead_letter(claimed, Some(env), &reason).await;
                }
                self.metrics().deferred.with_label_values(&labels).inc();
                // Never earlier than asked, spread so a window of limited jobs does not come
                // back at once.
                let wait = spread(*wait, fastrand::f64());
                let mut next = env.clone();
                next.deferred_since_ms = since;
                tracing::debug!(wait_ms = wait.as_millis() as u64, reason, "job deferred");
                self.reschedule(
                    claimed,
                    &next,
                    wait,
                    "queued",
                    &format!("deferred: {reason}"),
                )
                .await
            }
        }
    }
}
