//! `POST /v1/messages`: scripted failures and injected faults first, then the answer. An
//! answer is generated in a task of its own and billed (recorded in the ledger) the moment it
//! is generated, whether or not the client is still waiting: a client that gives up, or a
//! worker killed mid-call, still pays, as with the real API.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use onomancer_shared::llm::Prices;
use onomancer_shared::usage::{cost_micros, TokenCounts};

use super::faults::{body_key, error_answer, ratelimit_headers, Fault};
use super::prompt::{cache_usage, request_blocks};
use super::{admit, count_tokens, error_response, lock, ClaudeFake, Scripted, Shared};

/// One call the fake answered (and so billed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnsweredCall {
    /// The message id (`msg_fake_<n>`, unique per fake).
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// The billed tokens, exactly as sent in `usage` (with the 1-hour share of cache writes).
    pub tokens: TokenCounts,
}

/// The ledger: what the fake answered, and so billed.
impl ClaudeFake {
    /// Every call answered so far (each one billed), in the order generated.
    pub fn answered(&self) -> Vec<AnsweredCall> {
        self.lock().answered.clone()
    }

    /// How many calls were answered (billed).
    pub fn answered_calls(&self) -> usize {
        self.lock().answered.len()
    }

    /// The exact cost of every answered call at `prices`, with the project's formula
    /// ([`cost_micros`]), in micro-dollars. Panics on a model without a price: the sum would
    /// be wrong.
    pub fn answered_cost(&self, prices: &Prices) -> i64 {
        self.lock()
            .answered
            .iter()
            .map(|c| {
                let price = prices
                    .get(&c.model)
                    .unwrap_or_else(|| panic!("no price for {}", c.model));
                cost_micros(&c.tokens, price)
            })
            .sum()
    }

    /// Waits until at least `n` calls have been answered (a signal, not a poll).
    pub async fn wait_answered(&self, n: usize) {
        let mut rx = self.lock().answered_count.subscribe();
        let _ = rx.wait_for(|count| *count >= n).await;
    }

    /// Message ids being generated now (each will be billed).
    pub fn in_flight(&self) -> BTreeSet<String> {
        self.lock().in_flight.clone()
    }

    /// Requests left hanging so far (never answered, never billed).
    pub fn hanging(&self) -> usize {
        self.lock().hanging
    }
}

/// What to do with one request, decided when it arrives.
enum Plan {
    Fail(Response),
    Hang,
    Answer(Duration),
}

fn plan(state: &Shared, body: &Bytes, request_id: &str) -> Plan {
    let mut s = lock(state);
    let scripted = s.scripted.pop_front();
    let fault = match scripted {
        Some(Scripted::Raw(f)) => {
            let mut resp = (f.status, f.body).into_response();
            let h = resp.headers_mut();
            h.insert(
                "request-id",
                HeaderValue::from_str(request_id).expect("ascii"),
            );
            h.insert("content-type", HeaderValue::from_static("application/json"));
            for (k, v) in f.headers {
                if let (Ok(k), Ok(v)) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    h.insert(k, v);
                }
            }
            return Plan::Fail(resp);
        }
        Some(Scripted::Fault(f)) => Some(f),
        None => {
            let key = body_key(body);
            let attempt = s.attempts.entry(key).or_insert(0);
            let n = *attempt;
            *attempt += 1;
            s.mix.as_ref().and_then(|m| m.pick(body, n))
        }
    };
    if let Some(f) = fault {
        *s.fault_counts.entry(f.name()).or_default() += 1;
    }
    let answer_delay = s.answer_delay;
    match fault {
        Some(f) if f.is_error() => Plan::Fail(error_answer(f, request_id)),
        Some(Fault::Hang) => Plan::Hang,
        Some(Fault::Slow(d)) => Plan::Answer(answer_delay + d),
        _ => Plan::Answer(answer_delay),
    }
}

pub(super) async fn messages(
    State(state): State<Shared>,
    version: axum::http::Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (parsed, request_id, seq) =
        match admit(&state, "/v1/messages", version, &headers, &body).await {
            Ok(ok) => ok,
            Err(resp) => return resp,
        };
    let delay = match plan(&state, &body, &request_id) {
        Plan::Fail(resp) => return resp,
        Plan::Hang => {
            lock(&state).hanging += 1;
            return std::future::pending().await;
        }
        Plan::Answer(delay) => delay,
    };
    let Some(max_tokens) = parsed
        .get("max_tokens")
        .and_then(Value::as_u64)
        .filter(|m| *m > 0)
    else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "max_tokens: must be a positive integer",
            &request_id,
        );
    };
    let id = format!("msg_fake_{seq}");
    lock(&state).in_flight.insert(id.clone());
    // Generated and billed even if this handler is dropped (the client went away).
    let generation = tokio::spawn(generate(state.clone(), parsed, id, max_tokens, delay));
    match generation.await {
        Ok(body) => {
            let mut resp = ([("request-id", request_id)], axum::Json(body)).into_response();
            let h = resp.headers_mut();
            for (k, v) in ratelimit_headers(false, Duration::from_secs(1)) {
                if let (Ok(k), Ok(v)) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    h.insert(k, v);
                }
            }
            resp
        }
        Err(_) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "the fake's generation task failed",
            &request_id,
        ),
    }
}

async fn generate(
    state: Shared,
    parsed: Value,
    id: String,
    max_tokens: u64,
    delay: Duration,
) -> Value {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let model = parsed["model"].as_str().unwrap_or_default().to_owned();
    let (usage, responder) = {
        let mut s = lock(&state);
        let usage = cache_usage(&mut s, &model, &request_blocks(&parsed));
        (usage, s.responder.clone())
    };
    let mut text = responder(&parsed);
    let mut output_tokens = count_tokens(&text).max(1);
    let mut stop_reason = "end_turn";
    if output_tokens > max_tokens {
        text = text.chars().take((max_tokens * 4) as usize).collect();
        output_tokens = max_tokens;
        stop_reason = "max_tokens";
    }
    let tokens = TokenCounts {
        input: usage.input,
        output: output_tokens,
        cache_creation: usage.write,
        cache_creation_1h: if usage.write_1h { usage.write } else { 0 },
        cache_read: usage.read,
    };
    {
        let mut s = lock(&state);
        s.in_flight.remove(&id);
        s.answered.push(AnsweredCall {
            id: id.clone(),
            model: model.clone(),
            tokens,
        });
        let n = s.answered.len();
        s.answered_count.send_replace(n);
    }
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": text}],
        "model": model,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {
            "input_tokens": usage.input,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": usage.write,
            "cache_read_input_tokens": usage.read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": if usage.write_1h { 0 } else { usage.write },
                "ephemeral_1h_input_tokens": if usage.write_1h { usage.write } else { 0 },
            },
        }
    })
}
