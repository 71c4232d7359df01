//! Refused requests cost no memory: the tenant, the signature header and the API key are
//! checked before the body is read (the answer comes before a byte of body is sent), and a body
//! over the limit is refused after at most the limit (counted by the gateway's
//! `onomancer_gateway_request_body_bytes_total`, which does not depend on memory).

use std::time::Duration;

use onomancer_gateway::signature::hmac_sha256_hex;
use tokio::io::AsyncWriteExt;

use crate::helpers::{fixture, spawn_app, API_KEY, GITHUB_SECRET};
use crate::raw_http::{connect, metric, read_answer, send_head, Answer};

const BODY_BYTES: &str = "onomancer_gateway_request_body_bytes_total ";
const LIMIT: usize = 25 * 1024 * 1024;

/// Sends `head` declaring a body, sends none of it, and reads the answer.
async fn answer_without_body(app: &crate::helpers::TestApp, head: &str) -> Answer {
    let mut stream = connect(app).await;
    send_head(&mut stream, head).await;
    read_answer(&mut stream).await
}

#[tokio::test]
async fn an_unknown_tenant_is_404_before_any_body_byte_is_sent() {
    let app = spawn_app().await;
    for head in [
        "POST /webhooks/github/nobody HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Hub-Signature-256: sha256=00",
        "POST /webhooks/github/nobody HTTP/1.1\r\nContent-Length: 25165824",
        "POST /webhooks/linear/nobody HTTP/1.1\r\nContent-Length: 1000000",
    ] {
        let a = answer_without_body(&app, head).await;
        assert_eq!(a.status, 404, "{head}: {a:?}");
        assert_eq!(a.body["error"], "unknown_tenant");
    }
    assert_eq!(metric(&app, BODY_BYTES).await, 0.0);
}

#[tokio::test]
async fn a_missing_or_malformed_signature_header_is_401_before_the_body_is_sent() {
    let app = spawn_app().await;
    let sig_63 = format!("sha256={}", "a".repeat(63));
    for head in [
        "POST /webhooks/github/acme HTTP/1.1\r\nContent-Length: 25000000".to_owned(),
        "POST /webhooks/github/acme HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Hub-Signature-256: sha256=zz".to_owned(),
        format!("POST /webhooks/github/acme HTTP/1.1\r\nContent-Length: 100\r\nX-Hub-Signature-256: {sig_63}"),
        format!("POST /webhooks/github/acme HTTP/1.1\r\nContent-Length: 100\r\nX-Hub-Signature-256: {}", "a".repeat(64)),
        // A tenant without a GitHub secret.
        format!("POST /webhooks/github/other HTTP/1.1\r\nContent-Length: 100\r\nX-Hub-Signature-256: sha256={}", "a".repeat(64)),
        "POST /webhooks/linear/acme HTTP/1.1\r\nContent-Length: 1000".to_owned(),
        "POST /webhooks/linear/acme HTTP/1.1\r\nContent-Length: 1000\r\nLinear-Signature: xyz".to_owned(),
        "POST /discord/interactions HTTP/1.1\r\nContent-Length: 1000\r\nX-Signature-Timestamp: 1700000000".to_owned(),
        format!("POST /discord/interactions HTTP/1.1\r\nContent-Length: 1000\r\nX-Signature-Ed25519: {}\r\nX-Signature-Timestamp: soon", "ab".repeat(64)),
        // The REST API checks the bearer key first.
        "POST /v1/transforms HTTP/1.1\r\nContent-Length: 1000000\r\nContent-Type: application/json\r\nAuthorization: Bearer wrong".to_owned(),
        "POST /v1/transforms HTTP/1.1\r\nContent-Length: 1000000\r\nContent-Type: application/json".to_owned(),
    ] {
        let a = answer_without_body(&app, &head).await;
        assert_eq!(a.status, 401, "{head}: {a:?}");
        assert_eq!(a.body["error"], "unauthorized", "{head}");
    }
    assert_eq!(metric(&app, BODY_BYTES).await, 0.0);
    assert!(app.all_jobs("acme").await.is_empty());
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_413_before_the_body_is_sent() {
    let app = spawn_app().await;
    let sig = format!("sha256={}", "a".repeat(64));
    for head in [
        format!("POST /webhooks/github/acme HTTP/1.1\r\nContent-Length: {}\r\nX-Hub-Signature-256: {sig}", 30 * 1024 * 1024),
        format!("POST /v1/transforms HTTP/1.1\r\nContent-Length: {}\r\nContent-Type: application/json\r\nAuthorization: Bearer {API_KEY}", 1024 * 1024 + 1),
        format!("POST /discord/interactions HTTP/1.1\r\nContent-Length: {}\r\nX-Signature-Ed25519: {}\r\nX-Signature-Timestamp: 1700000000", 128 * 1024 + 1, "ab".repeat(64)),
    ] {
        let a = answer_without_body(&app, &head).await;
        assert_eq!(a.status, 413, "{head}: {a:?}");
        assert_eq!(a.body["error"], "payload_too_large");
        assert!(a.body["message"].as_str().unwrap().contains("bytes"), "{a:?}");
    }
    assert_eq!(metric(&app, BODY_BYTES).await, 0.0);
}

/// A chunked body declares no length: the gateway reads (and hashes) it until the limit, then
/// answers 413 and stops reading; the client's remaining bytes are never consumed.
#[tokio::test]
async fn a_30_mb_chunked_body_to_a_real_tenant_is_413_after_at_most_the_limit() {
    let app = spawn_app().await;
    let mut stream = connect(&app).await;
    send_head(
        &mut stream,
        &format!(
            "POST /webhooks/github/acme HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\
             X-GitHub-Event: push\r\nX-GitHub-Delivery: big-1\r\nX-Hub-Signature-256: sha256={}",
            "a".repeat(64)
        ),
    )
    .await;
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let chunk = [b' '; 64 * 1024];
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        let mut sent = 0usize;
        while sent < 30 * 1024 * 1024 {
            if write.write_all(&frame).await.is_err() {
                return (sent, false);
            }
            sent += chunk.len();
        }
        let finished = write.write_all(b"0\r\n\r\n").await.is_ok();
        (sent, finished)
    });
    let a = read_answer(&mut read).await;
    assert_eq!(a.status, 413, "{a:?}");
    assert_eq!(a.body["error"], "payload_too_large");
    let consumed = metric(&app, BODY_BYTES).await as usize;
    assert!(consumed > 0, "the body was read up to the limit");
    assert!(
        consumed <= LIMIT + 512 * 1024,
        "consumed {consumed} bytes, limit {LIMIT}"
    );
    drop(read);
    let (sent, _) = tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("the client's writes end (fail or finish) once the gateway stopped reading")
        .unwrap();
    assert!(sent >= consumed, "sent {sent}, consumed {consumed}");
    assert!(app.all_jobs("acme").await.is_empty());
}

/// Signature checks still pass for a real body sent in many small chunks (streamed HMAC).
#[tokio::test]
async fn a_signed_body_sent_in_small_chunks_verifies() {
    let app = spawn_app().await;
    let body = fixture("status.json");
    let sig = hmac_sha256_hex(GITHUB_SECRET, &body);
    let mut stream = connect(&app).await;
    send_head(
        &mut stream,
        &format!(
            "POST /webhooks/github/acme HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\
             Content-Type: application/json\r\nX-GitHub-Event: status\r\n\
             X-GitHub-Delivery: chunked-1\r\nX-Hub-Signature-256: sha256={sig}"
        ),
    )
    .await;
    for part in body.chunks(7) {
        let frame = [format!("{:x}\r\n", part.len()).as_bytes(), part, b"\r\n"].concat();
        stream.write_all(&frame).await.unwrap();
        stream.flush().await.unwrap();
    }
    stream.write_all(b"0\r\n\r\n").await.unwrap();
    let a = read_answer(&mut stream).await;
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(app.all_jobs("acme").await.len(), 1);
    assert_eq!(metric(&app, BODY_BYTES).await as usize, body.len());
}
