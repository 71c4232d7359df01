//! `/healthz`, `/readyz`, `/metrics`.

use reqwest::StatusCode;

use crate::helpers::{fixture, spawn_app};

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let h = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), StatusCode::OK);
    let r = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["redis"], "ok");
    assert_eq!(v["tenants"], 3);

    assert_eq!(
        app.github("acme", "status", "m-1", &fixture("status.json"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let m = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), StatusCode::OK);
    assert!(m.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = m.text().await.unwrap();
    assert!(
        text.contains(
            r#"onomancer_gateway_requests_total{route="/webhooks/github/{tenant}",status="202"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("onomancer_gateway_request_duration_seconds_bucket"));
    assert!(text.contains(
        r#"onomancer_gateway_webhooks_total{event="status",outcome="enqueued",source="github"} 1"#
    ));
    let nf = app
        .client
        .get(format!("{}/nope", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(nf.status(), StatusCode::NOT_FOUND);
}
