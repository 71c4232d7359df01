//! Websocket mode (`DISCORD_INTERACTIONS=gateway`) against a fake Discord: its REST half
//! (`GET /gateway`, interaction callbacks) and its Gateway half (a websocket speaking Discord's
//! HELLO / IDENTIFY / READY / dispatch protocol, and close code 4004 for a bad token), driven by
//! serenity's real client.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode as AxumStatus;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use onomancer_gateway::discord::ws;
use onomancer_shared::integrations::discord::DiscordConfig;
use onomancer_shared::Lane;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::helpers::{payload, spawn_app, GUILD};

const APP_ID: u64 = 555_555_555_555_555_555;

#[derive(Clone)]
struct Fake {
    ws_url: String,
    callbacks: mpsc::UnboundedSender<(String, Value)>,
}

async fn gateway_url(State(f): State<Fake>) -> Json<Value> {
    Json(json!({ "url": f.ws_url }))
}

async fn callback(
    State(f): State<Fake>,
    Path((id, token)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> AxumStatus {
    let _ = f.callbacks.send((format!("{id}/{token}"), body));
    AxumStatus::NO_CONTENT
}

/// The Gateway half: HELLO, wait for IDENTIFY, READY (or, with `reject_token`, close with 4004
/// "Authentication failed" as Discord does), then every queued dispatch; heartbeats are
/// acknowledged. The IDENTIFY payload is reported on `identified`.
async fn serve_gateway(
    listener: tokio::net::TcpListener,
    reject_token: bool,
    mut dispatches: mpsc::UnboundedReceiver<Value>,
    identified: mpsc::UnboundedSender<Value>,
) {
    let (tcp, _) = listener.accept().await.unwrap();
    let mut socket = tokio_tungstenite::accept_async(tcp).await.unwrap();
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 45_000}, "s": null, "t": null});
    socket.send(Message::Text(hello.to_string())).await.unwrap();
    let mut seq = 0;
    loop {
        tokio::select! {
            frame = socket.next() => {
                let Some(Ok(Message::Text(text))) = frame else { return };
                let v: Value = serde_json::from_str(&text).unwrap();
                match v["op"].as_u64() {
                    Some(2) if reject_token => {
                        let close = CloseFrame {
                            code: CloseCode::from(4004),
                            reason: "Authentication failed.".into(),
                        };
                        let _ = socket.send(Message::Close(Some(close))).await;
                        return;
                    }
                    Some(2) => {
                        let _ = identified.send(v["d"].clone());
                        seq += 1;
                        let ready = json!({"op": 0, "s": seq, "t": "READY", "d": {
                            "v": 10,
                            "user": {"id": APP_ID.to_string(), "username": "onomancer",
                                     "discriminator": "0", "global_name": null, "avatar": null,
                                     "bot": true, "verified": true, "mfa_enabled": false, "flags": 0},
                            "guilds": [{"id": GUILD, "unavailable": true}],
                            "session_id": "session-1",
                            "resume_gateway_url": "ws://127.0.0.1:1",
                            "shard": [0, 1],
                            "application": {"id": APP_ID.to_string(), "flags": 0}}});
                        socket.send(Message::Text(ready.to_string())).await.unwrap();
                    }
                    Some(1) => {
                        let ack = json!({"op": 11, "d": null, "s": null, "t": null});
                        socket.send(Message::Text(ack.to_string())).await.unwrap();
                    }
                    _ => {}
                }
            }
            Some(d) = dispatches.recv() => {
                seq += 1;
                let event = json!({"op": 0, "s": seq, "t": "INTERACTION_CREATE", "d": d});
                socket.send(Message::Text(event.to_string())).await.unwrap();
            }
        }
    }
}

/// An `INTERACTION_CREATE` payload as Discord sends it over the Gateway.
pub fn slash(id: u64, token: &str, name: &str, options: Value) -> Value {
    json!({
        "id": id.to_string(), "application_id": APP_ID.to_string(), "type": 2,
        "data": {"id": "1", "name": name, "type": 1, "options": options},
        "guild_id": GUILD, "channel_id": "444444444444444444",
        "channel": {"id": "444444444444444444", "type": 0, "guild_id": GUILD},
        "member": {"user": {"id": "777777777777777777", "username": "ada", "discriminator": "0",
                            "global_name": "Ada", "avatar": null},
                   "roles": [], "joined_at": "2025-01-01T00:00:00.000000+00:00", "deaf": false,
                   "mute": false, "flags": 0, "permissions": "0", "pending": false},
        "token": token, "version": 1, "app_permissions": "0", "locale": "en-US",
        "guild_locale": "en-US", "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD}, "context": 0,
        "attachment_size_limit": 10_485_760
    })
}

struct Started {
    api_base: String,
    dispatch: mpsc::UnboundedSender<Value>,
    identified: mpsc::UnboundedReceiver<Value>,
    callbacks: mpsc::UnboundedReceiver<(String, Value)>,
}

async fn start_fake(reject_token: bool) -> Started {
    let ws_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_url = format!("ws://{}", ws_listener.local_addr().unwrap());
    let (dispatch, dispatches) = mpsc::unbounded_channel();
    let (identify_tx, identified) = mpsc::unbounded_channel();
    tokio::spawn(serve_gateway(
        ws_listener,
        reject_token,
        dispatches,
        identify_tx,
    ));
    let (callback_tx, callbacks) = mpsc::unbounded_channel();
    let fake = Fake {
        ws_url,
        callbacks: callback_tx,
    };
    let app = Router::new()
        .route("/api/v10/gateway", get(gateway_url))
        .route(
            "/api/v10/interactions/{id}/{token}/callback",
            post(callback),
        )
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_base = format!("http://{}/api/v10", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Started {
        api_base,
        dispatch,
        identified,
        callbacks,
    }
}

fn config(api_base: &str) -> DiscordConfig {
    let mut c = DiscordConfig::new("bot-token".to_string().into(), APP_ID);
    c.api_base = Some(api_base.to_owned());
    c
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap()
}

#[tokio::test]
async fn interactions_over_the_gateway_get_the_same_answers_and_jobs() {
    let app = spawn_app().await;
    let mut fake = start_fake(false).await;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ws::run(
        config(&fake.api_base),
        app.state.clone(),
        shutdown.clone(),
    ));

    let identify = next(&mut fake.identified, "IDENTIFY").await;
    // serenity identifies with the HTTP form of the token, which Discord accepts.
    assert_eq!(identify["token"], "Bot bot-token");
    assert_eq!(identify["intents"], 1, "GUILDS only: no privileged intent");

    fake.dispatch
        .send(slash(
            900_000_000_000_000_101,
            "tok-ws-usage",
            "usage",
            json!([]),
        ))
        .unwrap();
    let (path, body) = next(&mut fake.callbacks, "the /usage callback").await;
    assert_eq!(path, "900000000000000101/tok-ws-usage");
    assert_eq!(body, json!({"type": 5}));
    let jobs = app.jobs("acme", Lane::Interactive).await;
    assert_eq!(jobs.len(), 1);
    let p = payload(&jobs[0]);
    assert_eq!(p["command"], "usage");
    assert_eq!(p["token"], "tok-ws-usage");
    assert_eq!(p["user_id"], "777777777777777777");

    fake.dispatch
        .send(slash(
            900_000_000_000_000_102,
            "tok-ws-decisions",
            "decisions",
            json!([{"name": "query", "type": 3, "value": "pricing"}]),
        ))
        .unwrap();
    let (_, body) = next(&mut fake.callbacks, "the /decisions callback").await;
    assert_eq!(body, json!({"type": 5}));
    let jobs = app.jobs("acme", Lane::Interactive).await;
    assert_eq!(payload(&jobs[1])["options"]["query"], "pricing");

    // An immediate answer is sent as the callback too.
    fake.dispatch
        .send(slash(
            900_000_000_000_000_103,
            "tok-ws-help",
            "help",
            json!([]),
        ))
        .unwrap();
    let (_, body) = next(&mut fake.callbacks, "the /help callback").await;
    assert_eq!(body["type"], 4);
    assert_eq!(body["data"]["flags"], 64);
    assert!(body["data"]["content"]
        .as_str()
        .unwrap()
        .contains("/transform"));
    assert_eq!(app.jobs("acme", Lane::Interactive).await.len(), 2);
    assert_eq!(
        app.state
            .metrics
            .requests
            .with_label_values(&[ws::METRICS_ROUTE, "200"])
            .get(),
        3
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("websocket mode stops on shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_rejected_bot_token_is_an_error_naming_it() {
    let app = spawn_app().await;
    let fake = start_fake(true).await;
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        ws::run(
            config(&fake.api_base),
            app.state.clone(),
            CancellationToken::new(),
        ),
    )
    .await
    .expect("a rejected token ends websocket mode")
    .unwrap_err();
    assert!(err.to_string().contains("DISCORD_BOT_TOKEN"), "{err}");
}

#[tokio::test]
async fn websocket_mode_without_a_bot_token_fails_at_start_naming_the_settings() {
    let config_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let redis_url = onomancer_testkit::redis_ns::redis_url();
    let vars = [
        ("DISCORD_INTERACTIONS", "gateway"),
        ("ONOMANCER_HTTP_ADDR", "127.0.0.1:0"),
        ("ONOMANCER_NAMESPACE", "ws-mode-start-test"),
        ("DATABASE_URL", "sqlite::memory:"),
        ("REDIS_URL", redis_url.as_str()),
    ];
    let settings = onomancer_shared::settings::Settings::from_lookup(|k| match k {
        "ONOMANCER_CONFIG_DIR" => Some(config_dir.display().to_string()),
        _ => vars
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string()),
    })
    .unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        onomancer_gateway::run(&settings, CancellationToken::new()),
    )
    .await
    .expect("start fails at once")
    .unwrap_err();
    assert!(
        format!("{err:#}").contains(
            "DISCORD_INTERACTIONS=gateway needs DISCORD_BOT_TOKEN and DISCORD_APPLICATION_ID"
        ),
        "{err:#}"
    );
}
