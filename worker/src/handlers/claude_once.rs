//! Claude calls paid for once per job. A job runs at least once, and a retry after Claude answered
//! (Discord or Google failed afterwards) must not pay again: the text is kept in Redis under the
//! job the moment it arrives. Every paid call is on the bill: its usage row is keyed by the
//! billed message's id (with the job and step as columns), so a call repeated after a crash
//! between the answer and the store is a second row, not hidden behind the first.
//! Digests and `/decisions` answers go through [`ClaudeOnce::ask`], whose call is the worker's
//! one billed Claude call ([`BilledClaude::call`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;

use onomancer_shared::llm::MessagesRequest;
use onomancer_shared::{Envelope, JobError, KeySpace, RedisConn};

use crate::billed::{Bill, BilledClaude};

/// What a Claude call needs, and where its text waits for retries. Cheap to clone.
#[derive(Clone)]
pub struct ClaudeOnce {
    /// The worker's billed Claude (rate limit, call, usage row); `None`: no `ANTHROPIC_API_KEY`
    /// on this worker, and asking fails terminally, saying so.
    pub claude: Option<Arc<BilledClaude>>,
    /// The model requests name.
    pub model: String,
    /// Where texts wait for retries of their job.
    pub redis: RedisConn,
    /// Key namespace of `redis`.
    pub keys: KeySpace,
}

/// A text Claude wrote for a job.
#[derive(Debug)]
pub struct Written {
    /// The text.
    pub text: String,
    /// Kept from an earlier run of the job: no call was made now.
    pub reused: bool,
}

impl ClaudeOnce {
    /// The Redis key of `job`'s `step` text.
    pub fn text_key(&self, job: &Envelope, step: &str) -> String {
        self.keys
            .data(&job.tenant, format_args!("{step}:{}", job.id))
    }

    /// The text for `job`'s `step`: the one kept from an earlier run, or Claude's answer to the
    /// request `build` makes (only called when a call is needed), recorded as usage `operation`
    /// and kept for `ttl`. `what` names the text in errors ("the digest").
    pub async fn ask<F, Fut>(
        &self,
        job: &Envelope,
        step: &str,
        operation: &str,
        what: &str,
        ttl: Duration,
        build: F,
    ) -> Result<Written, JobError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<MessagesRequest, JobError>>,
    {
        let redis_error = |e: redis::RedisError| JobError::retryable(format!("Redis: {e}"));
        let key = self.text_key(job, step);
        let mut conn = self.redis.clone();
        let kept: Option<String> = conn.get(&key).await.map_err(redis_error)?;
        if let Some(text) = kept {
            return Ok(Written { text, reused: true });
        }
        let claude = self.claude.as_ref().ok_or_else(|| {
            JobError::terminal(format!(
                "ANTHROPIC_API_KEY is not set on this worker: {what} cannot be written"
            ))
        })?;
        let request = build(self.model.clone()).await?;
        let bill = Bill {
            tenant: &job.tenant,
            job: &job.id,
            step,
            operation,
            user: None,
        };
        let message = claude.call(bill, &request).await?;
        let text = message.text();
        if let Err(e) = conn.set_ex::<_, _, ()>(&key, &text, ttl.as_secs()).await {
            // The text is in hand: use it now; only a retry of this job would pay again.
            tracing::warn!(error = %e, step, "could not keep Claude's text for retries");
        }
        Ok(Written {
            text,
            reused: false,
        })
    }
}

#[cfg(test)]
mod tests;
