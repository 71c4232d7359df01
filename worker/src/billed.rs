//! The one billed Claude call every handler makes: take the tenant's Claude rate-limit capacity,
//! call Claude, and put the answer on the bill (a usage row keyed by the billed message's id,
//! with the job and step as columns) the moment it arrives, before the caller stores the text.
//! Transforms ([`crate::transform::TransformEngine`]) and the once-per-job texts of digests and
//! `/decisions` ([`crate::handlers::claude_once::ClaudeOnce`]) both go through
//! [`BilledClaude::call`].

use onomancer_shared::llm::{ClaudeClient, MessagesRequest, MessagesResponse, Prices};
use onomancer_shared::queue::RateLimiter;
use onomancer_shared::usage::{format_dollars, UsageRecord, UsageStore};
use onomancer_shared::{JobError, JobId, TenantId};

/// Claude with its rate limit and its bill; a worker builds one and shares it (behind an
/// `Arc`) with every handler. Cheap to clone.
#[derive(Clone)]
pub struct BilledClaude {
    /// The Claude Messages API client (one connection pool per worker).
    pub client: ClaudeClient,
    /// The shared per-tenant `claude` limit (`None`: unlimited, in tools and tests).
    pub limiter: Option<RateLimiter>,
    /// Where every paid call's usage row goes.
    pub usage: UsageStore,
    /// Model prices, for each row's cost (and transform outcomes' costs).
    pub prices: Prices,
}

/// Who pays for a call, and for which step of which job (the usage row's columns).
#[derive(Clone, Copy, Debug)]
pub struct Bill<'a> {
    /// The tenant billed (and rate limited).
    pub tenant: &'a TenantId,
    /// The job the call belongs to.
    pub job: &'a JobId,
    /// The job's step (`transform:leadership`, `digest`, ...): a repeated step is another row.
    pub step: &'a str,
    /// The usage operation (`transform`, `summarize`, `digest`, `query`).
    pub operation: &'a str,
    /// The requesting user, when known.
    pub user: Option<&'a str>,
}

impl BilledClaude {
    /// Takes rate-limit capacity (a limit reached defers the job without spending an attempt),
    /// calls Claude (its 429 or 529 defers the job the same way, and is not billed), and records
    /// the answer's usage before returning it. A failure to record is logged, never returned:
    /// the answer is paid for, and failing now would only pay for it again on the retry.
    pub async fn call(
        &self,
        bill: Bill<'_>,
        request: &MessagesRequest,
    ) -> Result<MessagesResponse, JobError> {
        if let Some(limiter) = &self.limiter {
            limiter.acquire(bill.tenant, "claude").await?;
        }
        let message = self.client.messages(request).await?.message;
        let step = bill.step;
        if message.truncated() {
            tracing::warn!(
                step,
                max_tokens = request.max_tokens,
                "Claude stopped at max_tokens; the text is cut off"
            );
        }
        let mut record =
            UsageRecord::claude_reply(bill.tenant.clone(), bill.operation, &message, &self.prices)
                .job_step(bill.job.clone(), step);
        if let Some(user) = bill.user {
            record = record.user(user);
        }
        match self.usage.record_paid(&record).await {
            Ok(_) => {
                tracing::info!(cost = %format_dollars(record.cost_micros), step, "Claude answered");
            }
            Err(e) => {
                tracing::error!(error = %e, step, message = %message.id, "could not record the usage of a Claude call");
            }
        }
        Ok(message)
    }
}
