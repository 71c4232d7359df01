//! Parsing Claude's error answers and mapping them to what the queue does.

use super::*;
use reqwest::header::{HeaderName, HeaderValue};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn body(kind: &str, message: &str) -> Vec<u8> {
    serde_json::json!({"type":"error","error":{"type":kind,"message":message},"request_id":"req_body"})
        .to_string()
        .into_bytes()
}

#[test]
fn bad_request_is_terminal_and_readable() {
    let e = parse_api_error(
        400,
        &headers(&[("request-id", "req_1")]),
        &body("invalid_request_error", "max_tokens: too big"),
        now(),
    );
    let err = LlmError::Api(e);
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        "Claude rejected the request (400 invalid_request_error): max_tokens: too big [request-id req_1]"
    );
    assert_eq!(
        JobError::from(err),
        JobError::terminal("Claude rejected the request (400 invalid_request_error): max_tokens: too big [request-id req_1]")
    );
}

#[test]
fn statuses_are_classified() {
    for (status, retryable) in [
        (400, false),
        (401, false),
        (403, false),
        (404, false),
        (413, false),
        (429, true),
        (500, true),
        (529, true),
    ] {
        let e = parse_api_error(status, &HeaderMap::new(), &body("x", "y"), now());
        assert_eq!(e.is_retryable(), retryable, "status {status}");
    }
}

#[test]
fn spend_limit_429_is_terminal() {
    let b = serde_json::json!({"type":"error","error":{"type":"rate_limit_error","message":"spend limit",
        "details":{"error_code":"enforced_spend_limit_reached"}}});
    let e = parse_api_error(
        429,
        &headers(&[("retry-after", "30")]),
        b.to_string().as_bytes(),
        now(),
    );
    assert!(e.is_spend_limit());
    let job: JobError = LlmError::Api(e).into();
    assert!(
        matches!(job, JobError::Terminal { ref message } if message.starts_with("Claude spend limit reached (429"))
    );
}

#[test]
fn rate_limit_defers_the_job_for_retry_after() {
    let e = parse_api_error(
        429,
        &headers(&[("retry-after", "17")]),
        &body("rate_limit_error", "slow down"),
        now(),
    );
    assert_eq!(e.request_id.as_deref(), Some("req_body"));
    let job: JobError = LlmError::Api(e).into();
    assert_eq!(
        job,
        JobError::Deferred {
            reason:
                "Claude rate limit reached (429 rate_limit_error): slow down [request-id req_body]"
                    .into(),
            wait: Duration::from_secs(17),
            upstream: true,
        }
    );
}

#[test]
fn overload_and_unavailable_with_a_wait_defer_and_other_5xx_retry() {
    let overloaded = parse_api_error(
        529,
        &HeaderMap::new(),
        &body("overloaded_error", "Overloaded"),
        now(),
    );
    assert!(matches!(
        JobError::from(LlmError::Api(overloaded)),
        JobError::Deferred { wait, .. } if wait == UNHINTED_WAIT
    ));
    let unavailable = parse_api_error(503, &headers(&[("retry-after", "4")]), b"", now());
    assert!(matches!(
        JobError::from(LlmError::Api(unavailable)),
        JobError::Deferred { wait, .. } if wait == Duration::from_secs(4)
    ));
    for status in [500, 502, 503] {
        let e = parse_api_error(status, &HeaderMap::new(), b"", now());
        assert!(
            matches!(JobError::from(LlmError::Api(e)), JobError::Retryable { .. }),
            "{status}"
        );
    }
    // A wait from the reset headers counts as the API's wait.
    let h = headers(&[
        ("anthropic-ratelimit-tokens-remaining", "0"),
        ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:09Z"),
    ]);
    let e = parse_api_error(429, &h, &body("rate_limit_error", "tokens"), now());
    assert_eq!(
        JobError::from(LlmError::Api(e)).wait(),
        Some(Duration::from_secs(9))
    );
}

#[test]
fn wait_derives_from_the_exhausted_limit_reset() {
    let h = headers(&[
        ("anthropic-ratelimit-requests-remaining", "10"),
        ("anthropic-ratelimit-requests-reset", "2026-01-01T00:01:00Z"),
        ("anthropic-ratelimit-input-tokens-remaining", "0"),
        (
            "anthropic-ratelimit-input-tokens-reset",
            "2026-01-01T00:00:20Z",
        ),
        ("anthropic-ratelimit-output-tokens-remaining", "0"),
        (
            "anthropic-ratelimit-output-tokens-reset",
            "2026-01-01T00:00:42Z",
        ),
    ]);
    assert_eq!(retry_after(&h, now()), Some(Duration::from_secs(42)));
    // Nothing exhausted: the latest of all resets.
    let h = headers(&[
        ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:05Z"),
        ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:09Z"),
    ]);
    assert_eq!(retry_after(&h, now()), Some(Duration::from_secs(9)));
    // A reset in the past means no wait; no headers means no hint.
    let h = headers(&[("anthropic-ratelimit-tokens-reset", "2025-12-31T23:59:00Z")]);
    assert_eq!(retry_after(&h, now()), Some(Duration::ZERO));
    assert_eq!(retry_after(&HeaderMap::new(), now()), None);
    // retry-after wins over resets.
    let h = headers(&[
        ("retry-after", "3"),
        ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:09Z"),
    ]);
    assert_eq!(retry_after(&h, now()), Some(Duration::from_secs(3)));
}

#[test]
fn non_json_bodies_are_tolerated() {
    let e = parse_api_error(502, &HeaderMap::new(), b"<html>Bad Gateway</html>", now());
    assert_eq!(e.error_type, "http_502");
    assert_eq!(e.message, "<html>Bad Gateway</html>");
    assert!(e.is_retryable());
    let e = parse_api_error(529, &HeaderMap::new(), b"", now());
    assert_eq!(e.message, "(empty body)");
    assert_eq!(
        e.to_string(),
        "Claude is overloaded (529 http_529): (empty body)"
    );
}

#[test]
fn transport_errors_are_retryable_without_a_hint() {
    for e in [
        LlmError::Timeout(Duration::from_secs(1)),
        LlmError::Connection("refused".into()),
    ] {
        assert!(matches!(
            JobError::from(e),
            JobError::Retryable {
                retry_after: None,
                ..
            }
        ));
    }
    let decode = LlmError::Decode {
        message: "eof".into(),
        request_id: Some("req_9".into()),
    };
    assert_eq!(decode.request_id(), Some("req_9"));
    assert!(matches!(JobError::from(decode), JobError::Terminal { .. }));
}
