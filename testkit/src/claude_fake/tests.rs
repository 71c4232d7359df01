//! Tests of the Claude fake itself: wire checks, the caching rule, scripted failures.

use std::time::Duration;

use onomancer_shared::llm::{
    CacheControl, ClaudeClient, ClaudeConfig, ContentBlock, Message, MessagesRequest, SystemPrompt,
};
use secrecy::SecretString;
use serde_json::json;

use super::*;

fn client(fake: &ClaudeFake) -> ClaudeClient {
    ClaudeClient::new(ClaudeConfig::new(fake.base_url(), SecretString::from("k"))).unwrap()
}

/// A request whose system prompt is `prefix` (a cache breakpoint with `ttl`) and whose user
/// message is `tail`.
fn cached(prefix: &str, cc: CacheControl, tail: &str) -> MessagesRequest {
    MessagesRequest::new("m", 100, vec![Message::user(tail)]).system(SystemPrompt::Blocks(vec![
        ContentBlock::cached_text(prefix, cc),
    ]))
}

#[tokio::test]
async fn cache_writes_then_reads_then_expires_after_five_minutes() {
    let fake = ClaudeFake::start().await;
    let c = client(&fake);
    let doc = "x".repeat(8_000 - "system:".len()); // exactly 2,000 tokens with the role marker
    let first = c
        .messages(&cached(&doc, CacheControl::ephemeral(), "a"))
        .await
        .unwrap()
        .message
        .usage;
    assert_eq!(
        (
            first.cache_creation_input_tokens,
            first.cache_read_input_tokens
        ),
        (Some(2_000), Some(0))
    );
    assert_eq!(first.input_tokens, count_tokens("user:a"));
    assert_eq!(
        first.cache_creation.unwrap().ephemeral_5m_input_tokens,
        2_000
    );

    fake.advance(Duration::from_secs(299));
    let second = c
        .messages(&cached(&doc, CacheControl::ephemeral(), "b"))
        .await
        .unwrap()
        .message
        .usage;
    assert_eq!(
        (
            second.cache_creation_input_tokens,
            second.cache_read_input_tokens
        ),
        (Some(0), Some(2_000))
    );

    // A read refreshes the entry: 299 s after the read it is still there; 301 s later it is gone.
    fake.advance(Duration::from_secs(299));
    let third = c
        .messages(&cached(&doc, CacheControl::ephemeral(), "c"))
        .await
        .unwrap()
        .message
        .usage;
    assert_eq!(third.cache_read_input_tokens, Some(2_000));
    fake.advance(Duration::from_secs(301));
    let fourth = c
        .messages(&cached(&doc, CacheControl::ephemeral(), "d"))
        .await
        .unwrap()
        .message
        .usage;
    assert_eq!(
        (
            fourth.cache_creation_input_tokens,
            fourth.cache_read_input_tokens
        ),
        (Some(2_000), Some(0))
    );
}

#[tokio::test]
async fn one_hour_entries_outlive_five_minutes_and_bill_as_1h_writes() {
    let fake = ClaudeFake::start().await;
    let c = client(&fake);
    let doc = "y".repeat(6_000);
    let first = c
        .messages(&cached(&doc, CacheControl::ephemeral_1h(), "a"))
        .await
        .unwrap()
        .message
        .usage;
    let t = first.tokens();
    assert_eq!(t.cache_creation, t.cache_creation_1h);
    assert!(t.cache_creation > 1_024);
    fake.advance(Duration::from_secs(1_800));
    let later = c
        .messages(&cached(&doc, CacheControl::ephemeral_1h(), "b"))
        .await
        .unwrap()
        .message
        .usage;
    assert_eq!(later.cache_read_input_tokens, Some(t.cache_creation));
}

#[tokio::test]
async fn short_prefixes_are_never_cached_and_raise_no_error() {
    let fake = ClaudeFake::start().await;
    let c = client(&fake);
    let short = "z".repeat(4_000); // about 1,002 tokens: under the 1,024 minimum
    for _ in 0..2 {
        let u = c
            .messages(&cached(&short, CacheControl::ephemeral(), "q"))
            .await
            .unwrap()
            .message
            .usage;
        assert_eq!(
            (u.cache_creation_input_tokens, u.cache_read_input_tokens),
            (Some(0), Some(0))
        );
    }
    fake.set_min_cacheable_tokens(100);
    let u = c
        .messages(&cached(&short, CacheControl::ephemeral(), "q"))
        .await
        .unwrap()
        .message
        .usage;
    assert!(u.cache_creation_input_tokens.unwrap() > 0);
}

#[tokio::test]
async fn a_changed_prefix_misses_and_the_model_is_part_of_the_key() {
    let fake = ClaudeFake::start().await;
    let c = client(&fake);
    let doc = "d".repeat(6_000);
    c.messages(&cached(&doc, CacheControl::ephemeral(), "a"))
        .await
        .unwrap();
    let edited = format!("{doc}!");
    let u = c
        .messages(&cached(&edited, CacheControl::ephemeral(), "a"))
        .await
        .unwrap()
        .message
        .usage;
    assert_eq!(u.cache_read_input_tokens, Some(0));
    let mut other_model = cached(&doc, CacheControl::ephemeral(), "a");
    other_model.model = "n".into();
    let u = c.messages(&other_model).await.unwrap().message.usage;
    assert_eq!(u.cache_read_input_tokens, Some(0));
}

#[tokio::test]
async fn scripted_failures_come_first_in_order() {
    let fake = ClaudeFake::start().await;
    fake.push_failure(529, &[], error_body("overloaded_error", "Overloaded"));
    fake.push_failure(
        429,
        &[("retry-after", "2")],
        error_body("rate_limit_error", "slow"),
    );
    let c = client(&fake);
    let req = MessagesRequest::new("m", 10, vec![Message::user("hi")]);
    assert_eq!(c.messages(&req).await.unwrap_err().status(), Some(529));
    let second = c.messages(&req).await.unwrap_err();
    assert_eq!(
        (second.status(), second.retry_after()),
        (Some(429), Some(Duration::from_secs(2)))
    );
    assert!(c.messages(&req).await.is_ok());
    assert_eq!(fake.calls(), 3);
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn replies_come_from_the_responder_and_respect_max_tokens() {
    let fake = ClaudeFake::start().await;
    let c = client(&fake);
    let req = MessagesRequest::new("m", 100, vec![Message::user("Persona: DevRel\nthe doc")]);
    let text = c.messages(&req).await.unwrap().message.text();
    assert!(text.starts_with("[devrel] "), "{text}");
    // Different input, different digest; same input, same reply.
    let other = c
        .messages(&MessagesRequest::new(
            "m",
            100,
            vec![Message::user("Persona: DevRel\nanother doc")],
        ))
        .await
        .unwrap();
    assert_ne!(other.message.text(), text);
    assert_eq!(c.messages(&req).await.unwrap().message.text(), text);

    fake.set_responder(|body| {
        format!(
            "echo {}",
            body["messages"][0]["content"].as_str().unwrap_or("")
        )
    });
    let reply = c
        .messages(&MessagesRequest::new(
            "m",
            3,
            vec![Message::user("abcdefghijklmnop")],
        ))
        .await
        .unwrap();
    assert_eq!(reply.message.text(), "echo abcdefg"); // 3 tokens = 12 characters
    assert!(reply.message.truncated());
    assert_eq!(reply.message.usage.output_tokens, 3);
}

#[tokio::test]
async fn the_wire_format_is_enforced() {
    let fake = ClaudeFake::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/messages", fake.base_url());
    let body =
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let no_key = http
        .post(&url)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    assert!(no_key.headers().contains_key("request-id"));
    let err: serde_json::Value = no_key.json().await.unwrap();
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "authentication_error");
    let no_version = http
        .post(&url)
        .header("x-api-key", "k")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_version.status(), 400);
    let no_messages = http
        .post(&url)
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "m", "max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_messages.status(), 400);
    let ok = http
        .post(&url)
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let msg: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["role"], "assistant");
    assert_eq!(msg["content"][0]["type"], "text");
    assert_eq!(fake.calls(), 4);
}
