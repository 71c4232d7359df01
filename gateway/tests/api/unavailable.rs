//! Redis unreachable: 503, never a 2xx for a job that was not stored.

use std::sync::{Arc, Mutex};

use onomancer_gateway::{Application, GatewayConfig, HttpSettings, StartupError};
use onomancer_shared::queue::QueueConfig;
use onomancer_shared::KeySpace;
use reqwest::StatusCode;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::helpers::{
    command, fixture, linear_issue, spawn_app_with, uuid_simple, Options, API_KEY, GUILD,
};

/// A TCP proxy in front of the test Redis that can be cut, so the app loses Redis mid-flight.
struct RedisProxy {
    url: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl RedisProxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let upstream = onomancer_testkit::redis_ns::redis_url()
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let registry = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                registry.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(accept);
        Self { url, tasks }
    }

    /// Closes the listener and every proxied connection.
    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

#[tokio::test]
async fn losing_redis_turns_every_write_into_503_and_readiness_fails() {
    let proxy = RedisProxy::start().await;
    let app = spawn_app_with(Options {
        redis_url: Some(proxy.url.clone()),
        ..Options::default()
    })
    .await;
    assert_eq!(
        app.github("acme", "status", "before", &fixture("status.json"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    proxy.cut();

    let resp = app
        .github("acme", "status", &uuid_simple(), &fixture("status.json"))
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "unavailable");

    assert_eq!(
        app.linear(&uuid_simple(), &linear_issue("create", 0))
            .await
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        app.discord(&command("usage", json!([]), GUILD, &[]))
            .await
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let resp = app
        .client
        .post(format!("{}/v1/transforms", app.address))
        .bearer_auth(API_KEY)
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Over the Gateway (websocket mode), the user is told nothing was queued.
    let gateway_ix: serenity::all::Interaction = serde_json::from_value(crate::ws_gateway::slash(
        900_000_000_000_000_201,
        "tok-down",
        "usage",
        json!([]),
    ))
    .unwrap();
    let (body, status) = onomancer_gateway::discord::ws::reply_for(&app.state, &gateway_ix).await;
    assert_eq!(status, 503);
    assert_eq!(
        body["data"]["content"],
        onomancer_gateway::discord::ws::UNAVAILABLE
    );
    assert_eq!(body["data"]["flags"], 64);
    // PING needs no Redis and still answers.
    assert_eq!(
        app.discord(&json!({"type": 1})).await.status(),
        StatusCode::OK
    );
    // Only the job accepted before the cut is stored.
    assert_eq!(app.all_jobs("acme").await.len(), 1);
}

#[tokio::test]
async fn the_app_does_not_start_against_a_closed_port() {
    let dir = tempfile::tempdir().unwrap();
    let repo_config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
    for f in ["defaults.json", "quotas.json", "tenants/thj.json"] {
        std::fs::copy(repo_config.join(f), dir.path().join(f)).unwrap();
    }
    let tenants =
        onomancer_shared::tenant::TenantRegistry::load_with_env(dir.path(), |_| None).unwrap();
    let result = Application::build(GatewayConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        redis_url: "redis://127.0.0.1:1".into(),
        keys: KeySpace::isolated("t-closed"),
        tenants: Arc::new(tenants),
        queue: QueueConfig::default(),
        discord_public_key: None,
        usage: None,
        http: HttpSettings::default(),
    })
    .await;
    assert!(matches!(result, Err(StartupError::Redis(_))));
}
