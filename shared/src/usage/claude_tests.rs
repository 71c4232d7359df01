//! A Claude call's tokens through the usage store: each of the API's token fields is stored
//! exactly once, with the cost the price table gives (the client against the Claude fake).

use onomancer_testkit::claude_fake::ClaudeFake;
use secrecy::SecretString;

use super::{ops, TokenCounts, UsageRecord, UsageStore};
use crate::llm::{
    CacheControl, ClaudeClient, ClaudeConfig, ContentBlock, Message, MessagesRequest, ModelPrice,
    Prices,
};
use crate::TenantId;

#[tokio::test]
async fn every_token_field_reaches_the_usage_store_exactly_once() {
    let fake = ClaudeFake::start().await;
    let t = onomancer_testkit::db::TestDb::sqlite().await;
    let store = UsageStore::new(crate::db::Database::open(&t.url).await.unwrap());
    let mut prices = Prices::default();
    prices.insert(
        "test-model",
        ModelPrice {
            input: 3.0,
            output: 15.0,
            cache_write_5m_multiplier: 1.25,
            cache_write_1h_multiplier: 2.0,
            cache_read_multiplier: 0.1,
        },
    );
    let c = ClaudeClient::new(ClaudeConfig::new(
        fake.base_url(),
        SecretString::from("sk-test-key"),
    ))
    .unwrap();
    let document = "Release notes. ".repeat(700);
    let mut expected = TokenCounts::default();
    let mut expected_cost = 0;
    for persona in ["leadership", "product", "marketing", "devrel"] {
        let req = MessagesRequest::new(
            "test-model",
            256,
            vec![Message::user_blocks(vec![
                ContentBlock::cached_text(document.clone(), CacheControl::ephemeral()),
                ContentBlock::text(format!("Persona: {persona}")),
            ])],
        );
        let reply = c.messages(&req).await.unwrap();
        let tokens = reply.message.usage.tokens();
        expected.add(&tokens);
        let record = UsageRecord::claude_call(
            TenantId::new("thj"),
            ops::TRANSFORM,
            &req.model,
            tokens,
            &prices,
            format!("job:j1:{persona}"),
        );
        expected_cost += record.cost_micros;
        assert!(store.record(&record).await.unwrap());
    }
    let now = chrono::Utc::now();
    let s = store
        .summary(
            &TenantId::new("thj"),
            now - chrono::Duration::minutes(5),
            now + chrono::Duration::minutes(5),
        )
        .await
        .unwrap();
    assert_eq!(
        s.tokens,
        TokenCounts {
            cache_creation_1h: 0,
            ..expected
        }
    );
    assert!(s.tokens.cache_creation > 0 && s.tokens.cache_read == 3 * s.tokens.cache_creation);
    assert_eq!(s.estimated_cost_micros, expected_cost);
    assert_eq!(s.api_calls, 4);
}
