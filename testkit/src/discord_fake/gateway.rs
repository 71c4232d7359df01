//! The Gateway half of the Discord fake, for websocket mode: `GET /gateway` names a local
//! websocket that speaks Discord's protocol (HELLO, IDENTIFY, READY, heartbeats acknowledged,
//! `INTERACTION_CREATE` dispatches, close code 4004 for a rejected token), and
//! `POST /interactions/{id}/{token}/callback` records the answers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Message};

/// The bot user the fake's READY names.
pub const BOT_USER_ID: u64 = 1_400_000_000_000_000_001;

/// An interaction callback the fake received (the initial answer to an interaction).
#[derive(Clone, Debug, PartialEq)]
pub struct InteractionCallback {
    /// The interaction id in the path.
    pub interaction_id: String,
    /// The interaction token in the path.
    pub token: String,
    /// The response body (`{"type": 5}`, or type 4 with `data`).
    pub body: Value,
}

#[derive(Default)]
pub(crate) struct GatewayState {
    pub(crate) ws_url: String,
    reject_token: bool,
    identified: Vec<Value>,
    queued: VecDeque<Value>,
    callbacks: Vec<InteractionCallback>,
}

/// Shared between the REST routes, the websocket loop and the test.
#[derive(Clone, Default)]
pub(crate) struct Gateway {
    pub(crate) state: Arc<Mutex<GatewayState>>,
    /// Woken on every IDENTIFY, callback, and queued dispatch.
    changed: Arc<Notify>,
}

impl Gateway {
    fn update<T>(&self, f: impl FnOnce(&mut GatewayState) -> T) -> T {
        let out = f(&mut self.state.lock().unwrap());
        self.changed.notify_waiters();
        out
    }

    pub(crate) fn reject_token(&self) {
        self.update(|s| s.reject_token = true);
    }

    pub(crate) fn dispatch(&self, interaction: Value) {
        self.update(|s| s.queued.push_back(interaction));
    }

    pub(crate) fn callbacks(&self) -> Vec<InteractionCallback> {
        self.state.lock().unwrap().callbacks.clone()
    }

    /// Waits until `ready` holds of the state, at most `limit`.
    pub(crate) async fn wait<T>(
        &self,
        limit: Duration,
        what: &str,
        ready: impl Fn(&GatewayState) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            if let Some(v) = ready(&self.state.lock().unwrap()) {
                return v;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("the Discord fake timed out waiting for {what}");
            }
        }
    }

    pub(crate) async fn wait_identify(&self, limit: Duration) -> Value {
        self.wait(limit, "an IDENTIFY", |s| s.identified.last().cloned())
            .await
    }

    pub(crate) async fn wait_callbacks(
        &self,
        n: usize,
        limit: Duration,
    ) -> Vec<InteractionCallback> {
        self.wait(limit, "interaction callbacks", |s| {
            (s.callbacks.len() >= n).then(|| s.callbacks.clone())
        })
        .await
    }

    /// Serves websocket sessions one after another (serenity reconnects on its own).
    pub(crate) async fn serve(self, listener: tokio::net::TcpListener) {
        while let Ok((tcp, _)) = listener.accept().await {
            if let Ok(socket) = tokio_tungstenite::accept_async(tcp).await {
                self.session(socket).await;
            }
        }
    }

    async fn session(&self, mut socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) {
        let hello = json!({"op": 10, "d": {"heartbeat_interval": 45_000}, "s": null, "t": null});
        if socket.send(Message::Text(hello.to_string())).await.is_err() {
            return;
        }
        let mut seq = 0u64;
        let mut ready = false;
        loop {
            let notified = self.changed.notified();
            if ready {
                let next = self.state.lock().unwrap().queued.pop_front();
                if let Some(d) = next {
                    seq += 1;
                    let event = json!({"op": 0, "s": seq, "t": "INTERACTION_CREATE", "d": d});
                    if socket.send(Message::Text(event.to_string())).await.is_err() {
                        return;
                    }
                    continue;
                }
            }
            tokio::select! {
                frame = socket.next() => {
                    let Some(Ok(Message::Text(text))) = frame else { return };
                    let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                    match v["op"].as_u64() {
                        Some(2) => {
                            let reject = self.update(|s| {
                                s.identified.push(v["d"].clone());
                                s.reject_token
                            });
                            if reject {
                                let close = CloseFrame {
                                    code: CloseCode::from(4004),
                                    reason: "Authentication failed.".into(),
                                };
                                let _ = socket.send(Message::Close(Some(close))).await;
                                return;
                            }
                            seq += 1;
                            if socket.send(Message::Text(ready_event(seq).to_string())).await.is_err() {
                                return;
                            }
                            ready = true;
                        }
                        Some(1) => {
                            let ack = json!({"op": 11, "d": null, "s": null, "t": null});
                            if socket.send(Message::Text(ack.to_string())).await.is_err() {
                                return;
                            }
                        }
                        _ => {}
                    }
                }
                () = notified => {}
            }
        }
    }
}

/// READY as Discord sends it (the fields serenity's model requires).
fn ready_event(seq: u64) -> Value {
    json!({"op": 0, "s": seq, "t": "READY", "d": {
        "v": 10,
        "user": {"id": BOT_USER_ID.to_string(), "username": "onomancer", "discriminator": "0",
                 "global_name": null, "avatar": null, "bot": true, "verified": true,
                 "mfa_enabled": false, "flags": 0},
        "guilds": [],
        "session_id": "fake-session",
        "resume_gateway_url": "ws://127.0.0.1:1",
        "shard": [0, 1],
        "application": {"id": BOT_USER_ID.to_string(), "flags": 0}}})
}

/// `GET /api/v10/gateway`.
pub(crate) async fn gateway_url(State(g): State<Gateway>) -> Json<Value> {
    let url = g.state.lock().unwrap().ws_url.clone();
    Json(json!({ "url": url }))
}

/// `POST /api/v10/interactions/{id}/{token}/callback`.
pub(crate) async fn callback(
    State(g): State<Gateway>,
    Path((interaction_id, token)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> StatusCode {
    g.update(|s| {
        s.callbacks.push(InteractionCallback {
            interaction_id,
            token,
            body,
        })
    });
    StatusCode::NO_CONTENT
}

impl super::DiscordFake {
    /// Sends an `INTERACTION_CREATE` with this payload (see [`gateway_interaction`]) to the
    /// Gateway session, as soon as one is ready.
    pub fn dispatch_interaction(&self, interaction: Value) {
        self.gateway.dispatch(interaction);
    }

    /// From now on, an IDENTIFY is answered by closing with 4004 (Authentication failed).
    pub fn reject_gateway_token(&self) {
        self.gateway.reject_token();
    }

    /// The latest IDENTIFY payload, waiting up to `limit` for one.
    pub async fn wait_gateway_identify(&self, limit: std::time::Duration) -> Value {
        self.gateway.wait_identify(limit).await
    }

    /// The interaction callbacks received, once there are at least `n` (waits up to `limit`).
    pub async fn wait_interaction_callbacks(
        &self,
        n: usize,
        limit: std::time::Duration,
    ) -> Vec<InteractionCallback> {
        self.gateway.wait_callbacks(n, limit).await
    }

    /// The interaction callbacks received so far.
    pub fn interaction_callbacks(&self) -> Vec<InteractionCallback> {
        self.gateway.callbacks()
    }

    /// The value for `DISCORD_API_BASE`: `http://127.0.0.1:<port>/api/v10`.
    pub fn api_base(&self) -> String {
        format!("{}/api/v10", self.origin)
    }
}

/// An `INTERACTION_CREATE` payload as Discord sends it over the Gateway: a slash command
/// (`kind` 1) or a message command (3) in `guild`, by a member with `roles`; `data` holds the
/// command's `name`, `type`, `options`, `target_id` and `resolved` as they should appear.
pub fn gateway_interaction(
    id: u64,
    token: &str,
    guild: &str,
    roles: &[&str],
    data: Value,
) -> Value {
    json!({
        "id": id.to_string(), "application_id": BOT_USER_ID.to_string(), "type": 2,
        "data": data, "guild_id": guild, "channel_id": "444444444444444444",
        "channel": {"id": "444444444444444444", "type": 0, "guild_id": guild},
        "member": {"user": {"id": "777777777777777777", "username": "ada", "discriminator": "0",
                            "global_name": "Ada", "avatar": null},
                   "roles": roles, "joined_at": "2025-01-01T00:00:00.000000+00:00", "deaf": false,
                   "mute": false, "flags": 0, "permissions": "0", "pending": false},
        "token": token, "version": 1, "app_permissions": "0", "locale": "en-US",
        "guild_locale": "en-US", "entitlements": [],
        "authorizing_integration_owners": {"0": guild}, "context": 0,
        "attachment_size_limit": 10_485_760
    })
}
