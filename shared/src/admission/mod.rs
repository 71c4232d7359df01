//! Admission control shared by every gateway instance: transform quotas (per tenant, per UTC day
//! and month, checked and consumed atomically in Redis) and a per-tenant request rate (GCRA).
//!
//! The gateway is stateless, so both live in Redis; each decision is one Lua script call on one
//! key (rate) or two keys sharing the tenant's hash tag (quota), which keeps them legal on Redis
//! Cluster and cheap enough for tens of thousands of requests a second.

mod period;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::Script;

use crate::ids::TenantId;
use crate::keys::KeySpace;
use crate::redis_conn::RedisConn;

pub use period::Periods;

/// Which quota refused a request; the names are the tier fields of `quotas.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaLimit {
    /// `transformationsPerDay`.
    TransformationsPerDay,
    /// `transformationsPerMonth`.
    TransformationsPerMonth,
}

impl QuotaLimit {
    /// The configuration field name, as shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaLimit::TransformationsPerDay => "transformationsPerDay",
            QuotaLimit::TransformationsPerMonth => "transformationsPerMonth",
        }
    }
}

/// A tenant's transform limits (from its tier); `None` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TransformQuota {
    /// Transformations per UTC day.
    pub per_day: Option<u64>,
    /// Transformations per UTC month.
    pub per_month: Option<u64>,
}

/// One period's counter against its limit.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PeriodUsage {
    /// Transformations counted in the period.
    pub used: u64,
    /// The limit; `None` when unlimited.
    pub limit: Option<u64>,
    /// What is left (`None` when unlimited).
    pub left: Option<u64>,
    /// When the counter starts again from zero.
    pub resets_at: DateTime<Utc>,
}

impl PeriodUsage {
    fn new(used: u64, limit: Option<u64>, resets_at: DateTime<Utc>) -> Self {
        Self {
            used,
            limit,
            left: limit.map(|l| l.saturating_sub(used)),
            resets_at,
        }
    }
}

/// The tenant's transform quota state after a decision (or a read).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct QuotaUsage {
    /// The current UTC day.
    pub day: PeriodUsage,
    /// The current UTC month.
    pub month: PeriodUsage,
}

/// The answer to "may this request create `n` transformations?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuotaDecision {
    /// Consumed; the counters now include this request.
    Admitted(QuotaUsage),
    /// Refused; nothing was consumed.
    Exceeded {
        /// The limit that refused it (the day is checked first).
        limit: QuotaLimit,
        /// When that limit resets.
        resets_at: DateTime<Utc>,
        /// The counters, unchanged.
        usage: QuotaUsage,
    },
}

/// A request-rate limit: `per_minute` requests a minute, smoothed, with bursts up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateSpec {
    /// Sustained requests per minute.
    pub per_minute: u32,
    /// Requests that may arrive at once after a quiet period (at least 1).
    pub burst: u32,
}

impl RateSpec {
    /// `per_minute` with a burst of a full minute's worth (the window a "per minute" limit implies).
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            per_minute,
            burst: per_minute.max(1),
        }
    }
}

/// The answer to "may this request pass the tenant's rate limit?".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    /// Allowed; `remaining` more could pass right now.
    Allowed {
        /// Requests left in the current burst.
        remaining: u64,
    },
    /// Refused; try again after `retry_after`.
    Limited {
        /// Time until the next request would be allowed.
        retry_after: Duration,
    },
}

impl RateDecision {
    /// Reads `rate.lua`'s answer `{allowed, retry_after_us, remaining}`.
    pub(crate) fn from_reply(allowed: i64, retry_us: u64, remaining: u64) -> Self {
        if allowed == 1 {
            RateDecision::Allowed { remaining }
        } else {
            RateDecision::Limited {
                retry_after: Duration::from_micros(retry_us.max(1)),
            }
        }
    }
}

/// The text of `rate.lua`, the one GCRA of the project: run alone by [`RateCheck::run`] and
/// composed with the queue's idempotent enqueue by `Queue::enqueue_admitted`.
pub(crate) const RATE_LUA: &str = include_str!("rate.lua");

static RATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RATE_LUA));

/// One request-rate check, ready to run: a tenant's rate key and the GCRA parameters of its
/// [`RateSpec`]. [`Admission::check_rate`] runs it alone; `Queue::enqueue_admitted` runs it in
/// the same script as the enqueue it guards, saving a round trip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateCheck {
    /// The rate key (`{tenant}:ratelimit:gateway:<scope>`).
    pub key: String,
    /// Emission interval in microseconds (a minute / `per_minute`).
    pub emission_us: u64,
    /// Burst tolerance in microseconds (emission interval * (burst - 1)).
    pub tolerance_us: u64,
}

impl RateCheck {
    /// Counts one request (`rate.lua` alone), on Redis's clock.
    pub(crate) async fn run(&self, conn: &RedisConn) -> redis::RedisResult<RateDecision> {
        let (allowed, retry_us, remaining): (i64, u64, u64) = RATE_SCRIPT
            .key(&self.key)
            .arg(self.emission_us)
            .arg(self.tolerance_us)
            .invoke_async(&mut conn.clone())
            .await?;
        Ok(RateDecision::from_reply(allowed, retry_us, remaining))
    }
}

/// Admission could not decide (Redis failed). Callers answer 503: never admit blindly.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// Redis is unreachable or timed out.
    #[error("admission store unavailable: {0}")]
    Unavailable(String),
    /// Redis answered something the scripts never return (a bug or a foreign key).
    #[error("admission store answered unexpectedly: {0}")]
    Protocol(String),
}

impl From<redis::RedisError> for AdmissionError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
        {
            AdmissionError::Unavailable(e.to_string())
        } else {
            AdmissionError::Protocol(e.to_string())
        }
    }
}

struct Scripts {
    quota: Script,
    refund: Script,
}

/// Quota and rate decisions against Redis; cheap to clone.
#[derive(Clone)]
pub struct Admission {
    conn: RedisConn,
    keys: KeySpace,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("keys", &self.keys)
            .finish()
    }
}

fn limit_arg(limit: Option<u64>) -> i64 {
    limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX))
}

impl Admission {
    /// Admission over `conn`, with keys in `keys`.
    pub fn new(conn: RedisConn, keys: KeySpace) -> Self {
        Self {
            conn,
            keys,
            scripts: Arc::new(Scripts {
                quota: Script::new(include_str!("quota.lua")),
                refund: Script::new(include_str!("refund.lua")),
            }),
        }
    }

    /// The day and month counter keys of `tenant` for `periods`. Both carry the `{tenant}` hash
    /// tag so the quota script's two keys share a Cluster slot.
    pub fn quota_keys(&self, tenant: &TenantId, periods: &Periods) -> [String; 2] {
        [
            self.keys.data(
                tenant,
                format_args!("quota:{{{tenant}}}:transform:day:{}", periods.day),
            ),
            self.keys.data(
                tenant,
                format_args!("quota:{{{tenant}}}:transform:month:{}", periods.month),
            ),
        ]
    }

    /// The request-rate key of `tenant` for `scope` (e.g. `requests`).
    pub fn rate_key(&self, tenant: &TenantId, scope: &str) -> String {
        self.keys.rate_limit(tenant, &format!("gateway:{scope}"))
    }

    /// Checks and consumes `n` transformations for `tenant` at `now`, atomically.
    #[tracing::instrument(skip(self, quota), fields(tenant = %tenant), err)]
    pub async fn consume_transforms(
        &self,
        tenant: &TenantId,
        n: u64,
        quota: TransformQuota,
        now: DateTime<Utc>,
    ) -> Result<QuotaDecision, AdmissionError> {
        let periods = Periods::at(now);
        let [day_key, month_key] = self.quota_keys(tenant, &periods);
        let (admitted, refused_by, day_used, month_used): (i64, i64, u64, u64) = self
            .scripts
            .quota
            .key(&day_key)
            .key(&month_key)
            .arg(n)
            .arg(limit_arg(quota.per_day))
            .arg(limit_arg(quota.per_month))
            .arg(periods.day_ttl_secs(now))
            .arg(periods.month_ttl_secs(now))
            .invoke_async(&mut self.conn.clone())
            .await?;
        let usage = QuotaUsage {
            day: PeriodUsage::new(day_used, quota.per_day, periods.day_resets_at),
            month: PeriodUsage::new(month_used, quota.per_month, periods.month_resets_at),
        };
        Ok(match (admitted, refused_by) {
            (1, _) => QuotaDecision::Admitted(usage),
            (_, 1) => QuotaDecision::Exceeded {
                limit: QuotaLimit::TransformationsPerDay,
                resets_at: periods.day_resets_at,
                usage,
            },
            (_, 2) => QuotaDecision::Exceeded {
                limit: QuotaLimit::TransformationsPerMonth,
                resets_at: periods.month_resets_at,
                usage,
            },
            other => {
                return Err(AdmissionError::Protocol(format!(
                    "quota script returned {other:?}"
                )))
            }
        })
    }

    /// Gives back `n` transformations consumed at `consumed_at` (the job was not stored, or was a
    /// redelivery of a job already counted).
    #[tracing::instrument(skip(self), fields(tenant = %tenant), err)]
    pub async fn refund_transforms(
        &self,
        tenant: &TenantId,
        n: u64,
        consumed_at: DateTime<Utc>,
    ) -> Result<(), AdmissionError> {
        let periods = Periods::at(consumed_at);
        let [day_key, month_key] = self.quota_keys(tenant, &periods);
        let _: (i64, i64) = self
            .scripts
            .refund
            .key(&day_key)
            .key(&month_key)
            .arg(n)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// Reads `tenant`'s transform counters at `now` without consuming anything.
    pub async fn quota_usage(
        &self,
        tenant: &TenantId,
        quota: TransformQuota,
        now: DateTime<Utc>,
    ) -> Result<QuotaUsage, AdmissionError> {
        let periods = Periods::at(now);
        let keys = self.quota_keys(tenant, &periods);
        let (day, month): (Option<u64>, Option<u64>) = redis::cmd("MGET")
            .arg(&keys[..])
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(QuotaUsage {
            day: PeriodUsage::new(day.unwrap_or(0), quota.per_day, periods.day_resets_at),
            month: PeriodUsage::new(month.unwrap_or(0), quota.per_month, periods.month_resets_at),
        })
    }

    /// The check of one request of `tenant` in `scope` against `spec`, without running it.
    pub fn rate_check(&self, tenant: &TenantId, scope: &str, spec: RateSpec) -> RateCheck {
        let per_minute = u64::from(spec.per_minute.max(1));
        let emission_us = 60_000_000_u64.div_ceil(per_minute);
        RateCheck {
            key: self.rate_key(tenant, scope),
            emission_us,
            tolerance_us: emission_us * u64::from(spec.burst.max(1) - 1),
        }
    }

    /// Counts one request of `tenant` in `scope` against `spec` (GCRA on Redis's clock).
    pub async fn check_rate(
        &self,
        tenant: &TenantId,
        scope: &str,
        spec: RateSpec,
    ) -> Result<RateDecision, AdmissionError> {
        Ok(self.rate_check(tenant, scope, spec).run(&self.conn).await?)
    }
}

#[cfg(test)]
mod tests;
