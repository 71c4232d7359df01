//! The gateway's HTTP errors: client errors (4xx) apart from unavailability (503), each with the
//! JSON body `{"error": <code>, "message": <text>}` (axum's own rejections included, see
//! `extract.rs`). Signature failures say nothing beyond "unauthorized"; 5xx details go to the
//! log, never to the caller.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use crate::signature::BadSignature;

/// Why a request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong signature or API key (no detail on purpose).
    #[error("unauthorized")]
    Unauthorized,
    /// The tenant in the path (or behind the guild) is not configured.
    #[error("unknown tenant")]
    UnknownTenant,
    /// The resource does not exist for this tenant.
    #[error("not found")]
    NotFound,
    /// The request is malformed; the message names the problem.
    #[error("{0}")]
    BadRequest(String),
    /// No route has this path.
    #[error("no such route")]
    NoRoute,
    /// The route exists, not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body is larger than the route accepts (declared or read so far).
    #[error("body too large")]
    PayloadTooLarge {
        /// The route's limit in bytes.
        limit: usize,
    },
    /// The body did not arrive within the body timeout (a slow or stalled client).
    #[error("request body timeout")]
    RequestTimeout,
    /// The body's content type is not one the route reads; the message says which it wants.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A transform quota is spent.
    #[error("quota exceeded")]
    QuotaExceeded {
        /// `transformationsPerDay` or `transformationsPerMonth`.
        limit: &'static str,
        /// When it resets.
        resets_at: DateTime<Utc>,
    },
    /// The tenant's request rate is exceeded.
    #[error("rate limited")]
    RateLimited {
        /// Until the next request is allowed.
        retry_after: Duration,
    },
    /// Redis (queue or admission) is unreachable: nothing was stored.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupt data.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<BadSignature> for ApiError {
    fn from(_: BadSignature) -> Self {
        ApiError::Unauthorized
    }
}

impl From<onomancer_shared::queue::QueueError> for ApiError {
    fn from(e: onomancer_shared::queue::QueueError) -> Self {
        match e {
            onomancer_shared::queue::QueueError::Unavailable(e) => {
                ApiError::Unavailable(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<onomancer_shared::admission::AdmissionError> for ApiError {
    fn from(e: onomancer_shared::admission::AdmissionError) -> Self {
        match e {
            onomancer_shared::admission::AdmissionError::Unavailable(m) => ApiError::Unavailable(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Whole seconds to wait, rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// An RFC 3339 timestamp with second precision (`2026-11-29T00:00:00Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The refusal text shown to people (Discord) and in the JSON `message`.
pub fn quota_message(limit: &str, resets_at: DateTime<Utc>) -> String {
    let what = if limit == "transformationsPerMonth" {
        "monthly"
    } else {
        "daily"
    };
    format!(
        "The {what} transformation quota ({limit}) is used up; it resets at {} (UTC).",
        rfc3339(resets_at)
    )
}

/// The refusal text for a rate limit.
pub fn rate_message(retry_after: Duration) -> String {
    format!(
        "Too many requests for this tenant (requestsPerMinute); try again in {} s.",
        retry_after_secs(retry_after)
    )
}

fn too_many(
    error: &str,
    limit: &str,
    resets_at: DateTime<Utc>,
    retry: u64,
    message: String,
) -> Response {
    let mut resp = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({
            "error": error,
            "limit": limit,
            "resets_at": rfc3339(resets_at),
            "retry_after_seconds": retry,
            "message": message,
        })),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = |status: StatusCode, error: &str, message: String| {
            (status, Json(json!({ "error": error, "message": message }))).into_response()
        };
        match self {
            ApiError::Unauthorized => body(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid signature or API key".into(),
            ),
            ApiError::UnknownTenant => body(
                StatusCode::NOT_FOUND,
                "unknown_tenant",
                "no tenant is configured under this name".into(),
            ),
            ApiError::NotFound => body(StatusCode::NOT_FOUND, "not_found", "not found".into()),
            ApiError::BadRequest(m) => body(StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::NoRoute => body(
                StatusCode::NOT_FOUND,
                "not_found",
                "no route has this path".into(),
            ),
            ApiError::MethodNotAllowed => body(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take this method".into(),
            ),
            ApiError::PayloadTooLarge { limit } => body(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than this route accepts ({limit} bytes)"),
            ),
            ApiError::RequestTimeout => {
                let mut resp = body(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    "the request body did not arrive in time; nothing was stored".into(),
                );
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                resp
            }
            ApiError::UnsupportedMediaType(m) => body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                m,
            ),
            ApiError::QuotaExceeded { limit, resets_at } => {
                let now = Utc::now();
                let retry = (resets_at - now).num_seconds().max(1) as u64;
                too_many(
                    "quota_exceeded",
                    limit,
                    resets_at,
                    retry,
                    quota_message(limit, resets_at),
                )
            }
            ApiError::RateLimited { retry_after } => {
                let retry = retry_after_secs(retry_after).max(1);
                let resets_at = Utc::now()
                    + chrono::Duration::from_std(retry_after)
                        .unwrap_or(chrono::Duration::seconds(1));
                too_many(
                    "rate_limited",
                    "requestsPerMinute",
                    resets_at,
                    retry,
                    rate_message(retry_after),
                )
            }
            ApiError::Unavailable(detail) => {
                tracing::error!(error = %detail, "refusing request: Redis unavailable");
                let mut resp = body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the job store is unavailable; nothing was stored, retry later".into(),
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(5u64));
                resp
            }
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the details are in the gateway's log".into(),
                )
            }
        }
    }
}
