//! Shared state of every handler, and the admission steps handlers share (rate, quota, enqueue
//! with refund).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use onomancer_shared::admission::{
    Admission, QuotaDecision, QuotaUsage, RateDecision, RateSpec, TransformQuota,
};
use onomancer_shared::queue::{AdmitOutcome, Enqueued, Queue};
use onomancer_shared::tenant::{TenantContext, TenantQuotas, TenantRegistry};
use onomancer_shared::usage::UsageStore;
use onomancer_shared::NewJob;

use crate::error::ApiError;
use crate::http_settings::HttpSettings;
use crate::metrics::GatewayMetrics;
use crate::signature::DiscordVerifier;

/// Everything a handler needs, behind one `Arc`: axum clones the state for every extractor of
/// every request, so a clone must be a single reference-count increment.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: AppStateInner) -> Self {
        Self(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct AppStateInner {
    /// Tenants, loaded once at start.
    pub tenants: Arc<TenantRegistry>,
    /// The job queue (Redis Streams).
    pub queue: Queue,
    /// Quotas and request rates (Redis).
    pub admission: Admission,
    /// The gateway's metrics.
    pub metrics: GatewayMetrics,
    /// The registry `/metrics` serves (gateway and queue metrics).
    pub registry: prometheus::Registry,
    /// Discord's Ed25519 check; `None` when `DISCORD_PUBLIC_KEY` is unset (interactions get 401).
    pub discord: Option<DiscordVerifier>,
    /// Usage records for `/v1/usage`; `None` when no database is configured.
    pub usage: Option<UsageStore>,
    /// Timeouts and the connection cap (the body timeout is read by handlers).
    pub http: HttpSettings,
}

/// The transform limits of a tenant's tier.
pub fn transform_quota(q: &TenantQuotas) -> TransformQuota {
    TransformQuota {
        per_day: q.transformations_per_day.map(u64::from),
        per_month: q.transformations_per_month.map(u64::from),
    }
}

/// The rate scope of every tenant request (`requestsPerMinute`).
const REQUESTS: &str = "requests";

impl AppState {
    /// Counts a request against the tenant's `requestsPerMinute`.
    pub async fn check_rate(&self, tenant: &TenantContext) -> Result<(), ApiError> {
        let spec = RateSpec::per_minute(tenant.quotas.requests_per_minute);
        match self
            .admission
            .check_rate(&tenant.tenant_id, REQUESTS, spec)
            .await?
        {
            RateDecision::Allowed { .. } => Ok(()),
            RateDecision::Limited { retry_after } => Err(self.rate_limited(tenant, retry_after)),
        }
    }

    /// [`check_rate`](Self::check_rate), then, if it passes, enqueues `job`: one Redis call
    /// instead of two where the queue can (a single server), with the same decisions, refusal
    /// and metrics. Only for a job that consumes no quota: a quota is consumed between the two
    /// steps, so that a rate-refused request does not spend it.
    pub async fn admit_and_enqueue(
        &self,
        tenant: &TenantContext,
        job: NewJob,
    ) -> Result<Enqueued, ApiError> {
        let spec = RateSpec::per_minute(tenant.quotas.requests_per_minute);
        let rate = self.admission.rate_check(&tenant.tenant_id, REQUESTS, spec);
        match self.queue.enqueue_admitted(job, &rate).await? {
            AdmitOutcome::Enqueued(done) => Ok(done),
            AdmitOutcome::RateLimited { retry_after } => {
                Err(self.rate_limited(tenant, retry_after))
            }
        }
    }

    /// Counts a rate refusal in the metrics and names the wait.
    fn rate_limited(&self, tenant: &TenantContext, retry_after: std::time::Duration) -> ApiError {
        self.metrics
            .refusals
            .with_label_values(&[tenant.tenant_id.as_str(), "rate_limited"])
            .inc();
        ApiError::RateLimited { retry_after }
    }

    /// Consumes one transformation of the tenant's quota at `now`.
    pub async fn consume_transform(
        &self,
        tenant: &TenantContext,
        now: DateTime<Utc>,
    ) -> Result<QuotaUsage, ApiError> {
        match self
            .admission
            .consume_transforms(&tenant.tenant_id, 1, transform_quota(&tenant.quotas), now)
            .await?
        {
            QuotaDecision::Admitted(usage) => Ok(usage),
            QuotaDecision::Exceeded {
                limit, resets_at, ..
            } => {
                self.metrics
                    .refusals
                    .with_label_values(&[tenant.tenant_id.as_str(), "quota_exceeded"])
                    .inc();
                Err(ApiError::QuotaExceeded {
                    limit: limit.as_str(),
                    resets_at,
                })
            }
        }
    }

    /// Enqueues `jobs`; `transform_at` names the job (by index) that consumed one transformation
    /// at that moment, which is refunded when it was not stored (error) or not created
    /// (a redelivery of a job already counted). Never reports success for a job not stored.
    pub async fn enqueue_with_refund(
        &self,
        tenant: &TenantContext,
        jobs: Vec<NewJob>,
        transform_at: Option<(usize, DateTime<Utc>)>,
    ) -> Result<Vec<Enqueued>, ApiError> {
        let result = self.queue.enqueue_many(jobs).await;
        if let Some((index, at)) = transform_at {
            let refund = match &result {
                Ok(done) => done.get(index).is_some_and(|e| !e.created),
                Err(_) => true,
            };
            if refund {
                if let Err(e) = self
                    .admission
                    .refund_transforms(&tenant.tenant_id, 1, at)
                    .await
                {
                    tracing::warn!(error = %e, "could not refund a transformation");
                }
            }
        }
        Ok(result?)
    }
}
