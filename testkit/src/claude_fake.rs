//! A fake of Anthropic's Messages API on `127.0.0.1:0`, speaking the real wire format
//! (Anthropic's Messages API reference): it records every request, answers with programmable text, simulates prompt
//! caching (5-minute / 1-hour TTL on a clock the test controls, 1024-token minimum), replays
//! scripted failures (status, headers, body) before succeeding, injects faults by count or by
//! seeded rate (429 with and without `retry-after`, 529, 500, hangs, slow answers; see
//! [`Fault`]), and keeps the ledger of what it answered, so a test can check that every billed
//! call is on the bill, to the micro-dollar ([`ClaudeFake::answered_cost`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use prompt::request_blocks;

pub use answer::AnsweredCall;
pub use faults::{Fault, FaultMix};

mod answer;
mod faults;
mod prompt;

/// Computes the reply text from the request body.
pub type Responder = Arc<dyn Fn(&Value) -> String + Send + Sync>;

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// `/v1/messages` or `/v1/messages/count_tokens`.
    pub path: String,
    /// The HTTP version it came over.
    pub version: axum::http::Version,
    /// Headers, names lower-case.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON (`Null` when it was not JSON).
    pub body: Value,
}

struct Failure {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: String,
}

/// A failure queued for the next requests.
enum Scripted {
    /// Exactly this status, headers and body.
    Raw(Failure),
    /// A fault, answered in the wire format.
    Fault(Fault),
}

struct FakeState {
    requests: Vec<RecordedRequest>,
    scripted: VecDeque<Scripted>,
    /// Faults by rate, for requests with nothing scripted.
    mix: Option<FaultMix>,
    /// How many requests with each body arrived (the fault draw's attempt number).
    attempts: HashMap<[u8; 32], u64>,
    /// Injected faults by [`Fault::name`].
    fault_counts: BTreeMap<&'static str, usize>,
    /// Extra time every answer (not error) takes to generate.
    answer_delay: Duration,
    /// Answers generated (billed), in order.
    answered: Vec<AnsweredCall>,
    /// The number of answers, for tests waiting on it.
    answered_count: tokio::sync::watch::Sender<usize>,
    /// Message ids being generated: billed when done, whatever the client does meanwhile.
    in_flight: BTreeSet<String>,
    /// Requests left hanging.
    hanging: usize,
    responder: Responder,
    /// Prefix hash -> expiry on the fake clock.
    cache: HashMap<String, Duration>,
    clock: Duration,
    min_cacheable_tokens: u64,
    delay: Option<Duration>,
    next_id: u64,
}

/// The running fake; the server stops when this is dropped.
pub struct ClaudeFake {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<FakeState>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ClaudeFake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Deterministic token count of a text: one token per 4 characters, rounded up.
pub fn count_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// The documented error body: `{"type":"error","error":{"type","message"},"request_id"}`.
pub fn error_body(error_type: &str, message: &str) -> String {
    json!({"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake_error"}).to_string()
}

/// The default reply: `[<persona>] <digest>` where persona is the word after the first
/// `persona:` (any case) in the prompt, or `none`, and digest is 16 hex characters of the
/// SHA-256 of every text of the request (so different inputs give different replies).
pub fn default_reply(body: &Value) -> String {
    let texts = request_blocks(body)
        .into_iter()
        .map(|b| b.text)
        .collect::<Vec<_>>();
    let mut h = Sha256::new();
    for t in &texts {
        h.update(t.as_bytes());
        h.update([0]);
    }
    let digest = hex::encode(h.finalize());
    let persona = texts
        .iter()
        .find_map(|t| {
            let lower = t.to_lowercase();
            let at = lower.find("persona:")?;
            let word: String = lower[at + "persona:".len()..]
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            (!word.is_empty()).then_some(word)
        })
        .unwrap_or_else(|| "none".into());
    format!("[{persona}] {}", &digest[..16])
}

/// Serves `app` over HTTP/1.1 and, for clients that start with HTTP/2 (prior knowledge, as
/// `ANTHROPIC_HTTP_VERSION=http2` does), HTTP/2 with no cap on concurrent streams, so every
/// call a test opens is open here too.
async fn serve(listener: tokio::net::TcpListener, app: Router) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            builder.http2().max_concurrent_streams(None);
            let _ = builder
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                .await;
        });
    }
}

impl ClaudeFake {
    /// Starts the fake on an ephemeral port.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(FakeState {
            requests: Vec::new(),
            scripted: VecDeque::new(),
            mix: None,
            attempts: HashMap::new(),
            fault_counts: BTreeMap::new(),
            answer_delay: Duration::ZERO,
            answered: Vec::new(),
            answered_count: tokio::sync::watch::Sender::new(0),
            in_flight: BTreeSet::new(),
            hanging: 0,
            responder: Arc::new(default_reply),
            cache: HashMap::new(),
            clock: Duration::ZERO,
            min_cacheable_tokens: 1024,
            delay: None,
            next_id: 0,
        }));
        let app = Router::new()
            .route("/v1/messages", post(answer::messages))
            .route("/v1/messages/count_tokens", post(count))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Claude fake");
        let addr = listener.local_addr().expect("fake address");
        let server = tokio::spawn(serve(listener, app));
        Self {
            addr,
            state,
            server,
        }
    }

    /// `ANTHROPIC_BASE_URL` for clients under test.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// How many `POST /v1/messages` requests arrived (failed ones included).
    pub fn calls(&self) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.path == "/v1/messages")
            .count()
    }

    /// Makes the next `/v1/messages` request fail with this status, headers and raw body
    /// (failures queue up and are used in order; see [`error_body`]).
    pub fn push_failure(&self, status: u16, headers: &[(&str, &str)], body: impl Into<String>) {
        self.lock().scripted.push_back(Scripted::Raw(Failure {
            status: StatusCode::from_u16(status).expect("valid status"),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        }));
    }

    /// Makes the next `count` `/v1/messages` requests meet `fault` (queued after any scripted
    /// failure already waiting).
    pub fn fail_next(&self, fault: Fault, count: usize) {
        let mut s = self.lock();
        for _ in 0..count {
            s.scripted.push_back(Scripted::Fault(fault));
        }
    }

    /// Injects faults by rate into every later request that has nothing scripted (`None`:
    /// stop injecting).
    pub fn inject(&self, mix: Option<FaultMix>) {
        self.lock().mix = mix;
    }

    /// Faults injected so far, by [`Fault::name`].
    pub fn faults(&self) -> BTreeMap<&'static str, usize> {
        self.lock().fault_counts.clone()
    }

    /// Makes every answer (not errors) take `delay` to generate; the answer is billed when
    /// generated even if the client stopped waiting.
    pub fn set_answer_delay(&self, delay: Duration) {
        self.lock().answer_delay = delay;
    }

    /// Replaces the reply text function (default [`default_reply`]).
    pub fn set_responder(&self, responder: impl Fn(&Value) -> String + Send + Sync + 'static) {
        self.lock().responder = Arc::new(responder);
    }

    /// Moves the fake's cache clock forward (cache entries expire 5 minutes, or 1 hour, after
    /// their last use).
    pub fn advance(&self, by: Duration) {
        self.lock().clock += by;
    }

    /// Sets the minimum cacheable prefix (default 1024 tokens).
    pub fn set_min_cacheable_tokens(&self, tokens: u64) {
        self.lock().min_cacheable_tokens = tokens;
    }

    /// Delays every answer (to exercise client timeouts).
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.lock().delay = delay;
    }
}

type Shared = Arc<Mutex<FakeState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records the request and checks what every endpoint requires; `Ok` has the body, the
/// request id and the request's sequence number; `Err` is the response to send.
async fn admit(
    state: &Shared,
    path: &str,
    version: axum::http::Version,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Value, String, u64), Response> {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (request_id, delay, seq) = {
        let mut s = lock(state);
        s.next_id += 1;
        s.requests.push(RecordedRequest {
            path: path.to_owned(),
            version,
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: parsed.clone(),
        });
        (format!("req_fake_{}", s.next_id), s.delay, s.next_id)
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let fail =
        |status: StatusCode, kind: &str, msg: &str| error_response(status, kind, msg, &request_id);
    if headers.get("x-api-key").is_none() {
        return Err(fail(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
        ));
    }
    if headers
        .get("anthropic-version")
        .and_then(|v| v.to_str().ok())
        != Some("2023-06-01")
    {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: 2023-06-01 is required",
        ));
    }
    if parsed.is_null() {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "body is not JSON",
        ));
    }
    if parsed.get("model").and_then(Value::as_str).is_none() {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "model: Field required",
        ));
    }
    if parsed
        .get("messages")
        .and_then(Value::as_array)
        .is_none_or(|m| m.is_empty())
    {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "messages: at least one message is required",
        ));
    }
    Ok((parsed, request_id, seq))
}

fn error_response(status: StatusCode, kind: &str, message: &str, request_id: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id});
    (
        status,
        [("request-id", request_id.to_owned())],
        axum::Json(body),
    )
        .into_response()
}

async fn count(
    State(state): State<Shared>,
    version: axum::http::Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (parsed, request_id, _) = match admit(
        &state,
        "/v1/messages/count_tokens",
        version,
        &headers,
        &body,
    )
    .await
    {
        Ok(ok) => ok,
        Err(resp) => return resp,
    };
    let total: u64 = request_blocks(&parsed)
        .iter()
        .map(|b| count_tokens(&b.text))
        .sum();
    (
        [("request-id", request_id)],
        axum::Json(json!({"input_tokens": total})),
    )
        .into_response()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fault_tests;
