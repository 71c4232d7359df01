//! `/v1/transforms`, `/v1/jobs/{id}`, `/v1/usage`.

use onomancer_shared::{JobKind, Lane};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    payload, spawn_app, spawn_app_with, Options, TestApp, API_KEY, OTHER_API_KEY,
};

async fn transform(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/transforms", app.address))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.address))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_transform_is_accepted_stored_and_readable_only_by_its_tenant() {
    let app = spawn_app().await;
    let resp = transform(&app, API_KEY, &json!({"text": "# PRD\nShip the rocket.", "personas": ["leadership"], "product": "rocket"})).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let v: Value = resp.json().await.unwrap();
    let id = v["job_id"].as_str().unwrap().to_owned();

    let jobs = app.jobs("acme", Lane::Default).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id.as_str(), id);
    assert_eq!(jobs[0].kind, JobKind::Transform);
    let p = payload(&jobs[0]);
    assert_eq!(
        p["source"],
        json!({"type": "text", "text": "# PRD\nShip the rocket."})
    );
    assert_eq!(p["origin"], json!({"type": "api"}));

    let status = get(&app, API_KEY, &format!("/v1/jobs/{id}")).await;
    assert_eq!(status.status(), StatusCode::OK);
    let s: Value = status.json().await.unwrap();
    assert_eq!(s["state"], "queued");
    assert_eq!(s["kind"], "transform");

    assert_eq!(
        get(&app, OTHER_API_KEY, &format!("/v1/jobs/{id}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, API_KEY, "/v1/jobs/not-a-uuid").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, API_KEY, &format!("/v1/jobs/{}", uuid::Uuid::now_v7()))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn missing_or_wrong_api_keys_are_401() {
    let app = spawn_app().await;
    let body = json!({"text": "x"});
    assert_eq!(
        transform(&app, "nope", &body).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let resp = app
        .client
        .post(format!("{}/v1/transforms", app.address))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": "unauthorized", "message": "missing or invalid signature or API key"})
    );
    assert!(app.all_jobs("acme").await.is_empty());
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_problem() {
    let app = spawn_app().await;
    for (body, needle) in [
        (json!({"text": "x", "personas": "leadership"}), "personas"),
        (json!({"text": "x", "url": "https://a.b"}), "not both"),
        (json!({"personas": []}), "text or url"),
        (json!({"url": "file:///etc/passwd"}), "http(s)"),
        (
            json!({"text": "x", "personas": ["Bad Persona"]}),
            "personas[0]",
        ),
        (json!({"text": "x", "product": "unknown"}), "product"),
        (json!({"text": "x", "colour": "blue"}), "colour"),
    ] {
        let resp = transform(&app, API_KEY, &body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
    }
    assert!(app.all_jobs("acme").await.is_empty());
}

#[tokio::test]
async fn a_spent_quota_is_429_with_retry_after_and_a_json_body() {
    let app = spawn_app_with(Options {
        per_day: Some(1),
        ..Options::default()
    })
    .await;
    assert_eq!(
        transform(&app, API_KEY, &json!({"text": "one"}))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let resp = transform(&app, API_KEY, &json!({"text": "two"})).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 86_400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "quota_exceeded");
    assert_eq!(v["limit"], "transformationsPerDay");
    assert_eq!(v["retry_after_seconds"], retry);
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT00:00:00Z")
        .to_string();
    assert_eq!(v["resets_at"], tomorrow);
    assert!(v["message"].as_str().unwrap().contains("resets at"));
    assert_eq!(app.all_jobs("acme").await.len(), 1);
    // Reading does not consume transform quota.
    assert_eq!(
        get(&app, API_KEY, "/v1/usage").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn two_hundred_concurrent_transforms_against_a_hundred_left_store_exactly_a_hundred() {
    let app = spawn_app_with(Options {
        per_day: Some(100),
        ..Options::default()
    })
    .await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let client = app.client.clone();
            let url = format!("{}/v1/transforms", app.address);
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(API_KEY)
                    .json(&json!({"text": format!("doc {i}")}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut accepted = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((accepted, refused), (100, 100));
    assert_eq!(app.jobs("acme", Lane::Default).await.len(), 100);
}

#[tokio::test]
async fn the_request_rate_is_limited_per_tenant() {
    let app = spawn_app_with(Options {
        requests_per_minute: 2,
        ..Options::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            get(&app, API_KEY, "/v1/usage").await.status(),
            StatusCode::OK
        );
    }
    let resp = get(&app, API_KEY, "/v1/usage").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "rate_limited");
    assert_eq!(v["limit"], "requestsPerMinute");
    assert!(v["retry_after_seconds"].as_u64().unwrap() >= 1);
    // Another tenant is unaffected.
    assert_eq!(
        get(&app, OTHER_API_KEY, "/v1/usage").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn usage_reports_quota_and_recorded_usage() {
    let app = spawn_app_with(Options {
        usage_db: true,
        ..Options::default()
    })
    .await;
    assert_eq!(
        transform(&app, API_KEY, &json!({"url": "https://example.com/prd"}))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let store = app.state.usage.clone().unwrap();
    let record = onomancer_shared::usage::UsageRecord {
        tenant: onomancer_shared::TenantId::new("acme"),
        user: None,
        timestamp: chrono::Utc::now() - chrono::Duration::seconds(1),
        operation: "transform".into(),
        service: "claude".into(),
        model: Some("claude-sonnet-4-5".into()),
        tokens: onomancer_shared::usage::TokenCounts {
            input: 1000,
            output: 500,
            cache_read: 3000,
            ..Default::default()
        },
        storage_bytes: 0,
        api_calls: 1,
        cost_micros: 10_500,
        job_id: None,
        step: None,
        idempotency_key: "test:1".into(),
    };
    store.record(&record).await.unwrap();
    let resp = get(&app, API_KEY, "/v1/usage?from=2000-01-01").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["tenant"], "acme");
    assert_eq!(v["quota"]["day"]["used"], 1);
    assert_eq!(v["quota"]["day"]["left"], 99);
    assert_eq!(v["quota"]["month"]["limit"], 2000);
    assert_eq!(v["usage"]["api_calls"], 1);
    assert_eq!(v["usage"]["tokens"]["output"], 500);
    assert_eq!(v["prompt_cache_hit_rate"], 0.75);
    assert_eq!(
        get(&app, API_KEY, "/v1/usage?from=yesterday")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, API_KEY, "/v1/usage?from=2030-01-01&to=2029-01-01")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn decisions_are_searchable_by_their_tenants_key_only() {
    use onomancer_shared::activity::ActivitySource;
    use onomancer_shared::decisions::{Decision, DecisionStore};
    let app = spawn_app_with(Options {
        usage_db: true,
        ..Options::default()
    })
    .await;
    let store = DecisionStore::new(app.state.usage.as_ref().unwrap().database().clone());
    for (tenant, key, text) in [
        ("acme", "a1", "Decision: the queue is Redis Streams"),
        ("acme", "a2", "Decision: pricing stays flat"),
        ("other", "o1", "Decision: the queue is Kafka"),
    ] {
        store
            .record(&Decision {
                tenant: onomancer_shared::TenantId::new(tenant),
                source: ActivitySource::Linear,
                title: format!("{key} title"),
                text: text.into(),
                url: Some(format!("https://linear.app/x/{key}")),
                author: Some("Bob".into()),
                decided_at: chrono::Utc::now(),
                dedupe_key: key.into(),
            })
            .await
            .unwrap();
    }
    let resp = get(&app, API_KEY, "/v1/decisions?q=queue").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["query"], "queue");
    let found = v["decisions"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{v}");
    assert_eq!(found[0]["text"], "Decision: the queue is Redis Streams");
    assert_eq!(found[0]["url"], "https://linear.app/x/a1");
    assert_eq!(found[0]["source"], "linear");

    let v: Value = get(&app, OTHER_API_KEY, "/v1/decisions?q=queue")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["decisions"][0]["text"], "Decision: the queue is Kafka");
    assert_eq!(v["decisions"].as_array().unwrap().len(), 1);

    // No query: the latest, limited.
    let v: Value = get(&app, API_KEY, "/v1/decisions?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["decisions"].as_array().unwrap().len(), 1);
    for bad in [
        "/v1/decisions?limit=0",
        "/v1/decisions?limit=51",
        "/v1/decisions?limit=x",
    ] {
        assert_eq!(
            get(&app, API_KEY, bad).await.status(),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(
        get(&app, "wrong-key", "/v1/decisions").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn small_routes_refuse_bodies_over_their_limit() {
    let app = spawn_app().await;
    let big = "x".repeat(1024 * 1024 + 1);
    let resp = transform(&app, API_KEY, &json!({ "text": big })).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "payload_too_large");
    // Discord bodies are capped at 128 kB; well-formed signature headers get that far.
    let resp = app
        .client
        .post(format!("{}/discord/interactions", app.address))
        .header("x-signature-ed25519", "ab".repeat(64))
        .header("x-signature-timestamp", "1700000000")
        .body(vec![b' '; 128 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
