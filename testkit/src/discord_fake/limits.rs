//! The Discord fake's rate limits, as Discord documents them (`topics/rate-limits`): a bucket per
//! channel for creating messages (5 per 5 s), the bot's global limit (50 requests per second;
//! interaction endpoints are exempt), the documented headers on every limited route's answer
//! (`X-RateLimit-{Limit,Remaining,Reset,Reset-After,Bucket}`), and on a 429 the JSON body
//! `{"message", "retry_after", "global"}` with `Retry-After`, `X-RateLimit-Scope` and, for the
//! global limit, `X-RateLimit-Global`. Buckets are fixed windows that start at their first
//! request, as Discord's do. Every 429 is counted.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// The bucket hash the fake reports for `POST /channels/{id}/messages` (one hash for the route;
/// the channel is the bucket's major parameter, as on Discord).
pub const CHANNEL_MESSAGES_BUCKET: &str = "80c17d2f203122d936070c88c8d10f33";

/// What the fake enforces. [`FakeLimits::discord`] is Discord's documented behaviour; tests of
/// long scenarios may scale the windows down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FakeLimits {
    /// Messages per channel per `channel_window` (Discord: 5).
    pub channel_posts: u32,
    /// The channel bucket's window (Discord: 5 s).
    pub channel_window: Duration,
    /// Bot requests per `global_window`, interaction endpoints excepted (Discord: 50).
    pub global_requests: u32,
    /// The global window (Discord: 1 s).
    pub global_window: Duration,
    /// How long `enforce_nonce` returns the earlier message for a repeated nonce (Discord: "a
    /// few minutes").
    pub nonce_window: Duration,
}

impl FakeLimits {
    /// Discord's documented limits.
    pub fn discord() -> Self {
        Self {
            channel_posts: 5,
            channel_window: Duration::from_secs(5),
            global_requests: 50,
            global_window: Duration::from_secs(1),
            nonce_window: Duration::from_secs(5 * 60),
        }
    }

    /// No rate limits (nonces still deduplicate for Discord's window).
    pub fn unlimited() -> Self {
        Self {
            channel_posts: u32::MAX,
            global_requests: u32::MAX,
            ..Self::discord()
        }
    }

    /// Discord's limits with every window multiplied by `factor` (e.g. 0.1: 5 posts per 500 ms).
    pub fn scaled(factor: f64) -> Self {
        let d = Self::discord();
        Self {
            channel_window: d.channel_window.mul_f64(factor),
            global_window: d.global_window.mul_f64(factor),
            nonce_window: d.nonce_window.mul_f64(factor),
            ..d
        }
    }
}

/// 429s the fake sent, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimitCounts {
    /// Channel bucket 429s (scope `user`).
    pub route: u64,
    /// Global 429s.
    pub global: u64,
    /// Scripted 429s (`script_rate_limit`).
    pub scripted: u64,
}

impl RateLimitCounts {
    /// Every 429 sent.
    pub fn total(&self) -> u64 {
        self.route + self.global + self.scripted
    }
}

#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    used: u32,
}

/// Fixed-window buckets: the global one and one per channel.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    global: Option<Window>,
    channels: HashMap<u64, Window>,
    pub(crate) counts: RateLimitCounts,
}

/// A bucket's state after a request was counted in it (for the headers).
struct Taken {
    limit: u32,
    remaining: u32,
    reset_after: Duration,
}

/// Takes one request from `slot` (a fixed window that starts at its first request), or returns
/// the time until it resets.
fn take(
    slot: &mut Option<Window>,
    limit: u32,
    window: Duration,
    now: Instant,
) -> Result<Taken, Duration> {
    let w = match slot {
        Some(w) if now.duration_since(w.start) < window => w,
        _ => slot.insert(Window {
            start: now,
            used: 0,
        }),
    };
    let reset_after = window.saturating_sub(now.duration_since(w.start));
    if w.used >= limit {
        return Err(reset_after);
    }
    w.used += 1;
    Ok(Taken {
        limit,
        remaining: limit - w.used,
        reset_after,
    })
}

/// The headers a limited route's answer carries.
pub(crate) type LimitHeaders = Vec<(&'static str, String)>;

fn bucket_headers(limit: u32, remaining: u32, reset_after: Duration) -> LimitHeaders {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    vec![
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        (
            "x-ratelimit-reset",
            format!("{:.3}", (now + reset_after).as_secs_f64()),
        ),
        (
            "x-ratelimit-reset-after",
            format!("{:.3}", reset_after.as_secs_f64()),
        ),
        ("x-ratelimit-bucket", CHANNEL_MESSAGES_BUCKET.to_owned()),
    ]
}

/// A 429 to send.
#[derive(Debug)]
pub(crate) struct TooMany {
    retry_after: Duration,
    global: bool,
    headers: LimitHeaders,
}

impl IntoResponse for TooMany {
    /// The 429 as Discord sends it.
    fn into_response(self) -> Response {
        let TooMany {
            retry_after,
            global,
            mut headers,
        } = self;
        let secs = retry_after.as_secs_f64().max(0.001);
        headers.push(("retry-after", (secs.ceil() as u64).max(1).to_string()));
        headers.push((
            "x-ratelimit-scope",
            if global { "global" } else { "user" }.to_owned(),
        ));
        if global {
            headers.push(("x-ratelimit-global", "true".to_owned()));
        }
        let body = json!({"message": "You are being rate limited.",
            "retry_after": (secs * 1000.0).round() / 1000.0, "global": global});
        let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
        for (name, value) in headers {
            response
                .headers_mut()
                .insert(name, value.parse().expect("header value"));
        }
        response
    }
}

impl Buckets {
    /// Counts a channel post against the global and the channel limits: `Ok(headers)` for the
    /// answer, or the 429 to send.
    pub(crate) fn channel_post(
        &mut self,
        limits: &FakeLimits,
        channel: u64,
        now: Instant,
    ) -> Result<LimitHeaders, TooMany> {
        if let Err(wait) = take(
            &mut self.global,
            limits.global_requests,
            limits.global_window,
            now,
        ) {
            self.counts.global += 1;
            return Err(TooMany {
                retry_after: wait,
                global: true,
                headers: Vec::new(),
            });
        }
        let mut slot = self.channels.get(&channel).copied();
        let taken = take(&mut slot, limits.channel_posts, limits.channel_window, now);
        if let Some(w) = slot {
            self.channels.insert(channel, w);
        }
        match taken {
            Ok(t) => Ok(bucket_headers(t.limit, t.remaining, t.reset_after)),
            Err(wait) => {
                self.counts.route += 1;
                Err(TooMany {
                    retry_after: wait,
                    global: false,
                    headers: bucket_headers(limits.channel_posts, 0, wait),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_bucket_is_a_fixed_window_from_its_first_post() {
        let limits = FakeLimits::discord();
        let mut b = Buckets::default();
        let t0 = Instant::now();
        for i in 0..5 {
            let h = b.channel_post(&limits, 7, t0).unwrap();
            assert!(h.contains(&("x-ratelimit-remaining", (4 - i).to_string())));
        }
        let refused = b
            .channel_post(&limits, 7, t0 + Duration::from_secs(4))
            .unwrap_err()
            .into_response();
        assert_eq!(refused.status(), 429);
        assert_eq!(refused.headers()["x-ratelimit-scope"], "user");
        assert_eq!(refused.headers()["retry-after"], "1");
        // Another channel has its own bucket; the first resets after its window.
        assert!(b.channel_post(&limits, 8, t0).is_ok());
        assert!(b
            .channel_post(&limits, 7, t0 + Duration::from_secs(5))
            .is_ok());
        assert_eq!(
            b.counts,
            RateLimitCounts {
                route: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn the_global_limit_answers_a_global_429() {
        let limits = FakeLimits {
            global_requests: 2,
            ..FakeLimits::discord()
        };
        let mut b = Buckets::default();
        let t0 = Instant::now();
        assert!(b.channel_post(&limits, 1, t0).is_ok());
        assert!(b.channel_post(&limits, 2, t0).is_ok());
        let refused = b.channel_post(&limits, 3, t0).unwrap_err().into_response();
        assert_eq!(refused.headers()["x-ratelimit-global"], "true");
        assert_eq!(refused.headers()["x-ratelimit-scope"], "global");
        assert_eq!(b.counts.global, 1);
    }
}
