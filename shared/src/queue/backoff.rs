//! Retry delays: exponential backoff with full jitter (the same math as `backon`'s
//! `ExponentialBuilder::with_jitter`), capped; an upstream's `retry-after` wins when given.

use std::time::Duration;

/// How long to wait before attempt `n + 1` after attempt `n` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay scale of the first retry.
    pub base: Duration,
    /// Longest delay ever chosen.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// The exponential step for a failed `attempt` (1-based), before jitter: base·2^(attempt-1),
    /// capped at `max`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        self.base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The delay before the next attempt: the upstream's `retry_after` when it gave one (never
    /// shorter), else a delay drawn uniformly from [ceiling/2, ceiling] ("equal jitter", so retries
    /// of many jobs that failed together spread out but never come back immediately).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, unit_random: f64) -> Duration {
        if let Some(wait) = retry_after {
            return wait;
        }
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        half + ceiling
            .saturating_sub(half)
            .mul_f64(unit_random.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_until_the_cap() {
        let p = RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        let c: Vec<u64> = (1..=6).map(|a| p.ceiling(a).as_secs()).collect();
        assert_eq!(c, vec![1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(3, None, 0.0), Duration::from_secs(2));
        assert_eq!(p.delay(3, None, 1.0), Duration::from_secs(4));
        let mid = p.delay(3, None, 0.5);
        assert!(mid > Duration::from_secs(2) && mid < Duration::from_secs(4));
    }

    #[test]
    fn retry_after_wins() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(42)), 0.3),
            Duration::from_secs(42)
        );
    }
}
