//! Slow and stalling clients: a connection that stops in its headers is closed after the header
//! timeout, the connection cap keeps hundreds of them from starving `/healthz`, and a request
//! whose body stalls gets a 408 logged as a slow client (never the 503 that means Redis).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use onomancer_gateway::HttpSettings;
use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;

use crate::helpers::{spawn_app_with, Options};
use crate::raw_http::{connect, read_answer, read_until_closed};

fn options(header_ms: u64, body_ms: u64, max_connections: usize) -> Options {
    Options {
        http: HttpSettings {
            header_timeout: Duration::from_millis(header_ms),
            body_timeout: Duration::from_millis(body_ms),
            max_connections,
        },
        ..Options::default()
    }
}

/// Log lines written while the guard lives (the test's runtime is single-threaded, so the
/// gateway's tasks log on this thread).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// `onomancer_gateway_slow_clients_total{phase}`, read from the app's registry (not over HTTP:
/// with these short timeouts a pooled client connection may be closed as idle under the
/// request, which is the header timeout doing its job).
fn slow_clients(app: &crate::helpers::TestApp, phase: &str) -> u64 {
    app.state
        .metrics
        .slow_clients
        .with_label_values(&[phase])
        .get()
}

const PARTIAL_HEAD: &[u8] = b"POST /webhooks/github/acme HTTP/1.1\r\nHost: test\r\nX-GitHub-Ev";

#[tokio::test]
async fn a_client_that_stalls_in_its_headers_is_closed_after_the_header_timeout() {
    let app = spawn_app_with(options(300, 10_000, 64)).await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    stream.write_all(PARTIAL_HEAD).await.unwrap();
    read_until_closed(&mut stream).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(290),
        "closed after {waited:?}"
    );
    assert_eq!(slow_clients(&app, "headers"), 1);
    assert!(app.all_jobs("acme").await.is_empty());
}

#[tokio::test]
async fn three_hundred_half_open_connections_do_not_stop_healthz() {
    const CAP: usize = 32;
    let app = spawn_app_with(options(300, 10_000, CAP)).await;
    let mut stalled = Vec::new();
    for _ in 0..300 {
        let mut s = connect(&app).await;
        s.write_all(PARTIAL_HEAD).await.unwrap();
        stalled.push(s);
    }
    assert!(app.state.metrics.open_connections.get() <= CAP as i64);

    let health = tokio::time::timeout(
        Duration::from_secs(10),
        app.client.get(format!("{}/healthz", app.address)).send(),
    )
    .await
    .expect("/healthz answers while 300 connections stall")
    .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    // Every stalled connection is served in turn, and closed after the header timeout; the
    // number served at once, sampled at each close, never passes the cap.
    let open = &app.state.metrics.open_connections;
    let samples = futures::future::join_all(stalled.iter_mut().map(|s| async move {
        read_until_closed(s).await;
        open.get()
    }))
    .await;
    let peak = samples.into_iter().max().unwrap();
    assert!(peak <= CAP as i64, "{peak} open");
    assert!(slow_clients(&app, "headers") >= 300);
}

#[tokio::test]
async fn a_stalled_body_gets_408_logged_as_a_slow_client_never_503() {
    let logs = Captured::default();
    let _guard = logs.install();
    let app = spawn_app_with(options(10_000, 300, 64)).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(
            format!(
                "POST /webhooks/github/acme HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\
                 X-GitHub-Event: status\r\nX-GitHub-Delivery: slow-1\r\n\
                 X-Hub-Signature-256: sha256={}\r\n\r\n{{\"state\":",
                "a".repeat(64)
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let a = read_answer(&mut stream).await;
    assert_eq!(a.status, 408, "{a:?}");
    assert_eq!(a.body["error"], "request_timeout");
    assert!(a.body["message"].is_string());
    assert_eq!(a.header("content-type"), Some("application/json"));
    read_until_closed(&mut stream).await;

    assert_eq!(slow_clients(&app, "body"), 1);
    let text = logs.text();
    assert!(
        text.lines()
            .any(|l| l.contains("WARN") && l.contains("slow client")),
        "{text}"
    );
    assert!(!text.contains("ERROR"), "{text}");
    assert!(!text.contains("Redis unavailable"), "{text}");
    assert!(app.all_jobs("acme").await.is_empty());
}

/// Discord's route answers within 2.5 s: a stalled body is a 408 before that deadline, even
/// with the default (longer) body timeout.
#[tokio::test]
async fn a_stalled_discord_body_gets_408_before_the_answer_deadline() {
    let app = spawn_app_with(Options::default()).await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    stream
        .write_all(
            format!(
                "POST /discord/interactions HTTP/1.1\r\nHost: test\r\nContent-Length: 500\r\n\
                 X-Signature-Ed25519: {}\r\nX-Signature-Timestamp: 1700000000\r\n\r\n{{\"type\":",
                "ab".repeat(64)
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let a = read_answer(&mut stream).await;
    assert_eq!(a.status, 408, "{a:?}");
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "{:?}",
        started.elapsed()
    );
}
