//! `POST /webhooks/github/{tenant}` with GitHub's own payload examples.

use onomancer_shared::{JobKind, Lane};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{fixture, payload, spawn_app, spawn_app_with, uuid_simple, Options};

#[tokio::test]
async fn every_fixture_is_accepted_and_stored_as_the_right_job_kind() {
    let app = spawn_app().await;
    let cases = [
        (
            "workflow_run",
            "workflow_run.completed.json",
            JobKind::BuildStatus,
        ),
        (
            "workflow_run",
            "workflow_run.requested.json",
            JobKind::BuildStatus,
        ),
        (
            "check_suite",
            "check_suite.completed.json",
            JobKind::BuildStatus,
        ),
        ("status", "status.json", JobKind::BuildStatus),
        (
            "pull_request",
            "pull_request.opened.json",
            JobKind::GithubActivity,
        ),
        (
            "pull_request",
            "pull_request.closed.json",
            JobKind::GithubActivity,
        ),
        ("release", "release.published.json", JobKind::GithubActivity),
        ("push", "push.json", JobKind::GithubActivity),
    ];
    for (i, (event, file, _)) in cases.iter().enumerate() {
        let resp = app
            .github("acme", event, &format!("delivery-{i}"), &fixture(file))
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{file}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["duplicate"], false, "{file}");
    }
    let jobs = app.jobs("acme", Lane::Default).await;
    assert_eq!(jobs.len(), cases.len());
    for ((event, file, kind), job) in cases.iter().zip(&jobs) {
        assert_eq!(job.kind, *kind, "{file}");
        assert_eq!(job.tenant.as_str(), "acme");
        let p = payload(job);
        assert_eq!(p["event"], *event, "{file}");
        assert!(job
            .idempotency_key
            .as_deref()
            .unwrap()
            .starts_with("github:delivery-"));
    }
    let first = payload(&jobs[0]);
    assert_eq!(first["repo"], "octo-org/octo-repo");
    assert_eq!(first["action"], "completed");
}

#[tokio::test]
async fn a_redelivery_answers_200_and_enqueues_nothing() {
    let app = spawn_app().await;
    let body = fixture("pull_request.opened.json");
    let first = app.github("acme", "pull_request", "dup-1", &body).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let again = app.github("acme", "pull_request", "dup-1", &body).await;
    assert_eq!(again.status(), StatusCode::OK);
    let v: serde_json::Value = again.json().await.unwrap();
    assert_eq!(v["duplicate"], true);
    assert_eq!(app.jobs("acme", Lane::Default).await.len(), 1);
    assert!(app
        .metrics_text()
        .await
        .contains(r#"onomancer_gateway_webhooks_total{event="pull_request",outcome="duplicate",source="github"} 1"#));
}

#[tokio::test]
async fn ping_answers_200_and_enqueues_nothing() {
    let app = spawn_app().await;
    let resp = app
        .github("acme", "ping", &uuid_simple(), &fixture("ping.json"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(app.all_jobs("acme").await.is_empty());
}

#[tokio::test]
async fn other_events_are_acknowledged_ignored_and_counted() {
    let app = spawn_app().await;
    let resp = app
        .github("acme", "star", &uuid_simple(), br#"{"action":"created"}"#)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(app.all_jobs("acme").await.is_empty());
    assert!(app.metrics_text().await.contains(
        r#"onomancer_gateway_webhooks_total{event="star",outcome="ignored",source="github"} 1"#
    ));
}

fn docs_push() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "before": "1111111111111111111111111111111111111111",
        "after": "2222222222222222222222222222222222222222",
        "compare": "https://github.com/acme/product/compare/1111...2222",
        "commits": [{"id": "2222", "message": "PRD v2", "added": ["docs/prd/rocket.md"], "modified": ["README.md"], "removed": []}],
        "head_commit": {"id": "2222", "message": "PRD v2", "added": [], "modified": [], "removed": []},
        "repository": {"id": 1, "name": "product", "full_name": "acme/product"},
        "pusher": {"name": "ada", "email": "ada@example.com"}
    }))
    .unwrap()
}

#[tokio::test]
async fn a_push_touching_documents_also_enqueues_a_transform_that_counts_against_the_quota() {
    let app = spawn_app().await;
    let resp = app.github("acme", "push", "push-1", &docs_push()).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let jobs = app.jobs("acme", Lane::Default).await;
    let kinds: Vec<&JobKind> = jobs.iter().map(|j| &j.kind).collect();
    assert_eq!(kinds, [&JobKind::GithubActivity, &JobKind::Transform]);
    let t = payload(&jobs[1]);
    assert_eq!(t["source"]["type"], "github_files");
    assert_eq!(t["source"]["repo"], "acme/product");
    assert_eq!(
        t["source"]["sha"],
        "2222222222222222222222222222222222222222"
    );
    assert_eq!(t["source"]["paths"], json!(["docs/prd/rocket.md"]));

    // A redelivery stores nothing and gives the transformation back.
    let again = app.github("acme", "push", "push-1", &docs_push()).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(app.jobs("acme", Lane::Default).await.len(), 2);
    let used = app
        .state
        .admission
        .quota_usage(
            &onomancer_shared::TenantId::new("acme"),
            Default::default(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(used.day.used, 1);
}

#[tokio::test]
async fn a_push_over_quota_still_records_the_activity() {
    let app = spawn_app_with(Options {
        per_day: Some(0),
        ..Options::default()
    })
    .await;
    let resp = app.github("acme", "push", "push-q", &docs_push()).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let kinds: Vec<JobKind> = app
        .jobs("acme", Lane::Default)
        .await
        .into_iter()
        .map(|j| j.kind)
        .collect();
    assert_eq!(kinds, [JobKind::GithubActivity]);
}

#[tokio::test]
async fn missing_or_wrong_signatures_are_401_without_detail() {
    let app = spawn_app().await;
    let body = fixture("status.json");
    for sig in [
        None,
        Some("sha256=00"),
        Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
        Some("garbage"),
    ] {
        let resp = app
            .github_signed("acme", "status", &uuid_simple(), &body, sig)
            .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{sig:?}");
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(
            v,
            json!({"error": "unauthorized", "message": "missing or invalid signature or API key"})
        );
    }
    // A tenant without a GitHub secret refuses everything.
    let resp = app.github("other", "status", &uuid_simple(), &body).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(app.all_jobs("acme").await.is_empty());
}

#[tokio::test]
async fn an_unknown_tenant_is_404() {
    let app = spawn_app().await;
    let resp = app
        .github("nobody", "status", &uuid_simple(), &fixture("status.json"))
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = app
        .github(
            "Not%20A%20Slug",
            "status",
            &uuid_simple(),
            &fixture("status.json"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_json_with_a_valid_signature_is_400_naming_the_problem() {
    let app = spawn_app().await;
    let resp = app
        .github("acme", "workflow_run", &uuid_simple(), br#"{"action":"completed","workflow_run":{"name":"ci"},"repository":{"full_name":"a/b"}}"#)
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = resp.json().await.unwrap();
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("workflow_run") && msg.contains("head_sha"),
        "{msg}"
    );

    let resp = app
        .github("acme", "push", &uuid_simple(), b"{\"ref\": ")
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = app
        .github_signed("acme", "push", "bad delivery id!", &docs_push(), None)
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "signature is checked first"
    );
    assert!(app.all_jobs("acme").await.is_empty());
}

#[tokio::test]
async fn bodies_over_25_mb_are_413() {
    let app = spawn_app().await;
    let body = vec![b' '; 25 * 1024 * 1024 + 1];
    let resp = app.github("acme", "push", &uuid_simple(), &body).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_large_but_allowed_payload_is_accepted() {
    let app = spawn_app().await;
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("release.published.json")).unwrap();
    v["release"]["body"] = "x".repeat(5 * 1024 * 1024).into();
    let resp = app
        .github(
            "acme",
            "release",
            &uuid_simple(),
            &serde_json::to_vec(&v).unwrap(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(app.jobs("acme", Lane::Default).await.len(), 1);
}
