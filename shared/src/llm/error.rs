//! Claude failures as types the queue acts on: which are retryable, how long to wait, and a
//! message a person can read (with the request id support needs).

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

use crate::job::JobError;

/// An error status from the API, with everything parsed from its body and headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaudeApiError {
    /// HTTP status.
    pub status: u16,
    /// `error.type` (e.g. `rate_limit_error`), or `http_<status>` when the body is not JSON.
    pub error_type: String,
    /// `error.message`, or the start of a non-JSON body.
    pub message: String,
    /// `error.details.error_code`, when present (e.g. `enforced_spend_limit_reached`).
    pub error_code: Option<String>,
    /// `request-id` header or `request_id` body field.
    pub request_id: Option<String>,
    /// How long the API asked us to wait (`retry-after`, else the rate-limit reset headers).
    pub retry_after: Option<Duration>,
}

/// The `error_code` of a 429 that no retry can fix.
pub const SPEND_LIMIT_CODE: &str = "enforced_spend_limit_reached";

/// How long a rate-limited or overloaded answer defers the job when the API named no wait
/// (no `retry-after`, no reset headers); the queue spreads it further.
pub const UNHINTED_WAIT: Duration = Duration::from_secs(2);

impl ClaudeApiError {
    /// A 429 caused by the organization's spend limit: terminal.
    pub fn is_spend_limit(&self) -> bool {
        self.error_code.as_deref() == Some(SPEND_LIMIT_CODE)
    }

    /// The API asks to slow down rather than reporting a failure: 429 (except spend limit),
    /// 529 overloaded, or 503 with a `retry-after`. The job is deferred without spending an
    /// attempt.
    pub fn is_rate_limit(&self) -> bool {
        match self.status {
            429 => !self.is_spend_limit(),
            529 => true,
            503 => self.retry_after.is_some(),
            _ => false,
        }
    }

    /// 429 (except spend limit), 500 and 529, and other 5xx from proxies in front of the API.
    pub fn is_retryable(&self) -> bool {
        match self.status {
            429 => !self.is_spend_limit(),
            500..=599 => true,
            _ => false,
        }
    }

    fn headline(&self) -> &'static str {
        match self.status {
            429 if self.is_spend_limit() => "Claude spend limit reached",
            429 => "Claude rate limit reached",
            529 => "Claude is overloaded",
            500..=599 => "Claude had a server error",
            _ => "Claude rejected the request",
        }
    }
}

impl std::fmt::Display for ClaudeApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} {}): {}",
            self.headline(),
            self.status,
            self.error_type,
            self.message
        )?;
        if let Some(id) = &self.request_id {
            write!(f, " [request-id {id}]")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong calling Claude.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// No API key, or an unusable base URL.
    #[error("Claude is not configured: {0}")]
    NotConfigured(String),
    /// The API answered with an error status.
    #[error("{0}")]
    Api(ClaudeApiError),
    /// No complete answer within the request timeout.
    #[error("Claude did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection could not be made or broke.
    #[error("could not reach Claude: {0}")]
    Connection(String),
    /// Every worker's calls to Claude are paused (a 429 on the deployment's key said so);
    /// the call was not made.
    #[error("Claude is paused for every worker for {:.1}s more ({})", .0.remaining.as_secs_f64(), .0.reason)]
    Paused(crate::upstream::Pause),
    /// A 2xx answer that is not the documented JSON.
    #[error("Claude sent an unreadable response{}: {message}", request_id.as_deref().map(|id| format!(" [request-id {id}]")).unwrap_or_default())]
    Decode {
        /// What failed to parse.
        message: String,
        /// The response's request id.
        request_id: Option<String>,
    },
}

impl LlmError {
    /// Whether trying again later can succeed (429 other than spend limit, 5xx, timeouts,
    /// connection errors). A decode failure of a 2xx is not retried: the call was billed.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Api(e) => e.is_retryable(),
            LlmError::Timeout(_) | LlmError::Connection(_) | LlmError::Paused(_) => true,
            LlmError::NotConfigured(_) | LlmError::Decode { .. } => false,
        }
    }

    /// Whether the job should wait without spending an attempt: the API is rate limiting or
    /// overloaded ([`ClaudeApiError::is_rate_limit`]), or every worker is paused.
    pub fn is_rate_limit(&self) -> bool {
        match self {
            LlmError::Api(e) => e.is_rate_limit(),
            LlmError::Paused(_) => true,
            _ => false,
        }
    }

    /// The wait the API asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Api(e) => e.retry_after,
            LlmError::Paused(p) => Some(p.remaining),
            _ => None,
        }
    }

    /// The request id for support, if the API gave one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            LlmError::Api(e) => e.request_id.as_deref(),
            LlmError::Decode { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status, for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            LlmError::Api(e) => Some(e.status),
            _ => None,
        }
    }
}

impl From<LlmError> for JobError {
    /// Rate limits and overload defer the job (no attempt spent) for the API's wait, or
    /// [`UNHINTED_WAIT`]; other transient failures are retried (an attempt spent); the rest is
    /// terminal.
    fn from(e: LlmError) -> Self {
        if e.is_rate_limit() {
            let wait = e.retry_after().unwrap_or(UNHINTED_WAIT);
            match e {
                // Another worker met the refusal; this call was never made.
                LlmError::Paused(_) => JobError::deferred(wait, e.to_string()),
                _ => JobError::upstream_deferred(wait, e.to_string()),
            }
        } else if e.is_retryable() {
            JobError::Retryable {
                retry_after: e.retry_after(),
                message: e.to_string(),
            }
        } else {
            JobError::Terminal {
                message: e.to_string(),
            }
        }
    }
}

/// Parses an error response; tolerant of bodies that are not the documented JSON (proxies).
pub fn parse_api_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> ClaudeApiError {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let err = json.as_ref().and_then(|v| v.get("error"));
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    let error_type =
        text(err.and_then(|e| e.get("type"))).unwrap_or_else(|| format!("http_{status}"));
    let message = text(err.and_then(|e| e.get("message"))).unwrap_or_else(|| {
        let raw = String::from_utf8_lossy(body);
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            "(empty body)".to_owned()
        } else {
            trimmed.chars().take(300).collect()
        }
    });
    let error_code = text(err.and_then(|e| e.pointer("/details/error_code")));
    let request_id = header_str(headers, "request-id")
        .map(str::to_owned)
        .or_else(|| text(json.as_ref().and_then(|v| v.get("request_id"))));
    ClaudeApiError {
        status,
        error_type,
        message,
        error_code,
        request_id,
        retry_after: retry_after(headers, now),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The wait from `retry-after` (seconds); when absent, from the `anthropic-ratelimit-*-reset`
/// headers: the latest reset among the limits that are exhausted (remaining 0), or among all
/// reported limits when none says so, minus `now`. `None` when the headers say nothing.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    if let Some(v) = header_str(headers, "retry-after") {
        if let Ok(secs) = v.parse::<f64>() {
            if secs.is_finite() && secs >= 0.0 {
                return Some(Duration::from_secs_f64(secs));
            }
        }
    }
    const LIMITS: [&str; 4] = ["requests", "tokens", "input-tokens", "output-tokens"];
    let resets: Vec<(bool, DateTime<Utc>)> = LIMITS
        .iter()
        .filter_map(|limit| {
            let reset = header_str(headers, &format!("anthropic-ratelimit-{limit}-reset"))?;
            let reset = DateTime::parse_from_rfc3339(reset)
                .ok()?
                .with_timezone(&Utc);
            let exhausted = header_str(headers, &format!("anthropic-ratelimit-{limit}-remaining"))
                .and_then(|r| r.parse::<u64>().ok())
                == Some(0);
            Some((exhausted, reset))
        })
        .collect();
    let any_exhausted = resets.iter().any(|(e, _)| *e);
    let latest = resets
        .iter()
        .filter(|(e, _)| *e || !any_exhausted)
        .map(|(_, r)| *r)
        .max()?;
    Some((latest - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests;
