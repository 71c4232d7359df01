//! Retry delays: exponential backoff with equal jitter, capped; when an upstream names a wait
//! (`retry-after`, a rate limit's reset, a fleet-wide pause), the delay is that wait plus a
//! random spread ([`spread`]), never less, so jobs limited together do not all come back in
//! the same millisecond and meet the same limit again.

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

    /// The delay before the next attempt: the upstream's `retry_after` when it gave one, spread
    /// by [`spread`] (never shorter), else a delay drawn uniformly from [ceiling/2, ceiling]
    /// ("equal jitter", so retries of many jobs that failed together spread out but never come
    /// back immediately).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, unit_random: f64) -> Duration {
        if let Some(wait) = retry_after {
            return spread(wait, unit_random);
        }
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        half + ceiling
            .saturating_sub(half)
            .mul_f64(unit_random.clamp(0.0, 1.0))
    }
}

/// Smallest spread added to a named wait: even a zero `retry-after` fans out over this.
pub const MIN_SPREAD: Duration = Duration::from_millis(200);
/// Largest spread added to a named wait (a long wait needs no more to fan out).
pub const MAX_SPREAD: Duration = Duration::from_secs(30);

/// A named wait with jitter: `wait` plus a uniform share of `wait` itself (clamped to
/// [`MIN_SPREAD`, `MAX_SPREAD`]), i.e. full jitter over `[wait, 2·wait]`. Never earlier than
/// `wait`: an upstream asked for at least that long.
pub fn spread(wait: Duration, unit_random: f64) -> Duration {
    let width = wait.clamp(MIN_SPREAD, MAX_SPREAD);
    wait + width.mul_f64(unit_random.clamp(0.0, 1.0))
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
    fn retry_after_is_a_floor_and_the_rest_is_spread() {
        let p = RetryPolicy::default();
        let s = Duration::from_secs;
        assert_eq!(p.delay(1, Some(s(42)), 0.0), s(42));
        assert_eq!(p.delay(1, Some(s(42)), 1.0), s(72), "spread capped at 30 s");
        assert_eq!(p.delay(1, Some(s(4)), 0.5), s(6));
        assert_eq!(
            spread(Duration::ZERO, 1.0),
            MIN_SPREAD,
            "even no wait fans out"
        );
    }

    #[test]
    fn a_window_of_jobs_limited_together_comes_back_spread_out() {
        // 1,000 jobs told "retry after 5 s" at once: never earlier, over [5 s, 10 s], and no
        // 100 ms slot holds more than a few percent of them.
        let wait = Duration::from_secs(5);
        let mut slots = [0u32; 50];
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..1000 {
            let d = spread(wait, rng.f64());
            assert!(d >= wait && d <= wait * 2, "{d:?}");
            slots[((d - wait).as_millis() / 100).min(49) as usize] += 1;
        }
        assert!(slots.iter().all(|&n| n <= 45), "{slots:?}");
    }
}
