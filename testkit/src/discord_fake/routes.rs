//! The Discord fake's REST handlers: interaction follow-ups and `@original` edits, channel
//! messages (rate limits, nonce window, held answers), and a 404 for any other route; each
//! request is recorded first.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{DiscordRequest, FakeMessage, FakeState, Release, Shared, INTERACTION_CHANNEL_ID};

fn record(state: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) {
    state.lock().unwrap().requests.push(DiscordRequest {
        method: method.to_string(),
        path: uri.to_string(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
    });
}

fn error(status: u16, code: i64, message: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("valid status"),
        Json(json!({"message": message, "code": code})),
    )
        .into_response()
}

/// A scripted answer, an expired token, or a body Discord would refuse.
fn precheck(state: &Shared, token: Option<&str>, body: &Value) -> Option<Response> {
    let mut s = state.lock().unwrap();
    if let Some(scripted) = s.scripted.pop_front() {
        if scripted.status == 429 {
            s.buckets.counts.scripted += 1;
        }
        let mut response = (
            StatusCode::from_u16(scripted.status).expect("valid status"),
            Json(scripted.body),
        )
            .into_response();
        for (name, value) in scripted.headers {
            response
                .headers_mut()
                .insert(name, value.parse().expect("header value"));
        }
        return Some(response);
    }
    if token.is_some_and(|t| s.expired_tokens.iter().any(|e| e == t)) {
        return Some(error(401, 50027, "Invalid Webhook Token"));
    }
    let content = body.get("content").and_then(Value::as_str).unwrap_or("");
    if content.chars().count() > 2000 {
        let body = json!({"code": 50035, "message": "Invalid Form Body", "errors": {"content": {"_errors": [
            {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}});
        return Some((StatusCode::BAD_REQUEST, Json(body)).into_response());
    }
    None
}

fn message_json(m: &FakeMessage, application_id: u64) -> Value {
    json!({
        "id": m.id.to_string(),
        "type": if m.interaction_token.is_some() { 20 } else { 0 },
        "content": m.content,
        "channel_id": m.channel_id.to_string(),
        "author": {"id": application_id.to_string(), "username": "Onomancer", "global_name": null,
                   "discriminator": "0000", "avatar": null, "bot": true, "public_flags": 0},
        "attachments": [], "embeds": [], "mentions": [], "mention_roles": [], "components": [],
        "pinned": false, "mention_everyone": false, "tts": false, "flags": 0,
        "timestamp": "2026-01-01T00:00:00.000000+00:00",
        "edited_timestamp": if m.edits > 0 { json!("2026-01-01T00:00:01.000000+00:00") } else { Value::Null },
        "nonce": m.nonce,
        "webhook_id": m.interaction_token.as_ref().map(|_| application_id.to_string()),
        "application_id": application_id.to_string(),
    })
}

fn new_message(s: &mut FakeState, channel_id: u64, content: String) -> FakeMessage {
    s.next_id += 1;
    FakeMessage {
        id: s.next_id,
        channel_id,
        content,
        nonce: None,
        interaction_token: None,
        original: false,
        edits: 0,
        created: Instant::now(),
    }
}

pub(super) async fn followup(
    State((state, _)): State<(Shared, Release)>,
    Path((app, token)): Path<(u64, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, &method, &uri, &headers, &body);
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(r) = precheck(&state, Some(&token), &json) {
        return r;
    }
    let mut s = state.lock().unwrap();
    let content = json["content"].as_str().unwrap_or("").to_owned();
    let mut m = new_message(&mut s, INTERACTION_CHANNEL_ID, content);
    m.interaction_token = Some(token);
    s.messages.push(m.clone());
    Json(message_json(&m, app)).into_response()
}

pub(super) async fn edit_message(
    State((state, _)): State<(Shared, Release)>,
    Path((app, token, message)): Path<(u64, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, &method, &uri, &headers, &body);
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(r) = precheck(&state, Some(&token), &json) {
        return r;
    }
    let mut s = state.lock().unwrap();
    let content = json["content"].as_str().map(str::to_owned);
    let found = s.messages.iter_mut().find(|m| {
        m.interaction_token.as_deref() == Some(&token)
            && (if message == "@original" {
                m.original
            } else {
                m.id.to_string() == message
            })
    });
    let m = match (found, message.as_str()) {
        (Some(m), _) => {
            if let Some(c) = content {
                m.content = c;
            }
            m.edits += 1;
            m.clone()
        }
        // The deferred reply (type 5) exists from the moment the gateway answered; the fake
        // materialises it on the first edit.
        (None, "@original") => {
            let mut m = new_message(&mut s, INTERACTION_CHANNEL_ID, content.unwrap_or_default());
            m.interaction_token = Some(token);
            m.original = true;
            m.edits = 1;
            s.messages.push(m.clone());
            m
        }
        (None, _) => return error(404, 10008, "Unknown Message"),
    };
    Json(message_json(&m, app)).into_response()
}

pub(super) async fn channel_message(
    State((state, release)): State<(Shared, Release)>,
    Path(channel): Path<u64>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, &method, &uri, &headers, &body);
    let bot = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bot ") && v.len() > 4);
    if !bot {
        return error(401, 0, "401: Unauthorized");
    }
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(r) = precheck(&state, None, &json) {
        return r;
    }
    let (response, held) = {
        let mut s = state.lock().unwrap();
        let limits = s.limits;
        let limit_headers = match s.buckets.channel_post(&limits, channel, Instant::now()) {
            Ok(h) => h,
            Err(too_many) => return too_many.into_response(),
        };
        let nonce = match &json["nonce"] {
            Value::String(n) => Some(n.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        if nonce.as_ref().is_some_and(|n| n.len() > 25) {
            return error(400, 50035, "Invalid Form Body");
        }
        let enforce = json["enforce_nonce"].as_bool().unwrap_or(false);
        let earlier = s
            .messages
            .iter()
            .find(|m| {
                enforce
                    && m.channel_id == channel
                    && m.nonce.is_some()
                    && m.nonce == nonce
                    && m.created.elapsed() < limits.nonce_window
            })
            .cloned();
        let m = match earlier {
            Some(m) => m,
            None => {
                let content = json["content"].as_str().unwrap_or("").to_owned();
                let mut m = new_message(&mut s, channel, content);
                m.nonce = nonce;
                s.messages.push(m.clone());
                m
            }
        };
        let mut response = Json(message_json(&m, 1)).into_response();
        for (name, value) in limit_headers {
            response
                .headers_mut()
                .insert(name, value.parse().expect("header value"));
        }
        (response, s.hold_posts)
    };
    if held {
        let released = release.notified();
        tokio::pin!(released);
        released.as_mut().enable();
        if state.lock().unwrap().hold_posts {
            released.await;
        }
    }
    response
}

pub(super) async fn unknown_route(
    State((state, _)): State<(Shared, Release)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, &method, &uri, &headers, &body);
    error(404, 0, "404: Not Found")
}
