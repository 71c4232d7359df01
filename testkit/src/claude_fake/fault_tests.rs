//! Tests of the Claude fake's fault injection and ledger: faults in the wire format, hangs,
//! slow answers billed after the client left, seeded rates.

use std::time::Duration;

use onomancer_shared::llm::{ClaudeClient, ClaudeConfig, Message, MessagesRequest};
use secrecy::SecretString;
use serde_json::json;

use super::*;

fn client(fake: &ClaudeFake) -> ClaudeClient {
    ClaudeClient::new(ClaudeConfig::new(fake.base_url(), SecretString::from("k"))).unwrap()
}

#[tokio::test]
async fn injected_faults_speak_the_wire_format_and_are_never_billed() {
    let fake = ClaudeFake::start().await;
    let http = reqwest::Client::new();
    let send = || {
        http.post(format!("{}/v1/messages", fake.base_url()))
            .header("x-api-key", "k")
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    fake.fail_next(
        Fault::RateLimited {
            retry_after: Some(Duration::from_millis(1_500)),
        },
        1,
    );
    fake.fail_next(Fault::RateLimited { retry_after: None }, 1);
    fake.fail_next(Fault::Overloaded, 1);
    fake.fail_next(Fault::ServerError, 1);

    let limited = send().await.unwrap();
    assert_eq!(limited.status(), 429);
    let h = limited.headers().clone();
    assert_eq!(h["retry-after"], "2", "whole seconds, rounded up");
    assert!(h["request-id"].to_str().unwrap().starts_with("req_fake_"));
    assert_eq!(h["anthropic-ratelimit-requests-remaining"], "0");
    for limit in ["requests", "tokens", "input-tokens", "output-tokens"] {
        for part in ["limit", "remaining", "reset"] {
            let name = format!("anthropic-ratelimit-{limit}-{part}");
            assert!(h.contains_key(name.as_str()), "{name}");
        }
    }
    let reset = h["anthropic-ratelimit-requests-reset"].to_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(reset).expect("RFC 3339 reset");
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["request_id"], h["request-id"].to_str().unwrap());

    // Without retry-after, the client derives the wait from the reset headers.
    let c = client(&fake);
    let req = MessagesRequest::new("m", 50, vec![Message::user("hi")]);
    let no_header = c.messages(&req).await.unwrap_err();
    assert_eq!(no_header.status(), Some(429));
    let wait = no_header
        .retry_after()
        .expect("a wait from the reset headers");
    assert!(wait <= Duration::from_secs(2), "{wait:?}");

    let overloaded = send().await.unwrap();
    assert_eq!(overloaded.status(), 529);
    let body: serde_json::Value = overloaded.json().await.unwrap();
    assert_eq!(body["error"]["type"], "overloaded_error");
    let server = send().await.unwrap();
    assert_eq!(server.status(), 500);
    let body: serde_json::Value = server.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error");
    assert_eq!(fake.answered_calls(), 0, "errors are not billed");

    let ok = c.messages(&req).await.unwrap().message;
    assert_eq!(fake.calls(), 5);
    let answered = fake.answered();
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].id, ok.id);
    assert_eq!(answered[0].tokens, ok.usage.tokens());
    let mut prices = onomancer_shared::llm::Prices::default();
    prices.insert(
        "m",
        onomancer_shared::llm::ModelPrice {
            input: 3.0,
            output: 15.0,
            cache_write_5m_multiplier: 1.25,
            cache_write_1h_multiplier: 2.0,
            cache_read_multiplier: 0.1,
        },
    );
    assert_eq!(
        fake.answered_cost(&prices),
        onomancer_shared::usage::cost_micros(&ok.usage.tokens(), prices.get("m").unwrap())
    );
    let counts = fake.faults();
    assert_eq!(counts["rate_limited"], 2);
    assert_eq!((counts["overloaded"], counts["server_error"]), (1, 1));
}

#[tokio::test]
async fn a_hang_is_never_answered_and_a_slow_answer_is_billed_after_the_client_left() {
    let fake = ClaudeFake::start().await;
    let mut config = ClaudeConfig::new(fake.base_url(), SecretString::from("k"));
    config.timeout = Duration::from_millis(200);
    let c = ClaudeClient::new(config).unwrap();
    let req = MessagesRequest::new("m", 50, vec![Message::user("hi")]);

    fake.fail_next(Fault::Hang, 1);
    let hung = c.messages(&req).await.unwrap_err();
    assert!(
        matches!(hung, onomancer_shared::llm::LlmError::Timeout(_)),
        "{hung}"
    );
    assert_eq!((fake.hanging(), fake.answered_calls()), (1, 0));

    fake.fail_next(Fault::Slow(Duration::from_millis(400)), 1);
    let slow = c.messages(&req).await.unwrap_err();
    assert!(matches!(slow, onomancer_shared::llm::LlmError::Timeout(_)));
    assert_eq!(fake.in_flight().len(), 1, "still generating");
    tokio::time::timeout(Duration::from_secs(5), fake.wait_answered(1))
        .await
        .expect("the slow answer is generated");
    assert!(fake.in_flight().is_empty());
    assert_eq!(fake.answered_calls(), 1, "billed though nobody read it");

    // Within the client's patience, a slow answer arrives.
    fake.fail_next(Fault::Slow(Duration::from_millis(50)), 1);
    assert!(c.messages(&req).await.is_ok());
    assert_eq!(fake.answered_calls(), 2);
}

#[tokio::test]
async fn rate_faults_are_the_same_for_the_same_seed_and_requests() {
    let mix = FaultMix::new(42)
        .with(Fault::RateLimited { retry_after: None }, 0.3)
        .with(Fault::Overloaded, 0.2);
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let fake = ClaudeFake::start().await;
        fake.inject(Some(mix.clone()));
        let c = client(&fake);
        let mut seen = Vec::new();
        for i in 0..30 {
            // Each prompt twice: the second try draws again.
            for _ in 0..2 {
                let req = MessagesRequest::new("m", 20, vec![Message::user(format!("p{i}"))]);
                seen.push(c.messages(&req).await.err().and_then(|e| e.status()));
            }
        }
        assert_eq!(fake.calls(), 60);
        assert_eq!(
            fake.answered_calls(),
            seen.iter().filter(|s| s.is_none()).count()
        );
        outcomes.push(seen);
    }
    assert_eq!(outcomes[0], outcomes[1]);
    let failed = outcomes[0].iter().filter(|s| s.is_some()).count();
    assert!((15..=45).contains(&failed), "{failed} of 60 failed");
}
