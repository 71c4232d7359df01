//! Per-tenant rate limits per upstream service (Claude 50 requests/min by default), enforced
//! across every worker atomically in Redis. A job that hits a limit is deferred until capacity
//! frees (`JobError::Deferred`), never spun on and never failed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::ids::TenantId;
use crate::job::JobError;
use crate::queue::Queue;

/// At most `requests` calls in any window of `window`. In configuration (`rateLimits.<service>`
/// in `config/defaults.json` and tenant files) it is `{"requests": 50, "perSeconds": 60}`, both
/// required; the tenant loader refuses zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "RateLimitJson")]
pub struct RateLimit {
    /// Calls allowed per window.
    pub requests: u32,
    window: Duration,
}

/// The JSON form of a [`RateLimit`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RateLimitJson {
    requests: u32,
    per_seconds: u32,
}

impl From<RateLimitJson> for RateLimit {
    fn from(j: RateLimitJson) -> Self {
        Self::new(j.requests, Duration::from_secs(u64::from(j.per_seconds)))
    }
}

impl RateLimit {
    /// `requests` per `window`.
    pub fn new(requests: u32, window: Duration) -> Self {
        Self { requests, window }
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The window in whole seconds, as configuration writes it (`perSeconds`).
    pub fn per_seconds(&self) -> u64 {
        self.window.as_secs()
    }

    /// The window in ms (at least one), as the Redis script takes it.
    fn window_ms(&self) -> u64 {
        u64::try_from(self.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// Shared limiter: one sliding-window log per (tenant, service) in Redis.
#[derive(Clone)]
pub struct RateLimiter {
    queue: Queue,
    /// Limits per tenant per service; a service without a limit is not limited.
    limits: BTreeMap<(TenantId, String), RateLimit>,
    /// Fallback per service for tenants without their own limit.
    defaults: BTreeMap<String, RateLimit>,
}

impl RateLimiter {
    /// A limiter with default limits per service.
    pub fn new(queue: Queue, defaults: BTreeMap<String, RateLimit>) -> Self {
        Self {
            queue,
            limits: BTreeMap::new(),
            defaults,
        }
    }

    /// Sets a tenant's own limit for a service.
    pub fn with_tenant_limit(mut self, tenant: TenantId, service: &str, limit: RateLimit) -> Self {
        self.limits.insert((tenant, service.to_owned()), limit);
        self
    }

    /// The limit in force for `tenant` and `service`.
    pub fn limit_for(&self, tenant: &TenantId, service: &str) -> Option<RateLimit> {
        self.limits
            .get(&(tenant.clone(), service.to_owned()))
            .or_else(|| self.defaults.get(service))
            .copied()
    }

    /// Takes one call's worth of capacity, or says how long to wait.
    pub async fn try_acquire(
        &self,
        tenant: &TenantId,
        service: &str,
    ) -> Result<Option<Duration>, redis::RedisError> {
        let Some(limit) = self.limit_for(tenant, service) else {
            return Ok(None);
        };
        let key = self.queue.keys().rate_limit(tenant, service);
        let member = uuid::Uuid::new_v4().simple().to_string();
        let wait_ms: i64 = self
            .queue
            .scripts()
            .rate_limit
            .key(key)
            .arg(limit.requests)
            .arg(limit.window_ms())
            .arg(member)
            .invoke_async(&mut self.queue.conn())
            .await?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms as u64)))
    }

    /// Takes capacity for one call or returns `JobError::Deferred` with the wait, which the worker
    /// turns into a deferral of the whole job. Redis errors are retryable.
    pub async fn acquire(&self, tenant: &TenantId, service: &str) -> Result<(), JobError> {
        match self.try_acquire(tenant, service).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(JobError::deferred(
                wait,
                format!("{service} rate limit of tenant {tenant}"),
            )),
            Err(e) => Err(JobError::retryable(format!(
                "rate limiter unavailable: {e}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_form_is_requests_per_seconds_both_required() {
        let l: RateLimit = serde_json::from_str(r#"{"requests": 50, "perSeconds": 60}"#).unwrap();
        assert_eq!(l, RateLimit::new(50, Duration::from_secs(60)));
        assert_eq!((l.per_seconds(), l.window_ms()), (60, 60_000));
        assert!(serde_json::from_str::<RateLimit>(r#"{"requests": 50}"#).is_err());
        let e =
            serde_json::from_str::<RateLimit>(r#"{"requests": 5, "perSeconds": 1, "burst": 2}"#)
                .unwrap_err();
        assert!(e.to_string().contains("unknown field `burst`"), "{e}");
        assert_eq!(RateLimit::new(5, Duration::ZERO).window_ms(), 1);
    }
}
