//! Decisions from GitHub and Linear jobs and Discord messages, and `/decisions` answers, against
//! real Redis and SQLite/PostgreSQL with Claude faked at the HTTP level.

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use onomancer_shared::decisions::DecisionStore;
use onomancer_shared::llm::{ClaudeClient, ClaudeConfig, ModelPrice, Prices};
use onomancer_shared::usage::UsageStore;
use onomancer_shared::{JobId, JobKind, Lane, NewJob};
use onomancer_testkit::{ClaudeFake, TestDb, TestRedis};
use serde_json::{json, Value};

use super::*;
use crate::billed::BilledClaude;
use crate::handlers::claude_once::ClaudeOnce;
use crate::handlers::notify::record_decision;

const MODEL: &str = "claude-sonnet-test";
const ANSWER: &str = "The job queue is Redis Streams [1]; Kafka was turned down [2].";

fn job(tenant: &str, kind: JobKind, payload: Value) -> Envelope {
    NewJob::untyped(TenantId::new(tenant), kind, Lane::Default, &payload).into_envelope(
        JobId::generate(),
        Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0)
            .unwrap()
            .timestamp_millis(),
    )
}

fn pull_request(tenant: &str, action: &str, merged: bool, body: &str, labels: &[&str]) -> Envelope {
    job(
        tenant,
        JobKind::GithubActivity,
        json!({"v": 1, "delivery": "d1", "event": "pull_request", "action": action,
               "repo": "octo-org/app", "actor": "alice",
               "detail": {"type": "pull_request", "number": 42, "title": "Queue on Redis Streams",
                          "url": "https://github.com/octo-org/app/pull/42", "merged": merged,
                          "head": "queue", "base": "main", "body": body, "labels": labels}}),
    )
}

fn linear(
    tenant: &str,
    entity: &str,
    action: &str,
    body: &str,
    labels: &[&str],
    changed: &[&str],
) -> Envelope {
    linear_titled(
        tenant,
        entity,
        action,
        "Pick the queue",
        body,
        labels,
        changed,
    )
}

fn linear_titled(
    tenant: &str,
    entity: &str,
    action: &str,
    title: &str,
    body: &str,
    labels: &[&str],
    changed: &[&str],
) -> Envelope {
    job(
        tenant,
        JobKind::LinearActivity,
        json!({"v": 1, "delivery": "l1", "action": action, "entity": entity, "id": "e-1",
               "identifier": "ENG-12", "title": title, "team": "ENG", "state": null,
               "url": "https://linear.app/acme/issue/ENG-12", "actor": "Bob",
               "changed": changed, "created_at": "2026-11-19T10:00:00Z",
               "body": body, "labels": labels}),
    )
}

fn recorded(job: &Envelope) -> Option<Decision> {
    match notify_change(job) {
        Some(crate::handlers::notify::DecisionChange::Record(d)) => Some(d),
        _ => None,
    }
}

fn notify_change(job: &Envelope) -> Option<crate::handlers::notify::DecisionChange> {
    crate::handlers::notify::decision_change_of(job).unwrap()
}

#[test]
fn merged_pull_requests_with_a_marked_line_or_the_label_are_decisions() {
    let d = recorded(&pull_request(
        "acme",
        "closed",
        true,
        "Context here.\n\nDecision: the job queue is Redis Streams.\nKafka is too heavy.",
        &[],
    ))
    .unwrap();
    assert_eq!(d.source, ActivitySource::Github);
    assert_eq!(d.title, "octo-org/app #42 Queue on Redis Streams");
    assert_eq!(
        d.text,
        "Decision: the job queue is Redis Streams.\nKafka is too heavy."
    );
    assert_eq!(d.dedupe_key, "github:pr:octo-org/app#42");
    assert_eq!(d.author.as_deref(), Some("alice"));

    let labelled = recorded(&pull_request(
        "acme",
        "closed",
        true,
        "We move jobs to Redis Streams.\n\nDetails follow.",
        &["Decision"],
    ))
    .unwrap();
    assert_eq!(labelled.text, "We move jobs to Redis Streams.");

    // Proposals and plain merges are not decisions.
    assert!(notify_change(&pull_request(
        "acme",
        "opened",
        false,
        "Decision: x",
        &["decision"]
    ))
    .is_none());
    assert!(notify_change(&pull_request("acme", "closed", false, "Decision: x", &[])).is_none());
    assert!(notify_change(&pull_request(
        "acme",
        "closed",
        true,
        "Just a fix.",
        &["bug"]
    ))
    .is_none());
}

#[test]
fn linear_comments_and_labelled_issues_are_decisions_until_unmarked() {
    use crate::handlers::notify::DecisionChange::Forget;
    let c = recorded(&linear(
        "acme",
        "Comment",
        "create",
        "LGTM.\n**Decided:** Redis Streams",
        &[],
        &[],
    ))
    .unwrap();
    assert_eq!(c.dedupe_key, "linear:comment:e-1");
    assert_eq!(c.text, "**Decided:** Redis Streams");
    assert_eq!(c.title, "ENG-12 Pick the queue");
    assert_eq!(
        c.decided_at,
        Utc.with_ymd_and_hms(2026, 11, 19, 10, 0, 0).unwrap()
    );
    assert!(notify_change(&linear("acme", "Comment", "create", "LGTM", &[], &[])).is_none());
    assert_eq!(
        notify_change(&linear("acme", "Comment", "update", "LGTM", &[], &["body"])),
        Some(Forget("linear:comment:e-1".into()))
    );
    assert_eq!(
        notify_change(&linear("acme", "Comment", "remove", "", &[], &[])),
        Some(Forget("linear:comment:e-1".into()))
    );

    let i = recorded(&linear(
        "acme",
        "Issue",
        "update",
        "Use Redis.\n\nMore.",
        &["decision"],
        &["labelIds"],
    ))
    .unwrap();
    assert_eq!(i.dedupe_key, "linear:issue:e-1");
    assert_eq!(i.text, "Use Redis.");
    assert_eq!(
        notify_change(&linear(
            "acme",
            "Issue",
            "update",
            "Use Redis.",
            &["infra"],
            &["labelIds"]
        )),
        Some(Forget("linear:issue:e-1".into()))
    );
    // An unlabelled issue changing state says nothing about decisions.
    assert!(notify_change(&linear("acme", "Issue", "update", "", &[], &["stateId"])).is_none());
}

#[test]
fn a_discord_message_becomes_a_linked_decision() {
    let m = TargetMessage {
        id: "900".into(),
        channel_id: "444".into(),
        content: "We ship v2 on Friday.\nNo more scope.".into(),
        author: Some("carol".into()),
        timestamp: Some("2026-11-18T08:30:00+00:00".into()),
    };
    let d = message_decision(&TenantId::new("acme"), "111", &m, Utc::now()).unwrap();
    assert_eq!(d.source, ActivitySource::Discord);
    assert_eq!(d.title, "We ship v2 on Friday.");
    assert_eq!(
        d.url.as_deref(),
        Some("https://discord.com/channels/111/444/900")
    );
    assert_eq!(d.dedupe_key, "discord:message:900");
    assert_eq!(
        d.decided_at,
        Utc.with_ymd_and_hms(2026, 11, 18, 8, 30, 0).unwrap()
    );
    let empty = TargetMessage {
        content: "  ".into(),
        ..m
    };
    assert!(message_decision(&TenantId::new("acme"), "111", &empty, Utc::now()).is_none());
}

struct Setup {
    search: DecisionSearch,
    claude: ClaudeFake,
    _redis: TestRedis,
}

async fn setup(db: &TestDb, with_claude: bool) -> Setup {
    let redis = TestRedis::new().await;
    let claude = ClaudeFake::start().await;
    claude.set_responder(|_| ANSWER.to_owned());
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
    let search = DecisionSearch {
        store: DecisionStore::new(db.db.clone()),
        writer: ClaudeOnce {
            claude: with_claude.then(|| {
                Arc::new(BilledClaude {
                    client: ClaudeClient::new(cc).unwrap(),
                    limiter: None,
                    usage: UsageStore::new(db.db.clone()),
                    prices,
                })
            }),
            model: MODEL.into(),
            redis: redis.conn.clone(),
            keys: redis.keys.clone(),
        },
        prompts_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/prompts"),
    };
    Setup {
        search,
        claude,
        _redis: redis,
    }
}

async fn record_three(store: &DecisionStore) {
    let pr = pull_request(
        "acme",
        "closed",
        true,
        "Decision: the job queue is Redis Streams.",
        &[],
    );
    assert!(record_decision(store, &pr).await.unwrap());
    let c = linear(
        "acme",
        "Comment",
        "create",
        "Decision: no Kafka; Redis Streams is enough for the queue.",
        &[],
        &[],
    );
    assert!(record_decision(store, &c).await.unwrap());
    let other = linear_titled(
        "acme",
        "Project",
        "create",
        "Pricing",
        "Pricing stays flat.",
        &["decision"],
        &[],
    );
    assert!(record_decision(store, &other).await.unwrap());
    // Another tenant's decision about the same thing.
    let rival = pull_request(
        "globex",
        "closed",
        true,
        "Decision: the queue is Kafka.",
        &[],
    );
    assert!(record_decision(store, &rival).await.unwrap());
}

fn query_job(tenant: &str) -> Envelope {
    job(tenant, JobKind::DiscordCommand, json!({}))
}

#[tokio::test]
async fn a_query_is_answered_once_with_citations_from_its_tenant_only() {
    for db in TestDb::both().await {
        let s = setup(&db, true).await;
        record_three(&s.search.store).await;
        let job = query_job("acme");
        let reply = s
            .search
            .reply(&job, "Which queue did we pick?")
            .await
            .unwrap();
        assert!(
            reply.starts_with("**Decisions on \"Which queue did we pick?\"**\n"),
            "{reply}"
        );
        assert!(reply.contains(ANSWER), "{reply}");
        assert!(reply.contains("**Sources**\n[1] "), "{reply}");
        assert!(
            reply.contains("[octo-org/app #42 Queue on Redis Streams](<https://github.com/octo-org/app/pull/42>) — alice"),
            "{reply}"
        );
        assert!(
            reply.contains("· Linear · [ENG-12 Pick the queue]"),
            "{reply}"
        );
        assert!(!reply.contains("Pricing"), "{reply}");

        assert_eq!(s.claude.calls(), 1);
        let body = s.claude.requests()[0].body.clone();
        assert_eq!(body["model"], MODEL);
        let ask = body["messages"][0]["content"].as_str().unwrap();
        assert!(
            ask.starts_with("Question: Which queue did we pick?"),
            "{ask}"
        );
        assert!(
            ask.contains("[1] ") && ask.contains("[2] ") && !ask.contains("[3] "),
            "{ask}"
        );
        assert!(
            !ask.contains("Kafka."),
            "another tenant's decision leaked: {ask}"
        );
        assert!(body["system"]
            .as_str()
            .unwrap()
            .contains("Cite every statement"));

        // The job again (Discord failed after Claude answered): same text, no second call.
        let again = s
            .search
            .reply(&job, "Which queue did we pick?")
            .await
            .unwrap();
        assert_eq!(again, reply);
        assert_eq!(s.claude.calls(), 1);
        let usage = s
            .search
            .writer
            .claude
            .as_ref()
            .unwrap()
            .usage
            .summary(
                &TenantId::new("acme"),
                Utc::now() - chrono::Duration::days(1),
                Utc::now() + chrono::Duration::days(1),
            )
            .await
            .unwrap();
        assert_eq!(usage.by_operation.len(), 1, "{}", db.url);
        assert_eq!(usage.by_operation[0].operation, "query");
        assert_eq!(usage.by_operation[0].records, 1);
    }
}

#[tokio::test]
async fn no_match_or_no_claude_answers_without_a_call() {
    let db = TestDb::sqlite().await;
    let s = setup(&db, true).await;
    let reply = s.search.reply(&query_job("acme"), "queue").await.unwrap();
    assert!(
        reply.starts_with("No decision has been recorded")
            || reply.starts_with("No recorded decision matches \"queue\""),
        "{reply}"
    );
    assert!(reply.contains("Record decision"), "{reply}");
    record_three(&s.search.store).await;
    let reply = s.search.reply(&query_job("acme"), "roadmap").await.unwrap();
    assert!(
        reply.starts_with("No recorded decision matches \"roadmap\""),
        "{reply}"
    );
    // No search terms: the newest decisions, listed.
    let reply = s.search.reply(&query_job("acme"), "").await.unwrap();
    assert!(reply.starts_with("**Latest decisions**\n[1] "), "{reply}");
    assert!(reply.contains("Pricing stays flat."), "{reply}");
    assert_eq!(s.claude.calls(), 0);

    let s = setup(&db, false).await;
    let reply = s.search.reply(&query_job("acme"), "queue").await.unwrap();
    assert!(
        reply.contains("no summary: this worker has no Claude key"),
        "{reply}"
    );
    assert!(
        reply.contains("> Decision: the job queue is Redis Streams."),
        "{reply}"
    );
    assert_eq!(s.claude.calls(), 0);
}

#[tokio::test]
async fn recording_is_idempotent_and_forgetting_removes() {
    let db = TestDb::sqlite().await;
    let store = DecisionStore::new(db.db.clone());
    let c = linear(
        "acme",
        "Comment",
        "create",
        "Decision: weekly releases",
        &[],
        &[],
    );
    assert!(record_decision(&store, &c).await.unwrap());
    assert!(record_decision(&store, &c).await.unwrap());
    let acme = TenantId::new("acme");
    assert_eq!(store.search(&acme, "releases", 10).await.unwrap().len(), 1);
    let removed = linear("acme", "Comment", "remove", "", &[], &[]);
    assert!(!record_decision(&store, &removed).await.unwrap());
    assert!(store
        .search(&acme, "releases", 10)
        .await
        .unwrap()
        .is_empty());
}
