//! Guarded fetching from hosts that rate limit (a local server through base overrides): the job
//! is deferred for the host's wait, whatever its attempt, never failed.

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use onomancer_shared::integrations::fetch::{
    FetchError, FetchPolicy, Fetcher, GitHubAuth, ParsedSource, SourceKind,
};
use onomancer_shared::JobError;
use secrecy::SecretString;
use url::Url;

/// The Discord CDN answering 429 with `Retry-After`, and GitHub's contents API answering its
/// primary rate limit (403, nothing remaining, reset in two minutes).
async fn limited_server() -> (Url, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route(
            "/attachments/1/2/busy.md",
            get(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "7")],
                    "slow down",
                )
            }),
        )
        .route(
            "/repos/o/limited/contents/docs/plan.md",
            get(|| async {
                let reset = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    + 120;
                (
                    StatusCode::FORBIDDEN,
                    [
                        ("x-ratelimit-remaining", "0".to_owned()),
                        ("x-ratelimit-reset", reset.to_string()),
                    ],
                    "{\"message\":\"API rate limit exceeded\"}",
                )
                    .into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, task)
}

fn local_policy(base: &Url) -> FetchPolicy {
    FetchPolicy::default()
        .with_override(SourceKind::GitHubFile, base.clone())
        .with_override(SourceKind::DiscordAttachment, base.clone())
}

#[tokio::test]
async fn a_429_defers_the_job_for_retry_after_at_any_attempt() {
    let (base, _server) = limited_server().await;
    let source = ParsedSource::parse("https://cdn.discordapp.com/attachments/1/2/busy.md").unwrap();
    let err = Fetcher::new(local_policy(&base))
        .fetch(&source, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::RateLimited { status: 429, .. }),
        "{err}"
    );
    // Unlike network errors, a rate limit never turns terminal with attempts.
    assert!(matches!(
        err.into_job_error(5),
        JobError::Deferred { wait, .. } if wait == Duration::from_secs(7)
    ));
}

#[tokio::test]
async fn githubs_rate_limit_403_defers_until_its_reset() {
    let (base, _server) = limited_server().await;
    let mut policy = local_policy(&base);
    policy.github = Some(GitHubAuth {
        token: SecretString::from("ghp_test"),
    });
    let source =
        ParsedSource::parse("https://github.com/o/limited/blob/main/docs/plan.md").unwrap();
    let err = Fetcher::new(policy).fetch(&source, None).await.unwrap_err();
    let JobError::Deferred {
        wait,
        reason,
        upstream: true,
    } = err.into_job_error(1)
    else {
        panic!("GitHub's 403 rate limit defers")
    };
    assert!(
        wait > Duration::from_secs(110) && wait <= Duration::from_secs(120),
        "until x-ratelimit-reset: {wait:?}"
    );
    assert!(reason.contains("is rate limiting (HTTP 403)"), "{reason}");
}
