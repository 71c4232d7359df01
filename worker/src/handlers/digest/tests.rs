//! Digests and activity recording against real Redis, SQLite and PostgreSQL, with Claude and
//! Discord faked at the HTTP level (`onomancer_testkit`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use onomancer_shared::activity::{ActivitySource, ActivityStore};
use onomancer_shared::integrations::discord::{DiscordConfig, DiscordPoster};
use onomancer_shared::llm::{ClaudeClient, ClaudeConfig, MessagesRequest, ModelPrice, Prices};
use onomancer_shared::tenant::TenantRegistry;
use onomancer_shared::usage::UsageStore;
use onomancer_shared::{Envelope, JobError, JobId, JobKind, Lane, NewJob, Persona, TenantId};
use onomancer_testkit::claude_fake::error_body;
use onomancer_testkit::discord_fake::DiscordFake;
use onomancer_testkit::{ClaudeFake, TestDb, TestRedis};
use serde_json::json;

use super::*;
use crate::billed::BilledClaude;
use crate::handlers::claude_once::ClaudeOnce;
use crate::handlers::notify::record_activity;
use onomancer_shared::decisions::DecisionStore;

mod fixtures;
use fixtures::*;

mod docs_and_budget;

mod through_the_queue;

mod decisions;

const ACME_CHANNEL: u64 = 555_000_000_000_000_101;
const GLOBEX_CHANNEL: u64 = 555_000_000_000_000_102;
const INITECH_CHANNEL: u64 = 555_000_000_000_000_103;
const MODEL: &str = "claude-sonnet-test";
const REPLY: &str = "## Highlights\nSearch got faster and v2.0 shipped.";

fn write_tenants(dir: &Path, root: &str) {
    let repo_config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    std::fs::create_dir_all(dir.join("tenants")).unwrap();
    for f in ["defaults.json", "quotas.json", "tenants/thj.json"] {
        std::fs::copy(repo_config.join(f), dir.join(f)).unwrap();
    }
    let quotas = json!({"transformationsPerDay": 5, "transformationsPerMonth": 50, "storageGB": 1,
        "usersMax": 5, "requestsPerMinute": 600});
    let tenant = |id: &str, guild: &str, channel: Option<u64>| {
        let mut discord = json!({});
        if let Some(c) = channel {
            discord["notificationChannelId"] = json!(c.to_string());
        }
        json!({"tenantId": id, "name": id.to_uppercase(), "tier": "business",
            "config": {"discordServerId": guild, "defaultPersonas": ["leadership", "product"],
                       "discord": discord},
            "quotas": quotas})
    };
    for (id, v) in [
        (
            "acme",
            tenant("acme", "111111111111111111", Some(ACME_CHANNEL)),
        ),
        (
            "globex",
            tenant("globex", "222222222222222222", Some(GLOBEX_CHANNEL)),
        ),
        ("nochan", tenant("nochan", "333333333333333333", None)),
        ("initech", {
            let mut t = tenant("initech", "444444444444444444", Some(INITECH_CHANNEL));
            t["config"]["googleWorkspaceId"] = json!("C0initech");
            t["config"]["folderIds"] = json!({"root": root});
            t
        }),
    ] {
        std::fs::write(dir.join(format!("tenants/{id}.json")), v.to_string()).unwrap();
    }
}

struct Setup {
    handler: DigestHandler,
    claude: ClaudeFake,
    discord: DiscordFake,
    _redis: TestRedis,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

async fn setup(db: TestDb) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    write_tenants(dir.path(), "no-root");
    let redis = TestRedis::new().await;
    let claude = ClaudeFake::start().await;
    claude.set_responder(|_| REPLY.to_owned());
    let discord = DiscordFake::start().await;
    let mut dc = DiscordConfig::new("bot-token".to_string().into(), 1_234_567);
    dc.api_base = Some(discord.api_base());
    let mut cc = ClaudeConfig::new(claude.base_url(), "test-key".to_string().into());
    cc.connect_retries = 0;
    let mut prices = Prices::default();
    prices.insert(
        MODEL,
        ModelPrice {
            input: 3.0,
            output: 15.0,
            cache_write_5m_multiplier: 1.25,
            cache_write_1h_multiplier: 2.0,
            cache_read_multiplier: 0.1,
        },
    );
    let handler = DigestHandler {
        tenants: Arc::new(TenantRegistry::load_with_env(dir.path(), |_| None).unwrap()),
        activity: ActivityStore::new(db.db.clone()),
        decisions: Some(DecisionStore::new(db.db.clone())),
        writer: ClaudeOnce {
            claude: Some(Arc::new(BilledClaude {
                client: ClaudeClient::new(cc).unwrap(),
                limiter: None,
                usage: UsageStore::new(db.db.clone()),
                prices,
            })),
            model: MODEL.into(),
            redis: redis.conn.clone(),
            keys: redis.keys.clone(),
        },
        prompts_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/prompts"),
        discord: Some(DiscordPoster::new(dc, redis.conn.clone(), redis.keys.clone()).unwrap()),
        google: BTreeMap::new(),
    };
    Setup {
        handler,
        claude,
        discord,
        _redis: redis,
        _db: db,
        _dir: dir,
    }
}

fn digest_job(tenant: &str, persona: &str, token: Option<&str>) -> Envelope {
    let (start, end) = week();
    let payload = DigestPayload {
        persona: Persona::parse(persona).unwrap(),
        period_start: start,
        period_end: end,
        interaction_token: token.map(str::to_owned),
    };
    NewJob::new(TenantId::new(tenant), &payload)
        .idempotency_key(format!("digest:{persona}:{}", end.to_rfc3339()))
        .into_envelope(JobId::generate(), end.timestamp_millis())
}

async fn record_week(store: &ActivityStore, tenant: &str) {
    for job in [
        merged_pr(tenant, 42, &format!("Faster search for {tenant}"), day(1)),
        release(tenant, day(3)),
        build(tenant, "b1", "completed", Some("failure"), day(2)),
        build(tenant, "b2", "completed", Some("success"), day(2)),
        linear(tenant, "l1", &["stateId"], day(4)),
    ] {
        assert!(record_activity(store, &job).await.unwrap());
    }
}

#[tokio::test]
async fn activity_is_recorded_once_per_job() {
    for db in TestDb::both().await {
        let store = ActivityStore::new(db.db.clone());
        let pr = merged_pr("acme", 7, "Add search", day(1));
        assert!(record_activity(&store, &pr).await.unwrap());
        // The same job again, and the same webhook delivered again as another job.
        assert!(!record_activity(&store, &pr).await.unwrap());
        let mut redelivered = merged_pr("acme", 7, "Add search", day(1));
        redelivered.id = JobId::generate();
        assert!(!record_activity(&store, &redelivered).await.unwrap());
        // Nothing worth a digest line: a push, a queued build, a cosmetic Linear edit.
        assert!(!record_activity(&store, &push("acme", day(1)))
            .await
            .unwrap());
        assert!(
            !record_activity(&store, &build("acme", "q", "requested", None, day(1)))
                .await
                .unwrap()
        );
        assert!(
            !record_activity(&store, &linear("acme", "l0", &["sortOrder"], day(1)))
                .await
                .unwrap()
        );
        assert!(record_activity(&store, &release("acme", day(2)))
            .await
            .unwrap());
        assert!(
            record_activity(&store, &linear("acme", "l1", &["stateId"], day(5)))
                .await
                .unwrap()
        );
        let (start, end) = week();
        let events = store
            .between(&TenantId::new("acme"), start, end, 100)
            .await
            .unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["pull_request.merged", "release.published", "issue.update"],
            "{}",
            db.url
        );
        assert_eq!(events[0].title, "octo-org/app #7 Add search");
        assert_eq!(events[0].actor.as_deref(), Some("alice"));
        assert_eq!(events[0].occurred_at, day(1));
        assert_eq!(events[2].source, ActivitySource::Linear);
        assert_eq!(events[2].details["state"], "Done");
        assert_eq!(events[2].occurred_at, day(5));
    }
}

#[tokio::test]
async fn a_week_is_digested_and_posted_once_with_its_usage() {
    for db in TestDb::both().await {
        let url = db.url.clone();
        let s = setup(db).await;
        record_week(&s.handler.activity, "acme").await;
        record_week(&s.handler.activity, "globex").await;
        let job = digest_job("acme", "product", None);
        let out = s.handler.handle(&job).await.unwrap().result.unwrap();
        assert_eq!(out["written_by"], "claude", "{url}");
        assert_eq!(out["events"], 5);
        assert_eq!(s.claude.calls(), 1);

        // The request carries the persona's prompt and this tenant's activity only.
        let body = s.claude.requests()[0].body.clone();
        assert_eq!(body["model"], MODEL);
        let ask = body["messages"][0]["content"].as_str().unwrap();
        assert!(ask.contains("Persona: product"));
        assert!(
            ask.contains("octo-org/app #42 Faster search for acme"),
            "{ask}"
        );
        assert!(ask.contains("octo-org/app v2.0.0: Search 2"));
        assert!(ask.contains("ENG-7 Index rebuild (now Done)"));
        assert!(ask.contains("octo-org/app CI: 2 runs (1 failure, 1 success)"));
        assert!(!ask.contains("globex"), "{ask}");

        // Posted once to the notification channel.
        let posted = s.discord.channel_messages(ACME_CHANNEL);
        assert_eq!(posted.len(), 1);
        assert!(posted[0]
            .content
            .starts_with("# Weekly digest — Product — Nov 23 – Nov 30, 2026"));
        assert!(posted[0].content.contains(REPLY));
        assert!(s.discord.channel_messages(GLOBEX_CHANNEL).is_empty());

        // Usage: the fake's token counts, once.
        let request: MessagesRequest = serde_json::from_value(body).unwrap();
        let input = s
            .handler
            .writer
            .claude
            .as_ref()
            .unwrap()
            .client
            .count_tokens(&request.count_tokens_request())
            .await
            .unwrap();
        let (start, end) = week();
        let usage = s
            .handler
            .writer
            .claude
            .as_ref()
            .unwrap()
            .usage
            .summary(
                &TenantId::new("acme"),
                start,
                end + ChronoDuration::days(3650),
            )
            .await
            .unwrap();
        assert_eq!(usage.by_operation.len(), 1);
        let op = &usage.by_operation[0];
        assert_eq!(op.operation, "digest");
        assert_eq!(op.records, 1);
        assert_eq!(op.tokens.input, input);
        assert_eq!(
            op.tokens.output,
            onomancer_testkit::claude_fake::count_tokens(REPLY)
        );
        assert!(op.estimated_cost_micros > 0);

        // The job again: no new message, no new Claude call, no new usage.
        let again = s.handler.handle(&job).await.unwrap().result.unwrap();
        assert_eq!(again["written_by"], "retry");
        assert_eq!(again["newly_posted"], 0);
        assert_eq!(again["message_ids"], out["message_ids"]);
        assert_eq!(s.claude.calls(), 1);
        assert_eq!(s.discord.channel_messages(ACME_CHANNEL).len(), 1);
        let usage = s
            .handler
            .writer
            .claude
            .as_ref()
            .unwrap()
            .usage
            .summary(
                &TenantId::new("acme"),
                start,
                end + ChronoDuration::days(3650),
            )
            .await
            .unwrap();
        assert_eq!(usage.by_operation[0].records, 1);
    }
}

#[tokio::test]
async fn an_empty_week_posts_a_quiet_digest_without_claude() {
    let s = setup(TestDb::sqlite().await).await;
    // Activity outside the period does not count.
    let before = merged_pr("acme", 1, "Old work", week().0 - ChronoDuration::hours(1));
    record_activity(&s.handler.activity, &before).await.unwrap();
    let out = s
        .handler
        .handle(&digest_job("acme", "leadership", None))
        .await
        .unwrap()
        .result
        .unwrap();
    assert_eq!(out["written_by"], "quiet");
    assert_eq!(out["events"], 0);
    assert_eq!(s.claude.calls(), 0);
    let posted = s.discord.channel_messages(ACME_CHANNEL);
    assert_eq!(posted.len(), 1);
    assert!(
        posted[0].content.contains("A quiet week for ACME"),
        "{}",
        posted[0].content
    );
    let (start, end) = week();
    let usage = s
        .handler
        .writer
        .claude
        .as_ref()
        .unwrap()
        .usage
        .summary(
            &TenantId::new("acme"),
            start,
            end + ChronoDuration::days(3650),
        )
        .await
        .unwrap();
    assert!(usage.by_operation.is_empty());
}

#[tokio::test]
async fn a_digest_command_edits_its_deferred_reply() {
    let s = setup(TestDb::sqlite().await).await;
    record_week(&s.handler.activity, "acme").await;
    s.handler
        .handle(&digest_job("acme", "devrel", Some("tok-digest")))
        .await
        .unwrap();
    let replies = s.discord.interaction_messages("tok-digest");
    assert_eq!(replies.len(), 1);
    assert!(replies[0].original);
    assert!(replies[0].content.contains(REPLY));
    assert!(s.discord.channel_messages(ACME_CHANNEL).is_empty());
}

#[tokio::test]
async fn a_tenant_without_a_channel_fails_terminally_before_paying() {
    let s = setup(TestDb::sqlite().await).await;
    record_week(&s.handler.activity, "nochan").await;
    let err = s
        .handler
        .handle(&digest_job("nochan", "product", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JobError::Terminal { message } if message.contains("notificationChannelId")),
        "{err:?}"
    );
    assert_eq!(s.claude.calls(), 0);
}

#[tokio::test]
async fn claude_errors_keep_their_retry_semantics() {
    let s = setup(TestDb::sqlite().await).await;
    record_week(&s.handler.activity, "acme").await;
    s.claude.push_failure(
        529,
        &[("retry-after", "7")],
        error_body("overloaded_error", "Overloaded"),
    );
    let err = s
        .handler
        .handle(&digest_job("acme", "product", None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, JobError::Deferred { wait, .. } if wait.as_secs() == 7),
        "{err:?}"
    );
    s.claude
        .push_failure(400, &[], error_body("invalid_request_error", "bad"));
    let err = s
        .handler
        .handle(&digest_job("acme", "marketing", None))
        .await
        .unwrap_err();
    assert!(matches!(err, JobError::Terminal { .. }), "{err:?}");
    assert!(s.discord.channel_messages(ACME_CHANNEL).is_empty());
}

#[tokio::test]
async fn an_unknown_persona_prompt_is_terminal() {
    let s = setup(TestDb::sqlite().await).await;
    record_week(&s.handler.activity, "acme").await;
    let err = s
        .handler
        .handle(&digest_job("acme", "investors", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JobError::Terminal { message } if message.contains("digest-investors.md")),
        "{err:?}"
    );
}

#[test]
fn the_scheduler_payload_decodes_without_an_interaction_token() {
    #[derive(serde::Serialize)]
    struct SchedulerPayload {
        persona: Persona,
        period_start: DateTime<Utc>,
        period_end: DateTime<Utc>,
    }
    let (start, end) = week();
    let job = NewJob::untyped(
        TenantId::new("acme"),
        JobKind::Digest,
        Lane::Bulk,
        &SchedulerPayload {
            persona: Persona::parse("product").unwrap(),
            period_start: start,
            period_end: end,
        },
    )
    .into_envelope(JobId::generate(), 0);
    let p: DigestPayload = job.payload_as().unwrap();
    assert_eq!(p.interaction_token, None);
    assert_eq!((p.period_start, p.period_end), (start, end));
}
