//! `POST /webhooks/linear/{tenant}`.

use onomancer_gateway::signature::hmac_sha256_hex;
use onomancer_shared::{JobKind, Lane};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{linear_issue, payload, spawn_app, uuid_simple, LINEAR_SECRET};

#[tokio::test]
async fn an_issue_change_becomes_a_linear_activity_job() {
    let app = spawn_app().await;
    let resp = app.linear("lin-1", &linear_issue("update", 0)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let jobs = app.jobs("acme", Lane::Default).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].kind, JobKind::LinearActivity);
    let p = payload(&jobs[0]);
    assert_eq!(p["entity"], "Issue");
    assert_eq!(p["action"], "update");
    assert_eq!(p["identifier"], "ENG-42");
    assert_eq!(p["team"], "ENG");
    assert_eq!(p["state"], "In Progress");
    assert_eq!(p["actor"], "Ada");
    assert_eq!(p["changed"], json!(["stateId", "updatedAt"]));
}

#[tokio::test]
async fn comments_and_projects_become_jobs_and_other_types_are_ignored() {
    let app = spawn_app().await;
    let mut comment = linear_issue("create", 0);
    comment["type"] = "Comment".into();
    comment["data"] = json!({"id": "c1", "body": "Looks good\nmore", "issue": {"id": "i1", "identifier": "ENG-7", "title": "Fix"}});
    assert_eq!(app.linear("lin-c", &comment).await.status(), StatusCode::OK);
    let mut project = linear_issue("update", 0);
    project["type"] = "Project".into();
    project["data"] = json!({"id": "p1", "name": "Rocket", "url": "https://linear.app/acme/project/rocket",
        "description": "Decision: launch in March", "labels": [{"id": "l1", "name": "decision", "color": "#fff"}]});
    assert_eq!(app.linear("lin-p", &project).await.status(), StatusCode::OK);
    let mut cycle = linear_issue("update", 0);
    cycle["type"] = "Cycle".into();
    assert_eq!(app.linear("lin-x", &cycle).await.status(), StatusCode::OK);

    let jobs = app.jobs("acme", Lane::Default).await;
    assert_eq!(jobs.len(), 2);
    let c = payload(&jobs[0]);
    assert_eq!(
        (
            c["entity"].as_str(),
            c["title"].as_str(),
            c["team"].as_str()
        ),
        (Some("Comment"), Some("Fix"), Some("ENG"))
    );
    // Bodies and labels travel for decision search: the comment's body, the project's
    // description.
    assert_eq!(c["body"], "Looks good\nmore");
    let p = payload(&jobs[1]);
    assert_eq!(p["title"], "Rocket");
    assert_eq!(p["body"], "Decision: launch in March");
    assert_eq!(p["labels"], json!(["decision"]));
}

#[tokio::test]
async fn a_redelivery_answers_200_and_enqueues_nothing() {
    let app = spawn_app().await;
    let body = linear_issue("create", 0);
    assert_eq!(app.linear("lin-dup", &body).await.status(), StatusCode::OK);
    let again = app.linear("lin-dup", &body).await;
    assert_eq!(again.status(), StatusCode::OK);
    let v: serde_json::Value = again.json().await.unwrap();
    assert_eq!(v["duplicate"], true);
    assert_eq!(app.jobs("acme", Lane::Default).await.len(), 1);
}

#[tokio::test]
async fn a_stale_or_future_timestamp_is_401() {
    let app = spawn_app().await;
    for skew in [-61_000, 61_000, -3_600_000] {
        let resp = app
            .linear(&uuid_simple(), &linear_issue("create", skew))
            .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "skew {skew}");
    }
    assert_eq!(
        app.linear(&uuid_simple(), &linear_issue("create", -30_000))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(app.jobs("acme", Lane::Default).await.len(), 1);
}

#[tokio::test]
async fn wrong_or_missing_signatures_are_401() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&linear_issue("create", 0)).unwrap();
    let url = format!("{}/webhooks/linear/acme", app.address);
    for sig in [
        None,
        Some(hmac_sha256_hex("wrong secret", &body)),
        Some("zz".to_owned()),
    ] {
        let mut req = app
            .client
            .post(&url)
            .header("linear-delivery", uuid_simple())
            .body(body.clone());
        if let Some(s) = &sig {
            req = req.header("linear-signature", s);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.json::<serde_json::Value>().await.unwrap(),
            json!({"error": "unauthorized", "message": "missing or invalid signature or API key"})
        );
    }
    assert!(app.all_jobs("acme").await.is_empty());
}

#[tokio::test]
async fn malformed_json_with_a_valid_signature_is_400_naming_the_field() {
    let app = spawn_app().await;
    let mut body = linear_issue("create", 0);
    body["webhookTimestamp"] = "yesterday".into();
    let resp = app.linear(&uuid_simple(), &body).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("webhookTimestamp"),
        "{v}"
    );
}

#[tokio::test]
async fn bodies_over_1_mb_are_413_and_unknown_tenants_404() {
    let app = spawn_app().await;
    let big = vec![b' '; 1024 * 1024 + 1];
    let sig = hmac_sha256_hex(LINEAR_SECRET, &big);
    let resp = app
        .client
        .post(format!("{}/webhooks/linear/acme", app.address))
        .header("linear-signature", sig)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let resp = app
        .client
        .post(format!("{}/webhooks/linear/nobody", app.address))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_rate_limited_tenant_gets_429_with_retry_after_and_nothing_stored() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        requests_per_minute: 1,
        ..Default::default()
    })
    .await;
    assert_eq!(
        app.linear("lin-r1", &linear_issue("create", 0))
            .await
            .status(),
        StatusCode::OK
    );
    // The second delivery runs the one-call rate check and enqueue (the stream is known now).
    let refused = app.linear("lin-r2", &linear_issue("update", 0)).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let v: serde_json::Value = refused.json().await.unwrap();
    assert!(v.to_string().contains("rate"), "{v}");
    assert_eq!(app.jobs("acme", Lane::Default).await.len(), 1);
}
