//! The Claude client with a fleet-wide pause (real Redis, the Claude fake): a 429 or 529 that
//! names a wait pauses every worker's calls on the shared key; one without a wait defers only
//! its own job.

use std::time::Duration;

use onomancer_testkit::claude_fake::{error_body, ClaudeFake};
use secrecy::SecretString;

use super::*;
use crate::job::JobError;
use crate::keys::KeySpace;
use crate::redis_conn::RedisConn;
use crate::upstream::UpstreamPause;

/// Two workers' clients sharing one pause in a fresh namespace (the guard cleans it up).
async fn two_workers(
    fake: &ClaudeFake,
) -> (ClaudeClient, ClaudeClient, onomancer_testkit::TestRedis) {
    let guard = onomancer_testkit::TestRedis::new().await;
    let conn = RedisConn::connect(&onomancer_testkit::redis_ns::redis_url())
        .await
        .unwrap();
    let pause = UpstreamPause::new(conn, KeySpace::isolated(&guard.name));
    let client = || {
        ClaudeClient::new(ClaudeConfig::new(fake.base_url(), SecretString::from("k")))
            .unwrap()
            .with_pause(pause.clone())
    };
    (client(), client(), guard)
}

fn request() -> MessagesRequest {
    MessagesRequest::new("test-model", 64, vec![Message::user("hi")])
}

#[tokio::test]
async fn a_429_on_the_shared_key_pauses_every_worker_for_its_wait() {
    let fake = ClaudeFake::start().await;
    let (a, b, _guard) = two_workers(&fake).await;
    fake.push_failure(
        429,
        &[("retry-after", "20")],
        error_body("rate_limit_error", "requests per minute"),
    );

    let first = JobError::from(a.messages(&request()).await.unwrap_err());
    assert!(matches!(first, JobError::Deferred { wait, .. } if wait == Duration::from_secs(20)));

    let err = b.messages(&request()).await.unwrap_err();
    assert!(matches!(err, LlmError::Paused(_)), "{err:?}");
    let JobError::Deferred {
        wait,
        reason,
        upstream: false,
    } = JobError::from(err)
    else {
        panic!("a pause defers")
    };
    assert!(
        wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
        "{wait:?}"
    );
    assert!(
        reason.starts_with("Claude is paused for every worker")
            && reason.contains("429 rate_limit_error"),
        "{reason}"
    );
    assert!(a
        .count_tokens(&request().count_tokens_request())
        .await
        .is_err());
    assert_eq!(fake.requests().len(), 1, "no call while paused");
}

#[tokio::test]
async fn an_overload_without_a_wait_defers_its_job_and_pauses_nobody() {
    let fake = ClaudeFake::start().await;
    let (a, b, _guard) = two_workers(&fake).await;
    fake.push_failure(529, &[], error_body("overloaded_error", "Overloaded"));

    let err = JobError::from(a.messages(&request()).await.unwrap_err());
    assert!(
        matches!(err, JobError::Deferred { wait, .. } if wait == super::error::UNHINTED_WAIT),
        "{err:?}"
    );
    b.messages(&request())
        .await
        .expect("no pause without a wait");
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn the_spend_limit_pauses_nobody_and_stays_terminal() {
    let fake = ClaudeFake::start().await;
    let (a, b, _guard) = two_workers(&fake).await;
    let body = serde_json::json!({"type":"error","error":{"type":"rate_limit_error","message":"usage limits",
        "details":{"error_code":"enforced_spend_limit_reached"}}});
    fake.push_failure(429, &[("retry-after", "60")], body.to_string());

    let err = JobError::from(a.messages(&request()).await.unwrap_err());
    assert!(matches!(err, JobError::Terminal { .. }), "{err:?}");
    b.messages(&request()).await.unwrap();
}
