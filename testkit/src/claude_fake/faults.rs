//! Fault injection for the Claude fake: rate limits (429 with and without `retry-after`),
//! overload (529), server errors (500), hangs and slow answers, chosen by count (the next N
//! requests) or by rate. Rates are deterministic: whether the n-th identical request fails
//! depends only on the seed, the request body and n, never on the order concurrent requests
//! arrive in. Error answers use the wire format Anthropic's API reference documents: the error body,
//! the `request-id` header and the `anthropic-ratelimit-*` headers.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

/// What the fake does instead of answering at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `429 rate_limit_error`. With `Some(wait)`: `retry-after` (whole seconds, rounded up)
    /// and the requests limit resetting after `wait`; with `None`: no `retry-after`, only the
    /// `anthropic-ratelimit-requests-reset` header (one second ahead), as the API sometimes does.
    RateLimited {
        /// The wait announced in `retry-after`, if any.
        retry_after: Option<Duration>,
    },
    /// `529 overloaded_error`.
    Overloaded,
    /// `500 api_error`.
    ServerError,
    /// Never answers: the connection stays open until the client gives up. Not billed.
    Hang,
    /// Answers normally after this long. Billed when the answer is generated, even if the
    /// client gave up waiting (as the API bills a generation the client no longer reads).
    Slow(Duration),
}

impl Fault {
    /// A short name for counts (`rate_limited`, `overloaded`, `server_error`, `hang`, `slow`).
    pub fn name(&self) -> &'static str {
        match self {
            Fault::RateLimited { .. } => "rate_limited",
            Fault::Overloaded => "overloaded",
            Fault::ServerError => "server_error",
            Fault::Hang => "hang",
            Fault::Slow(_) => "slow",
        }
    }

    /// True for the faults answered with an error status.
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            Fault::RateLimited { .. } | Fault::Overloaded | Fault::ServerError
        )
    }
}

/// Faults by rate: each `/v1/messages` request not already given a counted fault draws one
/// number from (seed, body, how many identical bodies came before) and gets the first fault
/// whose cumulative rate is above it, or a normal answer.
#[derive(Clone, Debug)]
pub struct FaultMix {
    seed: u64,
    entries: Vec<(Fault, f64)>,
}

impl FaultMix {
    /// No faults yet; add them with [`FaultMix::with`].
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            entries: Vec::new(),
        }
    }

    /// Adds `fault` for a share `rate` (0..=1) of requests. Panics when the rates add up to
    /// more than 1.
    pub fn with(mut self, fault: Fault, rate: f64) -> Self {
        assert!((0.0..=1.0).contains(&rate), "a rate is within 0..=1");
        self.entries.push((fault, rate));
        let total: f64 = self.entries.iter().map(|(_, r)| r).sum();
        assert!(total <= 1.0 + 1e-9, "fault rates add up to {total} > 1");
        self
    }

    /// The fault (if any) for the `attempt`-th (from 0) request with this exact body.
    pub fn pick(&self, body: &[u8], attempt: u64) -> Option<Fault> {
        let mut h = Sha256::new();
        h.update(self.seed.to_le_bytes());
        h.update(attempt.to_le_bytes());
        h.update(body);
        let digest = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        // 53 random bits: an exact f64 in [0, 1).
        let x = (u64::from_le_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
        let mut cumulative = 0.0;
        for (fault, rate) in &self.entries {
            cumulative += rate;
            if x < cumulative {
                return Some(*fault);
            }
        }
        None
    }
}

/// A stable key of a request body, for counting identical requests.
pub(super) fn body_key(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// The `anthropic-ratelimit-*` headers: the requests limit `exhausted` (remaining 0) or not,
/// every limit resetting after `reset_in`.
pub(super) fn ratelimit_headers(exhausted: bool, reset_in: Duration) -> Vec<(String, String)> {
    let reset = (chrono::Utc::now()
        + chrono::Duration::from_std(reset_in).unwrap_or(chrono::Duration::seconds(1)))
    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut out = Vec::new();
    for (limit, total, remaining) in [
        ("requests", 50u64, if exhausted { 0 } else { 49 }),
        ("tokens", 100_000, 90_000),
        ("input-tokens", 80_000, 72_000),
        ("output-tokens", 20_000, 18_000),
    ] {
        let prefix = format!("anthropic-ratelimit-{limit}");
        out.push((format!("{prefix}-limit"), total.to_string()));
        out.push((format!("{prefix}-remaining"), remaining.to_string()));
        out.push((format!("{prefix}-reset"), reset.clone()));
    }
    out
}

/// The error answer of an error fault, in the API's wire format.
pub(super) fn error_answer(fault: Fault, request_id: &str) -> Response {
    let (status, kind, message, retry_after, reset_in) = match fault {
        Fault::RateLimited { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            retry_after,
            retry_after.unwrap_or(Duration::from_secs(1)),
        ),
        Fault::Overloaded => (
            StatusCode::from_u16(529).expect("529 is a valid status"),
            "overloaded_error",
            "Overloaded",
            None,
            Duration::from_secs(1),
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "Internal server error",
            None,
            Duration::from_secs(1),
        ),
    };
    let body = json!({
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": request_id,
    });
    let mut resp = (status, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    h.insert(
        "request-id",
        HeaderValue::from_str(request_id).expect("ascii"),
    );
    if let Some(wait) = retry_after {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        h.insert("retry-after", HeaderValue::from(secs));
    }
    let exhausted = matches!(fault, Fault::RateLimited { .. });
    for (k, v) in ratelimit_headers(exhausted, reset_in) {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.insert(k, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_deterministic_and_close_to_the_asked_share() {
        let mix = FaultMix::new(7)
            .with(Fault::RateLimited { retry_after: None }, 0.2)
            .with(Fault::Overloaded, 0.1);
        let mut limited = 0;
        let mut overloaded = 0;
        for i in 0..10_000u32 {
            let body = format!("request {i}");
            let a = mix.pick(body.as_bytes(), 0);
            assert_eq!(a, mix.pick(body.as_bytes(), 0), "same draw every time");
            match a {
                Some(Fault::RateLimited { .. }) => limited += 1,
                Some(Fault::Overloaded) => overloaded += 1,
                None => {}
                other => panic!("{other:?}"),
            }
        }
        assert!((1_800..2_200).contains(&limited), "{limited}");
        assert!((850..1_150).contains(&overloaded), "{overloaded}");
        // Another attempt of the same body draws again.
        let retried = (0..1_000u64)
            .filter(|n| mix.pick(b"same", *n).is_none())
            .count();
        assert!((600..800).contains(&retried), "{retried}");
    }
}
