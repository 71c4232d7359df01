//! Claude calls paid for once per job. A job runs at least once, and a retry after Claude answered
//! (Discord or Google failed afterwards) must not pay again: the text is kept in Redis under the
//! job the moment it arrives. Every paid call is on the bill: its usage row is keyed by the
//! billed message's id (with the job and step as columns), so a call repeated after a crash
//! between the answer and the store is a second row, not hidden behind the first.
//! Digests and `/decisions` answers go through [`ClaudeOnce::ask`].

use std::future::Future;
use std::time::Duration;

use redis::AsyncCommands;

use onomancer_shared::llm::{ClaudeClient, ClaudeConfig, MessagesRequest, Prices};
use onomancer_shared::queue::{Queue, RateLimiter};
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::TenantRegistry;
use onomancer_shared::upstream::UpstreamPause;
use onomancer_shared::usage::{format_dollars, UsageRecord, UsageStore};
use onomancer_shared::{Envelope, JobError, KeySpace, RedisConn};

use crate::transform::wiring::{models_and_prices, rate_limiter};

/// What a Claude call needs, and where its text waits for retries. Cheap to clone.
#[derive(Clone)]
pub struct ClaudeOnce {
    /// `None`: no `ANTHROPIC_API_KEY` on this worker; asking fails terminally, saying so.
    pub claude: Option<ClaudeClient>,
    /// Shared per-tenant Claude rate limit (`None` in tools and tests).
    pub limiter: Option<RateLimiter>,
    /// Usage records, one per paid call.
    pub usage: UsageStore,
    /// Model prices for the usage cost.
    pub prices: Prices,
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
    /// From the process settings: Claude when `ANTHROPIC_API_KEY` is set, the shared rate
    /// limiter, `models.transform` and the prices of `defaults.json`, and `usage`.
    pub fn from_settings(
        settings: &Settings,
        tenants: &TenantRegistry,
        queue: &Queue,
        usage: &UsageStore,
    ) -> anyhow::Result<Self> {
        let (models, prices) = models_and_prices(tenants.defaults());
        let claude = match settings.anthropic_api_key {
            // A 429 on the shared key pauses every worker's calls.
            Some(_) => Some(
                ClaudeClient::new(ClaudeConfig::from_settings(settings)?)?
                    .with_pause(UpstreamPause::new(queue.conn(), queue.keys().clone())),
            ),
            None => None,
        };
        Ok(Self {
            claude,
            limiter: Some(rate_limiter(queue, tenants)),
            usage: usage.clone(),
            prices,
            model: models.transform,
            redis: queue.conn(),
            keys: queue.keys().clone(),
        })
    }

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
        if let Some(limiter) = &self.limiter {
            limiter.acquire(&job.tenant, "claude").await?;
        }
        let message = claude.messages(&request).await?.message;
        if message.truncated() {
            tracing::warn!(step, "Claude stopped at max_tokens; {what} is cut off");
        }
        let record =
            UsageRecord::claude_reply(job.tenant.clone(), operation, &message, &self.prices)
                .job_step(job.id.clone(), step);
        if let Err(e) = self.usage.record_paid(&record).await {
            // The text is paid for; failing now would pay again on the retry.
            tracing::error!(error = %e, step, message = %message.id, "could not record the usage of a Claude call");
        } else {
            tracing::info!(cost = %format_dollars(record.cost_micros), step, "Claude answered");
        }
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
