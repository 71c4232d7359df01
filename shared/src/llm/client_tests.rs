//! Tests of the Claude client against the Claude fake (`onomancer_testkit::claude_fake`).

use std::time::Duration;

use onomancer_testkit::claude_fake::{error_body, ClaudeFake};
use secrecy::SecretString;

use super::*;
use crate::job::JobError;

fn client(fake: &ClaudeFake) -> ClaudeClient {
    ClaudeClient::new(ClaudeConfig::new(
        fake.base_url(),
        SecretString::from("sk-test-key"),
    ))
    .unwrap()
}

fn request(text: &str) -> MessagesRequest {
    MessagesRequest::new("test-model", 512, vec![Message::user(text)])
}

fn sonnet() -> ModelPrice {
    ModelPrice {
        input: 3.0,
        output: 15.0,
        cache_write_5m_multiplier: 1.25,
        cache_write_1h_multiplier: 2.0,
        cache_read_multiplier: 0.1,
    }
}

#[tokio::test]
async fn sends_the_documented_request_and_reads_the_reply() {
    let fake = ClaudeFake::start().await;
    let reply = client(&fake)
        .messages(&request("Persona: leadership. Summarize this.").temperature(0.0))
        .await
        .unwrap();
    assert!(
        reply.message.text().starts_with("[leadership] "),
        "{}",
        reply.message.text()
    );
    assert_eq!(reply.message.model, "test-model");
    assert_eq!(reply.request_id.as_deref(), Some("req_fake_1"));
    assert_eq!(reply.message.stop_reason.as_deref(), Some("end_turn"));
    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/messages");
    assert_eq!(sent[0].headers["x-api-key"], "sk-test-key");
    assert_eq!(sent[0].headers["anthropic-version"], "2023-06-01");
    assert_eq!(sent[0].headers["content-type"], "application/json");
    assert_eq!(sent[0].body["max_tokens"], 512);
    assert_eq!(
        sent[0].body["messages"][0]["content"],
        "Persona: leadership. Summarize this."
    );
    let u = reply.message.usage.tokens();
    assert!(u.input > 0 && u.output > 0);
    assert_eq!((u.cache_creation, u.cache_read), (0, 0));
}

#[tokio::test]
async fn four_personas_on_a_shared_document_write_the_cache_once() {
    let fake = ClaudeFake::start().await;
    let c = client(&fake);
    let document = "The launch plan. ".repeat(600); // 10,200 chars = 2,550 tokens
    let doc_tokens = 2_550 + 2; // plus the fake's "user:" role marker (5 chars)
    let mut tokens = Vec::new();
    for persona in ["leadership", "product", "marketing", "devrel"] {
        let req = MessagesRequest::new(
            "test-model",
            1024,
            vec![Message::user_blocks(vec![
                ContentBlock::cached_text(document.clone(), CacheControl::ephemeral()),
                ContentBlock::text(format!(
                    "Persona: {persona}. Rewrite the document for this audience."
                )),
            ])],
        );
        tokens.push(c.messages(&req).await.unwrap().message.usage.tokens());
    }
    assert_eq!(tokens[0].cache_creation, doc_tokens);
    assert_eq!(tokens[0].cache_read, 0);
    for t in &tokens[1..] {
        assert_eq!((t.cache_creation, t.cache_read), (0, doc_tokens));
    }
    // Every call's input is counted exactly once across the three fields.
    let totals: Vec<u64> = tokens.iter().map(|t| t.total_input()).collect();
    assert!(totals.iter().all(|t| *t > doc_tokens));
    // The cached run costs less than four uncached ones.
    let cached: i64 = tokens.iter().map(|t| cost_micros(t, &sonnet())).sum();
    let uncached: i64 = tokens
        .iter()
        .map(|t| {
            let plain = TokenCounts {
                input: t.total_input(),
                output: t.output,
                ..Default::default()
            };
            cost_micros(&plain, &sonnet())
        })
        .sum();
    assert!(
        cached < uncached / 2,
        "cached {cached} vs uncached {uncached}"
    );
}

#[tokio::test]
async fn rate_limit_defers_the_job_for_the_servers_wait() {
    let fake = ClaudeFake::start().await;
    fake.push_failure(
        429,
        &[("retry-after", "7")],
        error_body(
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
        ),
    );
    let c = client(&fake);
    let err = c.messages(&request("hi")).await.unwrap_err();
    assert!(err.is_retryable() && err.is_rate_limit());
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.request_id(), Some("req_fake_1"));
    match JobError::from(err) {
        JobError::Deferred {
            reason,
            wait,
            upstream: true,
        } => {
            assert_eq!(wait, Duration::from_secs(7));
            assert!(
                reason.starts_with(
                    "Claude rate limit reached (429 rate_limit_error): Number of request tokens"
                ),
                "{reason}"
            );
            assert!(reason.ends_with("[request-id req_fake_1]"), "{reason}");
        }
        other => panic!("expected a deferral, got {other:?}"),
    }
    // The queue runs the job again later; the next call succeeds. No in-call retry happened.
    c.messages(&request("hi")).await.unwrap();
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn overload_without_retry_after_waits_for_the_reset_headers() {
    let fake = ClaudeFake::start().await;
    let reset = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
    fake.push_failure(
        529,
        &[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", &reset),
        ],
        error_body("overloaded_error", "Overloaded"),
    );
    let err = client(&fake).messages(&request("hi")).await.unwrap_err();
    assert!(err.is_retryable());
    let wait = err.retry_after().expect("derived from the reset header");
    assert!(
        wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
        "{wait:?}"
    );
}

#[tokio::test]
async fn server_error_without_hints_leaves_backoff_to_the_queue() {
    let fake = ClaudeFake::start().await;
    fake.push_failure(500, &[], "<html>internal error</html>");
    let err = client(&fake).messages(&request("hi")).await.unwrap_err();
    assert_eq!(
        JobError::from(err),
        JobError::Retryable {
            message: "Claude had a server error (500 http_500): <html>internal error</html> [request-id req_fake_1]".into(),
            retry_after: None,
        }
    );
}

#[tokio::test]
async fn client_errors_are_terminal_and_presentable() {
    let fake = ClaudeFake::start().await;
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
    ] {
        fake.push_failure(status, &[], error_body(kind, "nope"));
    }
    let c = client(&fake);
    for (n, (status, kind)) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
    ]
    .into_iter()
    .enumerate()
    {
        let err = c.messages(&request("hi")).await.unwrap_err();
        assert!(!err.is_retryable(), "{status}");
        assert_eq!(
            JobError::from(err),
            JobError::terminal(format!(
                "Claude rejected the request ({status} {kind}): nope [request-id req_fake_{}]",
                n + 1
            ))
        );
    }
}

#[tokio::test]
async fn a_real_validation_error_from_the_api_is_terminal() {
    let fake = ClaudeFake::start().await;
    let err = client(&fake)
        .messages(&MessagesRequest::new(
            "test-model",
            0,
            vec![Message::user("hi")],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("max_tokens"), "{err}");
}

#[tokio::test]
async fn spend_limit_is_terminal() {
    let fake = ClaudeFake::start().await;
    let body = serde_json::json!({"type":"error","error":{"type":"rate_limit_error","message":"You have reached your specified API usage limits.",
        "details":{"error_code":"enforced_spend_limit_reached"}},"request_id":"req_x"});
    fake.push_failure(429, &[("retry-after", "60")], body.to_string());
    let err = client(&fake).messages(&request("hi")).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        matches!(JobError::from(err), JobError::Terminal { message } if message.starts_with("Claude spend limit reached (429 rate_limit_error)"))
    );
}

#[tokio::test]
async fn slow_answers_time_out_as_retryable() {
    let fake = ClaudeFake::start().await;
    fake.set_delay(Some(Duration::from_secs(5)));
    let mut config = ClaudeConfig::new(fake.base_url(), SecretString::from("k"));
    config.timeout = Duration::from_millis(200);
    let err = ClaudeClient::new(config)
        .unwrap()
        .messages(&request("hi"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LlmError::Timeout(d) if d == Duration::from_millis(200)),
        "{err:?}"
    );
    assert!(matches!(
        JobError::from(err),
        JobError::Retryable {
            retry_after: None,
            ..
        }
    ));
}

#[tokio::test]
async fn refused_connections_are_retried_briefly_then_retryable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = ClaudeConfig::new(format!("http://127.0.0.1:{port}"), SecretString::from("k"));
    config.connect_retries = 1;
    let err = ClaudeClient::new(config)
        .unwrap()
        .messages(&request("hi"))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Connection(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("sk-"), "{err}");
}

#[tokio::test]
async fn counts_tokens() {
    let fake = ClaudeFake::start().await;
    let req = request("12345678");
    let n = client(&fake)
        .count_tokens(&req.count_tokens_request())
        .await
        .unwrap();
    // "user:12345678" is 13 characters: 4 tokens in the fake's count.
    assert_eq!(n, 4);
    assert_eq!(fake.requests()[0].path, "/v1/messages/count_tokens");
    assert_eq!(fake.calls(), 0);
}

#[test]
fn configuration_needs_a_key_and_never_shows_it() {
    let settings = crate::settings::Settings::from_lookup(|_| None).unwrap();
    assert!(matches!(
        ClaudeConfig::from_settings(&settings),
        Err(LlmError::NotConfigured(_))
    ));
    let config = ClaudeConfig::new(
        "https://api.anthropic.com",
        SecretString::from("sk-ant-secret"),
    );
    let shown = format!(
        "{config:?} {:?}",
        ClaudeClient::new(config.clone()).unwrap()
    );
    assert!(!shown.contains("sk-ant-secret"), "{shown}");
    assert!(matches!(
        ClaudeClient::new(ClaudeConfig::new("not a url", SecretString::from("k"))),
        Err(LlmError::NotConfigured(_))
    ));
}

#[test]
fn the_request_timeout_is_a_setting() {
    use crate::settings::Settings;
    let with = |timeout: Option<&str>| {
        Settings::from_lookup(|k| match k {
            "ANTHROPIC_API_KEY" => Some("k".into()),
            "ANTHROPIC_TIMEOUT_SECONDS" => timeout.map(str::to_owned),
            _ => None,
        })
        .unwrap()
    };
    let config = ClaudeConfig::from_settings(&with(Some("300"))).unwrap();
    assert_eq!(config.timeout, Duration::from_secs(300));
    let config = ClaudeConfig::from_settings(&with(None)).unwrap();
    assert_eq!(config.timeout, super::client::DEFAULT_TIMEOUT);
    assert_eq!(config.timeout, Duration::from_secs(120));
}

#[tokio::test]
async fn every_http_version_sends_the_same_request_bytes() {
    let fake = ClaudeFake::start().await;
    // A document with every character JSON escapes, sent from shared bytes.
    let ascii: String = (0u8..0x80).map(char::from).collect();
    let document = crate::SharedText::from(format!("{ascii} «é» 🦀 ").repeat(400));
    let req = MessagesRequest::new(
        "test-model",
        256,
        vec![Message::user("Persona: product. Write it.")],
    )
    .system(SystemPrompt::Blocks(vec![
        ContentBlock::text("Shared instructions. ".repeat(20)),
        ContentBlock::cached_text(document, CacheControl::ephemeral()),
    ]));
    let expected = serde_json::to_value(&req).unwrap();
    let length = serde_json::to_vec(&req).unwrap().len().to_string();
    for (version, wire) in [
        (HttpVersion::Auto, axum::http::Version::HTTP_11),
        (HttpVersion::Http1, axum::http::Version::HTTP_11),
        (HttpVersion::Http2, axum::http::Version::HTTP_2),
    ] {
        let mut config = ClaudeConfig::new(fake.base_url(), SecretString::from("sk-test-key"));
        config.http_version = version;
        let c = ClaudeClient::new(config).unwrap();
        let reply = c.messages(&req).await.unwrap();
        assert!(
            reply.message.text().starts_with("[product] "),
            "{version:?}"
        );
        let sent = fake.requests().pop().unwrap();
        assert_eq!(sent.version, wire, "{version:?}");
        assert_eq!(sent.body, expected, "{version:?}");
        assert_eq!(sent.headers["content-length"], length, "{version:?}");
    }
}
