//! Queue tuning: the type of the `queue` section of `config/defaults.json` ([`QueueTuning`],
//! read once with the rest of that file by the tenant loader), the queue's [`QueueConfig`] built
//! from it, and the environment over both (`ONOMANCER_CLAIM_IDLE_MS`,
//! `ONOMANCER_SHUTDOWN_GRACE_MS`).

use std::time::Duration;

use super::RetryPolicy;

/// Queue tuning, from the `queue` section of `config/defaults.json`.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// Attempts before a retryable failure is dead-lettered.
    pub max_attempts: u32,
    /// Exponential backoff base and cap.
    pub retry: RetryPolicy,
    /// A worker that has not renewed its liveness for this long is presumed dead and its claimed
    /// entries are reclaimed by peers; a live worker's entries are never taken, however long its
    /// jobs run. Workers renew every third of it.
    pub claim_idle: Duration,
    /// At shutdown, how long running jobs may finish before they are handed back.
    pub shutdown_grace: Duration,
    /// Shares of each worker's slots kept for higher lanes.
    pub reserved: ReservedShare,
    /// Deliveries after which an entry that never completes (it crashes its worker) is poison.
    pub max_deliveries: u32,
    /// How long an idempotency key remembers its first job.
    pub idempotency_window: Duration,
    /// How long a job's status is kept.
    pub status_ttl: Duration,
    /// How long upstream limits may keep deferring one job, counted from the upstream's first
    /// refusal; an upstream deferral after that dead-letters the job with the reason. Deferrals
    /// by Onomancer's own limits never count.
    pub defer_deadline: Duration,
}

/// Default of [`QueueConfig::defer_deadline`] (`queue.deferDeadlineMs`): one hour.
pub const DEFAULT_DEFER_DEADLINE: Duration = Duration::from_secs(3600);

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            retry: RetryPolicy::default(),
            claim_idle: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            reserved: ReservedShare::default(),
            max_deliveries: 10,
            idempotency_window: Duration::from_secs(86_400),
            status_ttl: Duration::from_secs(7 * 86_400),
            defer_deadline: DEFAULT_DEFER_DEADLINE,
        }
    }
}

/// Shares of a worker's slots (its concurrency) that lower lanes may not use, so a person's
/// command starts at once however much bulk work is queued or running. `interactive`: slots only
/// interactive jobs may take; `default`: slots only interactive or default jobs may take. Each is
/// rounded up to whole slots, and at least one slot is always left for bulk work (a worker of
/// concurrency 1 reserves nothing). 0.125 each: 2 + 2 of 16 slots.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservedShare {
    /// Share of the slots only interactive work may use.
    #[serde(default)]
    pub interactive: f64,
    /// Share of the slots only interactive or default work may use.
    #[serde(default)]
    pub default: f64,
}

impl Default for ReservedShare {
    fn default() -> Self {
        Self {
            interactive: 0.125,
            default: 0.125,
        }
    }
}

impl ReservedShare {
    /// No reservation: every lane may use every slot.
    pub const NONE: Self = Self {
        interactive: 0.0,
        default: 0.0,
    };

    /// Whole slots reserved for (interactive, interactive-or-default) out of `concurrency`.
    pub fn slots(&self, concurrency: usize) -> (usize, usize) {
        let whole = |share: f64| (share.clamp(0.0, 1.0) * concurrency as f64).ceil() as usize;
        let spare = concurrency.saturating_sub(1);
        let interactive = whole(self.interactive).min(spare);
        let default = whole(self.default).min(spare - interactive);
        (interactive, default)
    }
}

/// The `queue` section of `config/defaults.json` (camelCase), as operators write it; the tenant
/// loader reads it into `Defaults` (unknown fields refused) and [`QueueConfig::from`] turns it
/// into the queue's tuning. The fields without a default are required, as they always were.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueTuning {
    /// Attempts before a retryable failure is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay scale, ms; doubles each attempt (with jitter).
    pub backoff_base_ms: u64,
    /// Longest retry delay, ms.
    pub backoff_max_ms: u64,
    /// Time without a liveness renewal after which a worker's entries are reclaimed, ms.
    pub claim_idle_ms: u64,
    /// Time running jobs get to finish at shutdown before they are handed back, ms (default
    /// 30 s).
    #[serde(default)]
    pub shutdown_grace_ms: Option<u64>,
    /// Shares of each worker's slots kept for interactive (and default) work (default 0.125
    /// each).
    #[serde(default)]
    pub reserved_share: Option<ReservedShare>,
    /// Deliveries after which an entry is poison.
    pub max_deliveries: u32,
    /// Idempotency window, seconds.
    pub idempotency_window_seconds: u64,
    /// Status TTL, seconds.
    pub status_ttl_seconds: u64,
    /// Accepted for compatibility; trimming is by acknowledgement, never by length.
    pub stream_max_len_hint: u64,
    /// How long upstream limits may defer one job, ms from its first deferral (default one
    /// hour).
    #[serde(default)]
    pub defer_deadline_ms: Option<u64>,
}

impl From<&QueueTuning> for QueueConfig {
    /// The queue's tuning from the `queue` section (the one place it is built from the file).
    fn from(t: &QueueTuning) -> Self {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        let d = Self::default();
        Self {
            max_attempts: t.max_attempts.max(1),
            retry: RetryPolicy {
                base: ms(t.backoff_base_ms),
                max: ms(t.backoff_max_ms),
            },
            claim_idle: ms(t.claim_idle_ms.max(100)),
            shutdown_grace: t.shutdown_grace_ms.map_or(d.shutdown_grace, ms),
            reserved: t.reserved_share.unwrap_or(d.reserved),
            max_deliveries: t.max_deliveries.max(1),
            idempotency_window: s(t.idempotency_window_seconds.max(1)),
            status_ttl: s(t.status_ttl_seconds.max(1)),
            defer_deadline: t
                .defer_deadline_ms
                .map_or(d.defer_deadline, |v| ms(v.max(1))),
        }
    }
}

impl QueueConfig {
    /// The environment's overrides from `settings` (`ONOMANCER_CLAIM_IDLE_MS`,
    /// `ONOMANCER_SHUTDOWN_GRACE_MS`) over this tuning.
    pub fn with_settings(mut self, settings: &crate::settings::Settings) -> Self {
        if let Some(v) = settings.claim_idle {
            self.claim_idle = v.max(Duration::from_millis(100));
        }
        if let Some(v) = settings.shutdown_grace {
            self.shutdown_grace = v;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_shares_round_up_and_always_leave_a_slot_for_bulk() {
        let share = ReservedShare::default();
        assert_eq!(share.slots(16), (2, 2));
        assert_eq!(share.slots(200), (25, 25));
        assert_eq!(share.slots(2), (1, 0));
        assert_eq!(share.slots(1), (0, 0));
        assert_eq!(ReservedShare::NONE.slots(16), (0, 0));
        let greedy = ReservedShare {
            interactive: 0.9,
            default: 0.9,
        };
        assert_eq!(greedy.slots(10), (9, 0));
    }

    fn section(extra: serde_json::Value) -> serde_json::Value {
        let mut v = serde_json::json!({
            "maxAttempts": 5, "backoffBaseMs": 1000, "backoffMaxMs": 600000,
            "claimIdleMs": 30000, "maxDeliveries": 10, "idempotencyWindowSeconds": 86400,
            "statusTtlSeconds": 604800, "streamMaxLenHint": 100000
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    #[test]
    fn the_queue_section_sets_grace_claim_idle_and_reserves() {
        let t: QueueTuning = serde_json::from_value(section(serde_json::json!({
            "claimIdleMs": 5000,
            "shutdownGraceMs": 2500,
            "reservedShare": {"interactive": 0.25, "default": 0.0}
        })))
        .unwrap();
        let c = QueueConfig::from(&t);
        assert_eq!(c.claim_idle, Duration::from_secs(5));
        assert_eq!(c.shutdown_grace, Duration::from_millis(2500));
        assert_eq!(c.reserved.slots(8), (2, 0));
        let bad = serde_json::from_value::<QueueTuning>(section(serde_json::json!({
            "reservedShare": {"bulk": 0.5}
        })));
        assert!(bad.unwrap_err().to_string().contains("bulk"));
    }

    #[test]
    fn the_optional_fields_keep_their_defaults() {
        let t: QueueTuning = serde_json::from_value(section(serde_json::json!({}))).unwrap();
        let c = QueueConfig::from(&t);
        let d = QueueConfig::default();
        assert_eq!(c.shutdown_grace, d.shutdown_grace);
        assert_eq!(c.reserved, d.reserved);
        assert_eq!(c.defer_deadline, DEFAULT_DEFER_DEADLINE);
        assert_eq!(c.retry.base, Duration::from_secs(1));
        assert_eq!(c.status_ttl, d.status_ttl);
    }
}
