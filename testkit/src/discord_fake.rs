//! A local fake of the Discord REST routes the project uses, served where serenity's `proxy`
//! sends them (`{origin}/api/v10/...`): editing an interaction's `@original` reply, interaction
//! follow-ups, and channel messages with `nonce` + `enforce_nonce` (a repeated nonce in the same
//! channel within the nonce window returns the earlier message, as Discord does). It records
//! every request, keeps the messages a user would see, answers with realistic message objects,
//! enforces Discord's rate limits on channel posts (`discord_fake/limits.rs`: 5 per 5 s per channel,
//! 50 requests/s global, documented headers and 429 bodies, every 429 counted; configurable),
//! and can be scripted to answer 429 (with `retry_after`) or other errors, or to hold a post's
//! answer after creating it (a worker killed between Discord's answer and its own marker). Its
//! Gateway half (`discord_fake/gateway.rs`) serves websocket mode: `GET /gateway`, a websocket
//! speaking Discord's protocol, and interaction callbacks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::routing::{get, patch, post};
use axum::Router;
use serde_json::{json, Value};

mod gateway;
pub use gateway::{gateway_interaction, InteractionCallback, BOT_USER_ID};

mod limits;
pub use limits::{FakeLimits, RateLimitCounts, CHANNEL_MESSAGES_BUCKET};

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct DiscordRequest {
    /// HTTP method.
    pub method: String,
    /// Path (with query), e.g. `/api/v10/webhooks/1/tok/messages/@original`.
    pub path: String,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The JSON body (`Null` when empty or not JSON).
    pub body: Value,
}

/// A message as users would see it.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeMessage {
    /// Snowflake.
    pub id: u64,
    /// Channel it is in.
    pub channel_id: u64,
    /// Current content.
    pub content: String,
    /// The nonce it was created with.
    pub nonce: Option<String>,
    /// The interaction token it belongs to (replies and follow-ups).
    pub interaction_token: Option<String>,
    /// True for an interaction's original (deferred) reply.
    pub original: bool,
    /// How many times it was edited.
    pub edits: u32,
    /// When the fake created it (for the nonce window).
    pub created: Instant,
}

struct Scripted {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

struct FakeState {
    requests: Vec<DiscordRequest>,
    messages: Vec<FakeMessage>,
    scripted: VecDeque<Scripted>,
    expired_tokens: Vec<String>,
    next_id: u64,
    limits: FakeLimits,
    buckets: limits::Buckets,
    /// While set, channel posts are created and then not answered until released.
    hold_posts: bool,
}

/// Wakes held channel posts.
type Release = Arc<tokio::sync::Notify>;

/// The running fake; stops when dropped.
pub struct DiscordFake {
    origin: String,
    state: Arc<Mutex<FakeState>>,
    release: Release,
    gateway: gateway::Gateway,
    task: tokio::task::JoinHandle<()>,
    gateway_task: tokio::task::JoinHandle<()>,
}

impl Drop for DiscordFake {
    fn drop(&mut self) {
        self.task.abort();
        self.gateway_task.abort();
    }
}

/// The channel the fake puts interaction replies in.
pub const INTERACTION_CHANNEL_ID: u64 = 1_100_000_000_000_000_001;

type Shared = Arc<Mutex<FakeState>>;

impl DiscordFake {
    /// Starts the fake on 127.0.0.1 on a free port, enforcing Discord's documented limits.
    pub async fn start() -> Self {
        Self::start_with(FakeLimits::discord()).await
    }

    /// Starts the fake with `limits`.
    pub async fn start_with(limits: FakeLimits) -> Self {
        let state: Shared = Arc::new(Mutex::new(FakeState {
            requests: Vec::new(),
            messages: Vec::new(),
            scripted: VecDeque::new(),
            expired_tokens: Vec::new(),
            next_id: 1_300_000_000_000_000_000,
            limits,
            buckets: limits::Buckets::default(),
            hold_posts: false,
        }));
        let release: Release = Arc::default();
        let app = Router::new()
            .route("/api/v10/webhooks/{app}/{token}", post(followup))
            .route(
                "/api/v10/webhooks/{app}/{token}/messages/{message}",
                patch(edit_message),
            )
            .route(
                "/api/v10/channels/{channel}/messages",
                post(channel_message),
            )
            .fallback(unknown_route)
            .with_state((state.clone(), release.clone()));
        let ws_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Discord Gateway fake");
        let gw = gateway::Gateway::default();
        gw.state.lock().unwrap().ws_url =
            format!("ws://{}", ws_listener.local_addr().expect("local addr"));
        let gateway_task = tokio::spawn(gw.clone().serve(ws_listener));
        let app = app.merge(
            Router::new()
                .route("/api/v10/gateway", get(gateway::gateway_url))
                .route(
                    "/api/v10/interactions/{id}/{token}/callback",
                    post(gateway::callback),
                )
                .with_state(gw.clone()),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Discord fake");
        let origin = format!("http://{}", listener.local_addr().expect("local addr"));
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("Discord fake serves");
        });
        Self {
            origin,
            state,
            release,
            gateway: gw,
            task,
            gateway_task,
        }
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<DiscordRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Every message that exists, in creation order.
    pub fn messages(&self) -> Vec<FakeMessage> {
        self.state.lock().unwrap().messages.clone()
    }

    /// The reply and follow-ups of one interaction, in creation order.
    pub fn interaction_messages(&self, token: &str) -> Vec<FakeMessage> {
        self.messages()
            .into_iter()
            .filter(|m| m.interaction_token.as_deref() == Some(token))
            .collect()
    }

    /// The messages of one channel, in creation order.
    pub fn channel_messages(&self, channel_id: u64) -> Vec<FakeMessage> {
        self.messages()
            .into_iter()
            .filter(|m| m.channel_id == channel_id)
            .collect()
    }

    /// The limits in force.
    pub fn limits(&self) -> FakeLimits {
        self.state.lock().unwrap().limits
    }

    /// The 429s sent so far.
    pub fn rate_limited(&self) -> RateLimitCounts {
        self.state.lock().unwrap().buckets.counts
    }

    /// While `hold` is true, channel posts create their message and then get no answer until
    /// [`DiscordFake::release_held`] (what a worker sees when it dies between Discord's answer
    /// and its own marker). Turning it off releases the held ones.
    pub fn hold_channel_posts(&self, hold: bool) {
        self.state.lock().unwrap().hold_posts = hold;
        if !hold {
            self.release_held();
        }
    }

    /// Answers every held channel post.
    pub fn release_held(&self) {
        self.release.notify_waiters();
    }

    /// The next request is answered with a 429 as Discord sends it (body `retry_after` in
    /// seconds, `Retry-After` rounded up, `X-RateLimit-*` headers).
    pub fn script_rate_limit(&self, retry_after_secs: f64, global: bool) {
        let mut headers = vec![
            ("retry-after", (retry_after_secs.ceil() as u64).to_string()),
            ("x-ratelimit-limit", "5".to_owned()),
            ("x-ratelimit-remaining", "0".to_owned()),
            ("x-ratelimit-reset-after", format!("{retry_after_secs:.3}")),
            ("x-ratelimit-bucket", "f1e2d3c4b5a6".to_owned()),
            (
                "x-ratelimit-scope",
                if global { "global" } else { "user" }.to_owned(),
            ),
        ];
        if global {
            headers.push(("x-ratelimit-global", "true".to_owned()));
        }
        self.state.lock().unwrap().scripted.push_back(Scripted {
            status: 429,
            headers,
            body: json!({"message": "You are being rate limited.", "retry_after": retry_after_secs, "global": global}),
        });
    }

    /// The next request is answered with `status` and Discord's JSON error body.
    pub fn script_error(&self, status: u16, code: i64, message: &str) {
        self.state.lock().unwrap().scripted.push_back(Scripted {
            status,
            headers: Vec::new(),
            body: json!({"message": message, "code": code}),
        });
    }

    /// From now on, requests with this interaction token get 401 `Invalid Webhook Token` (50027),
    /// as after the token's 15 minutes.
    pub fn expire_interaction(&self, token: &str) {
        self.state
            .lock()
            .unwrap()
            .expired_tokens
            .push(token.to_owned());
    }
}

// The REST routes: recording, error bodies, message objects, and the handlers.
mod routes;
use routes::{channel_message, edit_message, followup, unknown_route};
