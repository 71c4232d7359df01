//! Discord command jobs against real Redis and SQLite, with Discord (and Claude, for
//! `/transform`) faked at the HTTP level.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use onomancer_shared::admission::{Admission, QuotaDecision, TransformQuota};
use onomancer_shared::cache::{SqlL3, TieredCache};
use onomancer_shared::integrations::discord::{DiscordConfig, DiscordPoster};
use onomancer_shared::integrations::fetch::Fetcher;
use onomancer_shared::llm::{ClaudeClient, ClaudeConfig, ModelPrice, ModelRoutes, Prices};
use onomancer_shared::queue::{Queue, QueueConfig, QueueMetrics};
use onomancer_shared::tenant::TenantRegistry;
use onomancer_shared::usage::{TokenCounts, UsageRecord, UsageStore};
use onomancer_shared::{Envelope, JobError, JobId, JobKind, Lane, NewJob, TenantId};
use onomancer_testkit::discord_fake::DiscordFake;
use onomancer_testkit::{ClaudeFake, TestDb, TestRedis};
use serde_json::{json, Value};

use super::*;
use crate::handlers::notify::tests::write_tenants;
use crate::transform::{PromptStore, TransformEngine};

const APP_ID: u64 = 1_234_567;

struct Setup {
    handler: DiscordCommandHandler,
    discord: DiscordFake,
    redis: TestRedis,
    db: TestDb,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    write_tenants(dir.path());
    let redis = TestRedis::new().await;
    let db = TestDb::sqlite().await;
    let discord = DiscordFake::start().await;
    let mut dc = DiscordConfig::new("bot-token".to_string().into(), APP_ID);
    dc.api_base = Some(discord.api_base());
    let queue = Queue::from_parts(
        redis.conn.clone(),
        &onomancer_testkit::redis_ns::redis_url(),
        redis.keys.clone(),
        QueueConfig::default(),
        QueueMetrics::unregistered(),
    );
    let handler = DiscordCommandHandler {
        tenants: Arc::new(TenantRegistry::load_with_env(dir.path(), |_| None).unwrap()),
        queue,
        admission: Admission::new(redis.conn.clone(), redis.keys.clone()),
        usage: Some(UsageStore::new(db.db.clone())),
        discord: DiscordPoster::new(dc, redis.conn.clone(), redis.keys.clone()).unwrap(),
        transform: None,
        decisions: Some(DecisionSearch {
            store: onomancer_shared::decisions::DecisionStore::new(db.db.clone()),
            writer: crate::handlers::claude_once::ClaudeOnce {
                claude: None,
                model: "claude-sonnet-test".into(),
                redis: redis.conn.clone(),
                keys: redis.keys.clone(),
            },
            prompts_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/prompts"),
        }),
    };
    Setup {
        handler,
        discord,
        redis,
        db,
        _dir: dir,
    }
}

fn command_job(command: &str, options: Value, token: &str) -> Envelope {
    let payload = json!({
        "v": 1, "interaction_id": format!("ix-{token}"), "application_id": APP_ID.to_string(),
        "token": token, "command": command, "options": options, "guild_id": "111111111111111111",
        "channel_id": "444", "user_id": "42", "quota_consumed": false, "transform": null
    });
    NewJob::untyped(
        TenantId::new("acme"),
        JobKind::DiscordCommand,
        Lane::Interactive,
        &payload,
    )
    .into_envelope(JobId::generate(), chrono::Utc::now().timestamp_millis())
}

fn reply_text(s: &Setup, token: &str) -> String {
    let msgs = s.discord.interaction_messages(token);
    assert!(!msgs.is_empty(), "no reply for {token}");
    msgs.iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn usage_reports_tokens_cost_cache_and_quota() {
    let s = setup().await;
    let acme = TenantId::new("acme");
    let quota = TransformQuota {
        per_day: Some(5),
        per_month: Some(50),
    };
    let d = s
        .handler
        .admission
        .consume_transforms(&acme, 2, quota, chrono::Utc::now())
        .await
        .unwrap();
    assert!(matches!(d, QuotaDecision::Admitted(_)));
    UsageStore::new(s.db.db.clone())
        .record(&UsageRecord {
            tenant: acme.clone(),
            user: None,
            // A second ago: the summary range ends (exclusive) at the reply's "now".
            timestamp: chrono::Utc::now() - chrono::Duration::seconds(1),
            operation: "transform".into(),
            service: "claude".into(),
            model: Some("claude-sonnet-4-5".into()),
            tokens: TokenCounts {
                input: 1000,
                output: 2000,
                cache_creation: 0,
                cache_creation_1h: 0,
                cache_read: 3000,
            },
            storage_bytes: 0,
            api_calls: 1,
            cost_micros: 33_900,
            job_id: Some(JobId::generate()),
            step: None,
            idempotency_key: "k1".into(),
        })
        .await
        .unwrap();
    s.handler
        .handle(&command_job("usage", json!({}), "tok-usage"))
        .await
        .unwrap();
    let text = reply_text(&s, "tok-usage");
    assert!(text.starts_with("**Usage for Acme**"), "{text}");
    assert!(text.contains("API calls: 1"), "{text}");
    assert!(text.contains("1000 input, 2000 output"), "{text}");
    assert!(text.contains("prompt-cache hit rate 75%"), "{text}");
    assert!(text.contains("$0.03"), "{text}");
    assert!(
        text.contains("today 2/5 used, 3 left") && text.contains("this month 2/50 used, 48 left"),
        "{text}"
    );
}

#[tokio::test]
async fn status_reports_a_job_or_the_queue_depth() {
    let s = setup().await;
    let queued = s
        .handler
        .queue
        .enqueue(NewJob::new(
            TenantId::new("acme"),
            &onomancer_shared::payloads::NoopPayload {},
        ))
        .await
        .unwrap();
    s.handler
        .handle(&command_job(
            "status",
            json!({"job": queued.id.as_str()}),
            "tok-s1",
        ))
        .await
        .unwrap();
    let text = reply_text(&s, "tok-s1");
    assert!(
        text.contains(&format!(
            "Job `{}` (diag.noop): **queued**, attempt 1",
            queued.id
        )),
        "{text}"
    );

    s.handler
        .handle(&command_job("status", json!({}), "tok-s2"))
        .await
        .unwrap();
    let text = reply_text(&s, "tok-s2");
    assert!(text.contains("default: 1 waiting, 0 running"), "{text}");
    assert!(text.contains("interactive: 0 waiting"), "{text}");

    s.handler
        .handle(&command_job("status", json!({"job": "nope"}), "tok-s3"))
        .await
        .unwrap();
    assert!(reply_text(&s, "tok-s3").contains("not a job id"));
}

#[tokio::test]
async fn a_recorded_message_is_found_by_decisions() {
    let s = setup().await;
    let message = json!({"id": "900", "channel_id": "444", "author": "carol",
        "content": "Decision: pricing stays flat in 2027.", "timestamp": "2026-11-18T08:30:00Z"});
    let record = command_job(RECORD_DECISION, json!({ "message": message }), "tok-r");
    s.handler.handle(&record).await.unwrap();
    // Run twice (at-least-once delivery): one decision, one reply.
    s.handler.handle(&record).await.unwrap();
    let text = reply_text(&s, "tok-r");
    assert!(
        text.starts_with("📌 Recorded as a decision (by carol):\n> Decision: pricing stays flat"),
        "{text}"
    );
    assert_eq!(s.discord.interaction_messages("tok-r").len(), 1);

    s.handler
        .handle(&command_job(
            "decisions",
            json!({"query": "pricing"}),
            "tok-d",
        ))
        .await
        .unwrap();
    let text = reply_text(&s, "tok-d");
    assert!(
        text.contains("**Decisions matching \"pricing\"**"),
        "{text}"
    );
    assert!(
        text.contains("[1] 2026-11-18 · Discord · [Decision: pricing stays flat in 2027.](<https://discord.com/channels/111111111111111111/444/900>) — carol"),
        "{text}"
    );

    let empty = json!({"id": "901", "channel_id": "444", "content": ""});
    s.handler
        .handle(&command_job(
            RECORD_DECISION,
            json!({ "message": empty }),
            "tok-e",
        ))
        .await
        .unwrap();
    assert_eq!(
        reply_text(&s, "tok-e"),
        "That message has no text to record as a decision."
    );
}

#[tokio::test]
async fn digest_enqueues_one_job_per_persona_once() {
    let s = setup().await;
    let job = command_job("digest", json!({}), "tok-g");
    s.handler.handle(&job).await.unwrap();
    s.handler.handle(&job).await.unwrap();
    let stream = s.redis.keys.stream(&TenantId::new("acme"), Lane::Default);
    let len: u64 = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut s.redis.conn.clone())
        .await
        .unwrap();
    assert_eq!(len, 2, "leadership and product, once each");
    let text = reply_text(&s, "tok-g");
    assert!(
        text.contains("leadership, product") && text.contains("<#555000000000000003>"),
        "{text}"
    );
    assert_eq!(
        s.discord.interaction_messages("tok-g").len(),
        1,
        "the reply is edited once"
    );
}

#[tokio::test]
async fn transform_without_a_transform_pipeline_says_so_and_refunds() {
    let s = setup().await;
    let acme = TenantId::new("acme");
    let quota = TransformQuota {
        per_day: Some(5),
        per_month: None,
    };
    s.handler
        .admission
        .consume_transforms(&acme, 1, quota, chrono::Utc::now())
        .await
        .unwrap();
    let mut job = command_job("transform", json!({}), "tok-t");
    let mut p: Value = rmp_serde::from_slice(&job.payload).unwrap();
    p["quota_consumed"] = true.into();
    p["transform"] = json!({"v": 1, "source": {"type": "text", "text": "doc"}, "personas": [], "product": null,
        "origin": {"type": "discord", "application_id": APP_ID.to_string(), "token": "tok-t", "channel_id": null},
        "user": "42", "title": null});
    job.payload = rmp_serde::to_vec_named(&p).unwrap().into();
    let err = s.handler.handle(&job).await.unwrap_err();
    assert!(matches!(err, JobError::Terminal { .. }));
    assert!(reply_text(&s, "tok-t").contains("not available"));
    let used = s
        .handler
        .admission
        .quota_usage(&acme, quota, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(used.day.used, 0, "the transformation was given back");
}

fn engine(s: &Setup, claude: &ClaudeFake) -> TransformEngine {
    let cache = TieredCache::builder(s.redis.conn.clone(), s.redis.keys.clone())
        .redis_url(onomancer_testkit::redis_ns::redis_url())
        .l3(Arc::new(SqlL3::from(&s.db.db)))
        .build(&prometheus::Registry::new())
        .unwrap();
    let mut config = ClaudeConfig::new(claude.base_url(), "test-key".to_string().into());
    config.connect_retries = 0;
    let mut prices = Prices::default();
    prices.insert(
        "claude-test",
        ModelPrice {
            input: 3.0,
            output: 15.0,
            cache_write_5m_multiplier: 1.25,
            cache_write_1h_multiplier: 2.0,
            cache_read_multiplier: 0.1,
        },
    );
    TransformEngine {
        cache,
        claude: Arc::new(crate::billed::BilledClaude {
            client: ClaudeClient::new(config).unwrap(),
            limiter: None,
            usage: UsageStore::new(s.db.db.clone()),
            prices,
        }),
        models: ModelRoutes {
            transform: "claude-test".into(),
            validation: "claude-test".into(),
            summarize: "claude-test".into(),
        },
        prompts: PromptStore::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/prompts")),
        duration: None,
    }
}

#[tokio::test]
async fn transform_is_delegated_and_edits_the_deferred_reply() {
    let mut s = setup().await;
    let claude = ClaudeFake::start().await;
    s.handler.transform = Some(TransformHandler {
        engine: Arc::new(engine(&s, &claude)),
        tenants: s.handler.tenants.clone(),
        fetcher: Fetcher::default(),
        discord: Some(s.handler.discord.clone()),
        google: BTreeMap::new(),
        progress: None,
    });
    let mut job = command_job("transform", json!({}), "tok-x");
    let mut p: Value = rmp_serde::from_slice(&job.payload).unwrap();
    p["quota_consumed"] = true.into();
    p["transform"] = json!({"v": 1, "source": {"type": "text", "text": "# PRD\nShip the rocket by Friday."},
        "personas": ["leadership"], "product": null,
        "origin": {"type": "discord", "application_id": APP_ID.to_string(), "token": "tok-x", "channel_id": null},
        "user": "42", "title": "Rocket PRD"});
    job.payload = rmp_serde::to_vec_named(&p).unwrap().into();
    let out = s.handler.handle(&job).await.unwrap();
    assert!(out.result.is_some());
    assert!(!claude.requests().is_empty(), "Claude was called");
    let text = reply_text(&s, "tok-x");
    assert!(text.to_lowercase().contains("leadership"), "{text}");
}
