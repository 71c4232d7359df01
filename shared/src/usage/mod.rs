//! Usage and cost: every billable operation becomes a [`UsageRecord`] in the SQL database,
//! summarized per tenant for `/usage`, the HTTP API and quota checks, and mirrored in the seed's
//! cost metrics.
//!
//! A Claude call's record is keyed by the billed message's id ([`UsageRecord::message_key`]):
//! storing the same answer twice records it once, and every other paid call, a repeat of a job
//! step included (a retry after a failed sibling, a job reclaimed after a crash), is a row of
//! its own. The job and its step are kept as columns for reports.

pub mod metrics;
pub mod store;

#[cfg(test)]
mod claude_tests;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids::{JobId, TenantId};
use crate::llm::{MessagesResponse, Prices};

/// The token counts and cost formula live with the prices in [`crate::llm::cost`]; re-exported
/// because every usage record carries them.
pub use crate::llm::cost::{cost_micros, format_dollars, TokenCounts};
pub use metrics::UsageMetrics;
pub use store::UsageStore;

/// Operation names used in usage records (the set is open: new operations need no migration).
pub mod ops {
    /// A document written for one or more personas.
    pub const TRANSFORM: &str = "transform";
    /// A decision search or question answered.
    pub const QUERY: &str = "query";
    /// Documents stored (Google Docs).
    pub const STORAGE: &str = "storage";
    /// A weekly digest.
    pub const DIGEST: &str = "digest";
    /// A generated text checked against its source.
    pub const VALIDATION: &str = "validation";
    /// A large document summarized before a transform.
    pub const SUMMARIZE: &str = "summarize";
}

/// Service names for `onomancer_api_calls_total{service}`.
pub mod services {
    /// Anthropic's Messages API.
    pub const CLAUDE: &str = "claude";
    /// Google Docs and Drive.
    pub const GOOGLE: &str = "google";
    /// Linear's API.
    pub const LINEAR: &str = "linear";
}

/// One billable operation (the seed's `UsageRecord`).
#[derive(Clone, Debug, PartialEq)]
pub struct UsageRecord {
    /// Who is billed.
    pub tenant: TenantId,
    /// Who asked (a Discord user id, an API key name), when known.
    pub user: Option<String>,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// What it was: one of [`ops`] (`transform`, `query`, `storage`, `digest`, `validation`, ...).
    pub operation: String,
    /// Which upstream was called: one of [`services`].
    pub service: String,
    /// The model, for Claude calls.
    pub model: Option<String>,
    /// Tokens by kind.
    pub tokens: TokenCounts,
    /// Bytes stored, for storage operations.
    pub storage_bytes: u64,
    /// Upstream API calls made.
    pub api_calls: u64,
    /// Estimated cost in micro-dollars (see [`cost_micros`]).
    pub cost_micros: i64,
    /// The job that did it.
    pub job_id: Option<JobId>,
    /// The job's step (`transform:devrel`, `summarize:<section hash>`, `digest`), for reports.
    pub step: Option<String>,
    /// Unique per tenant: the same key is recorded once. For a Claude call, the billed
    /// message's id ([`UsageRecord::message_key`]).
    pub idempotency_key: String,
}

impl UsageRecord {
    /// A Claude call: one API call, cost from `prices` (zero, with a warning, when the model
    /// has no configured price).
    pub fn claude_call(
        tenant: TenantId,
        operation: &str,
        model: &str,
        tokens: TokenCounts,
        prices: &Prices,
        idempotency_key: impl Into<String>,
    ) -> Self {
        let cost = match prices.get(model) {
            Some(price) => cost_micros(&tokens, price),
            None => {
                tracing::warn!(
                    model,
                    "no price configured for model; usage recorded at cost 0"
                );
                0
            }
        };
        Self {
            tenant,
            user: None,
            timestamp: Utc::now(),
            operation: operation.to_owned(),
            service: services::CLAUDE.to_owned(),
            model: Some(model.to_owned()),
            tokens,
            storage_bytes: 0,
            api_calls: 1,
            cost_micros: cost,
            job_id: None,
            step: None,
            idempotency_key: idempotency_key.into(),
        }
    }

    /// The record of one answered Claude call: `message`'s model and tokens, keyed by its id.
    pub fn claude_reply(
        tenant: TenantId,
        operation: &str,
        message: &MessagesResponse,
        prices: &Prices,
    ) -> Self {
        Self::claude_call(
            tenant,
            operation,
            &message.model,
            message.usage.tokens(),
            prices,
            Self::message_key(&message.id),
        )
    }

    /// The idempotency key of a billed Claude message: `claude:<msg id>`, unique per paid
    /// call. A message without an id (a proxy's doing) gets a fresh key: a paid call is never
    /// hidden behind another's.
    pub fn message_key(message_id: &str) -> String {
        let id = message_id.trim();
        if id.is_empty() {
            format!("claude:no-id:{}", uuid::Uuid::new_v4().simple())
        } else {
            format!("claude:{id}")
        }
    }

    /// The idempotency key of one step of a job: `job:<id>:<step>`, for operations done once
    /// per step (a Claude call is keyed by its message instead: [`UsageRecord::message_key`]).
    pub fn job_key(job: &JobId, step: &str) -> String {
        format!("job:{job}:{step}")
    }

    /// Sets the job and its step.
    pub fn job_step(mut self, job: JobId, step: impl Into<String>) -> Self {
        self.job_id = Some(job);
        self.step = Some(step.into());
        self
    }

    /// Sets the user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets the job.
    pub fn job(mut self, job: JobId) -> Self {
        self.job_id = Some(job);
        self
    }

    /// Sets the time.
    pub fn at(mut self, timestamp: DateTime<Utc>) -> Self {
        self.timestamp = timestamp;
        self
    }
}

/// Totals of one operation within a summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationUsage {
    /// The operation name.
    pub operation: String,
    /// Tokens by kind.
    pub tokens: TokenCounts,
    /// Upstream API calls.
    pub api_calls: u64,
    /// Records.
    pub records: u64,
    /// Distinct jobs (records without a job count one each).
    pub jobs: u64,
    /// Cost in micro-dollars (exact sum).
    pub estimated_cost_micros: i64,
    /// Cost in dollars, two decimals.
    pub estimated_cost: String,
}

/// A tenant's usage over `[from, to)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UsageSummary {
    /// The tenant.
    pub tenant: TenantId,
    /// Start (inclusive).
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub to: DateTime<Utc>,
    /// Tokens by kind.
    pub tokens: TokenCounts,
    /// Upstream API calls.
    pub api_calls: u64,
    /// Bytes stored.
    pub storage_bytes: u64,
    /// Estimated cost in micro-dollars (exact sum).
    pub estimated_cost_micros: i64,
    /// Estimated cost in dollars, two decimals (`"0.26"`).
    pub estimated_cost: String,
    /// Transforms done: distinct jobs among `transform` records (a job recording one row per
    /// persona counts once).
    pub transforms: u64,
    /// Per operation, sorted by name.
    pub by_operation: Vec<OperationUsage>,
}

/// Why usage could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// The database failed.
    #[error("usage store: {0}")]
    Db(#[from] sqlx::Error),
    /// A value does not fit the store's integer columns.
    #[error("usage value out of range: {0}")]
    OutOfRange(&'static str),
}
