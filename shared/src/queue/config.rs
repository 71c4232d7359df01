//! Queue tuning: the defaults, and the `queue` section of `config/defaults.json` over them.

use std::time::Duration;

use super::RetryPolicy;

/// Queue tuning, from the `queue` section of `config/defaults.json`.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// Attempts before a retryable failure is dead-lettered.
    pub max_attempts: u32,
    /// Exponential backoff base and cap.
    pub retry: RetryPolicy,
    /// An entry idle this long in another consumer's hands is presumed abandoned and reclaimed.
    pub claim_idle: Duration,
    /// Deliveries after which an entry that never completes (it crashes its worker) is poison.
    pub max_deliveries: u32,
    /// How long an idempotency key remembers its first job.
    pub idempotency_window: Duration,
    /// How long a job's status is kept.
    pub status_ttl: Duration,
    /// How long upstream limits may keep deferring one job, counted from its first deferral;
    /// a deferral after that dead-letters the job with the reason.
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
            max_deliveries: 10,
            idempotency_window: Duration::from_secs(86_400),
            status_ttl: Duration::from_secs(7 * 86_400),
            defer_deadline: DEFAULT_DEFER_DEADLINE,
        }
    }
}

/// The `queue` section of `config/defaults.json` (camelCase), as operators write it.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueTuning {
    /// Attempts before a retryable failure is dead-lettered.
    pub max_attempts: Option<u32>,
    /// First retry delay scale, ms.
    pub backoff_base_ms: Option<u64>,
    /// Longest retry delay, ms.
    pub backoff_max_ms: Option<u64>,
    /// Idle time after which another worker's entry is reclaimed, ms.
    pub claim_idle_ms: Option<u64>,
    /// Deliveries after which an entry is poison.
    pub max_deliveries: Option<u32>,
    /// Idempotency window, seconds.
    pub idempotency_window_seconds: Option<u64>,
    /// Status TTL, seconds.
    pub status_ttl_seconds: Option<u64>,
    /// Accepted for compatibility; trimming is by acknowledgement, never by length.
    pub stream_max_len_hint: Option<u64>,
    /// How long upstream limits may defer one job, ms from its first deferral.
    pub defer_deadline_ms: Option<u64>,
}

impl QueueConfig {
    /// Applies a tuning section over the defaults.
    pub fn with_tuning(mut self, t: &QueueTuning) -> Self {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        if let Some(v) = t.max_attempts {
            self.max_attempts = v.max(1);
        }
        if let Some(v) = t.backoff_base_ms {
            self.retry.base = ms(v);
        }
        if let Some(v) = t.backoff_max_ms {
            self.retry.max = ms(v);
        }
        if let Some(v) = t.claim_idle_ms {
            self.claim_idle = ms(v.max(100));
        }
        if let Some(v) = t.max_deliveries {
            self.max_deliveries = v.max(1);
        }
        if let Some(v) = t.idempotency_window_seconds {
            self.idempotency_window = s(v.max(1));
        }
        if let Some(v) = t.status_ttl_seconds {
            self.status_ttl = s(v.max(1));
        }
        if let Some(v) = t.defer_deadline_ms {
            self.defer_deadline = ms(v.max(1));
        }
        self
    }

    /// Reads the `queue` section of `<config_dir>/defaults.json` (missing section: defaults).
    pub fn load(config_dir: &std::path::Path) -> Result<Self, String> {
        let path = config_dir.join("defaults.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not valid JSON: {e}", path.display()))?;
        match v.get("queue") {
            None => Ok(Self::default()),
            Some(q) => {
                let t: QueueTuning = serde_json::from_value(q.clone())
                    .map_err(|e| format!("{}: queue: {e}", path.display()))?;
                Ok(Self::default().with_tuning(&t))
            }
        }
    }
}
