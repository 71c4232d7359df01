//! Notifications against the Discord fake and real Redis, with a temp tenant config routing one
//! repository and one Linear team to channels.

use std::path::Path;
use std::sync::Arc;

use onomancer_shared::integrations::discord::{DiscordConfig, DiscordPoster};
use onomancer_shared::tenant::TenantRegistry;
use onomancer_shared::{Envelope, JobId, JobKind, Lane, NewJob, TenantId};
use onomancer_testkit::discord_fake::DiscordFake;
use onomancer_testkit::TestRedis;
use serde_json::{json, Value};

use super::*;

const REPO_CHANNEL: u64 = 555_000_000_000_000_001;
const TEAM_CHANNEL: u64 = 555_000_000_000_000_002;
const FALLBACK_CHANNEL: u64 = 555_000_000_000_000_003;

pub(crate) fn write_tenants(dir: &Path) {
    let repo_config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    std::fs::create_dir_all(dir.join("tenants")).unwrap();
    for f in ["defaults.json", "quotas.json", "tenants/thj.json"] {
        std::fs::copy(repo_config.join(f), dir.join(f)).unwrap();
    }
    let quotas = json!({"transformationsPerDay": 5, "transformationsPerMonth": 50, "storageGB": 1,
        "usersMax": 5, "requestsPerMinute": 600});
    let acme = json!({
        "tenantId": "acme", "name": "Acme", "tier": "business",
        "config": {
            "discordServerId": "111111111111111111",
            "defaultPersonas": ["leadership", "product"],
            "github": {"documentPaths": ["docs/**"], "channels": {"octo-org/octo-repo": REPO_CHANNEL.to_string()}},
            "linear": {"channels": {"ENG": TEAM_CHANNEL.to_string()}},
            "discord": {"notificationChannelId": FALLBACK_CHANNEL.to_string()}
        },
        "quotas": quotas
    });
    let quiet = json!({
        "tenantId": "quiet", "name": "Quiet", "tier": "business",
        "config": {"discordServerId": "222222222222222222", "defaultPersonas": ["product"]},
        "quotas": quotas
    });
    for (name, v) in [("acme", acme), ("quiet", quiet)] {
        std::fs::write(dir.join(format!("tenants/{name}.json")), v.to_string()).unwrap();
    }
}

struct Setup {
    handler: NotifyHandler,
    discord: DiscordFake,
    _redis: TestRedis,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    write_tenants(dir.path());
    let redis = TestRedis::new().await;
    let discord = DiscordFake::start().await;
    let mut dc = DiscordConfig::new("bot-token".to_string().into(), 1_234_567);
    dc.api_base = Some(discord.api_base());
    Setup {
        handler: NotifyHandler {
            tenants: Arc::new(TenantRegistry::load_with_env(dir.path(), |_| None).unwrap()),
            discord: DiscordPoster::new(dc, redis.conn.clone(), redis.keys.clone()).unwrap(),
        },
        discord,
        _redis: redis,
        _dir: dir,
    }
}

fn job(tenant: &str, kind: JobKind, payload: Value) -> Envelope {
    NewJob::untyped(TenantId::new(tenant), kind, Lane::Default, &payload)
        .into_envelope(JobId::generate(), 0)
}

fn workflow(action: &str, conclusion: Option<&str>) -> Value {
    json!({"v": 1, "delivery": "d", "event": "workflow_run", "action": action,
        "repo": "octo-org/octo-repo", "name": "Build", "branch": "main",
        "sha": "acb5820ced9479c074f688cc328bf03f341a511d", "status": "completed",
        "conclusion": conclusion, "url": "https://github.com/octo-org/octo-repo/actions/runs/1"})
}

#[tokio::test]
async fn a_failed_build_is_posted_once_to_the_repository_channel() {
    let s = setup().await;
    let j = job(
        "acme",
        JobKind::BuildStatus,
        workflow("completed", Some("failure")),
    );
    let out = s.handler.handle(&j).await.unwrap().result.unwrap();
    assert_eq!(out["notified"], true);
    let again = s.handler.handle(&j).await.unwrap().result.unwrap();
    assert_eq!(again["already_posted"], true);
    let msgs = s.discord.channel_messages(REPO_CHANNEL);
    assert_eq!(msgs.len(), 1, "a re-run posts nothing new");
    let text = &msgs[0].content;
    assert!(
        text.starts_with("❌ **octo-org/octo-repo** workflow run: [Build]"),
        "{text}"
    );
    assert!(
        text.contains("`main`") && text.contains("`acb5820`") && text.ends_with("failure"),
        "{text}"
    );
}

#[tokio::test]
async fn unfinished_builds_and_pushes_are_not_posted() {
    let s = setup().await;
    let r = s
        .handler
        .handle(&job(
            "acme",
            JobKind::BuildStatus,
            workflow("requested", None),
        ))
        .await
        .unwrap()
        .result
        .unwrap();
    assert_eq!(
        r,
        json!({"notified": false, "reason": "build not completed"})
    );
    let push = json!({"v": 1, "delivery": "d", "event": "push", "action": null, "repo": "octo-org/octo-repo",
        "actor": "ada", "detail": {"type": "push", "git_ref": "refs/heads/main", "before": "a", "after": "b",
        "commits": 2, "compare": null, "head_message": "x", "deleted": false}});
    let r = s
        .handler
        .handle(&job("acme", JobKind::GithubActivity, push))
        .await
        .unwrap()
        .result
        .unwrap();
    assert_eq!(r["notified"], false);
    assert!(s.discord.messages().is_empty());
}

#[tokio::test]
async fn merged_pull_requests_and_releases_are_posted() {
    let s = setup().await;
    let pr = json!({"v": 1, "delivery": "d", "event": "pull_request", "action": "closed", "repo": "octo-org/octo-repo",
        "actor": "ada", "detail": {"type": "pull_request", "number": 7, "title": "Faster builds",
        "url": "https://github.com/octo-org/octo-repo/pull/7", "merged": true, "head": "f", "base": "main"}});
    s.handler
        .handle(&job("acme", JobKind::GithubActivity, pr))
        .await
        .unwrap();
    let rel = json!({"v": 1, "delivery": "e", "event": "release", "action": "published", "repo": "other/repo",
        "actor": "ada", "detail": {"type": "release", "tag": "v1.2.0", "name": "Rocket", "url": "https://github.com/other/repo/releases/v1.2.0",
        "prerelease": false, "draft": false}});
    s.handler
        .handle(&job("acme", JobKind::GithubActivity, rel))
        .await
        .unwrap();
    let pr_msg = &s.discord.channel_messages(REPO_CHANNEL)[0].content;
    assert!(
        pr_msg.contains("PR #7 merged by ada") && pr_msg.contains("Faster builds"),
        "{pr_msg}"
    );
    // An unmapped repository falls back to the tenant's notification channel.
    let rel_msg = &s.discord.channel_messages(FALLBACK_CHANNEL)[0].content;
    assert!(rel_msg.contains("Release [v1.2.0: Rocket]"), "{rel_msg}");
}

#[tokio::test]
async fn linear_state_changes_go_to_the_team_channel() {
    let s = setup().await;
    let issue = json!({"v": 1, "delivery": "l", "action": "update", "entity": "Issue", "id": "i",
        "identifier": "ENG-42", "title": "Ship it", "team": "ENG", "state": "In Progress",
        "url": "https://linear.app/acme/issue/ENG-42", "actor": "Ada", "changed": ["stateId"], "created_at": null});
    s.handler
        .handle(&job("acme", JobKind::LinearActivity, issue.clone()))
        .await
        .unwrap();
    let msg = &s.discord.channel_messages(TEAM_CHANNEL)[0].content;
    assert_eq!(msg, "📋 Issue moved to **In Progress**: [ENG-42 Ship it](<https://linear.app/acme/issue/ENG-42>) by Ada");
    let mut title_only = issue;
    title_only["changed"] = json!(["title"]);
    let r = s
        .handler
        .handle(&job("acme", JobKind::LinearActivity, title_only))
        .await
        .unwrap()
        .result
        .unwrap();
    assert_eq!(r["notified"], false);
}

#[tokio::test]
async fn a_tenant_without_any_channel_is_told_so_in_the_result() {
    let s = setup().await;
    let r = s
        .handler
        .handle(&job(
            "quiet",
            JobKind::BuildStatus,
            workflow("completed", Some("success")),
        ))
        .await
        .unwrap()
        .result
        .unwrap();
    assert_eq!(r["notified"], false);
    assert!(r["reason"].as_str().unwrap().contains("no Discord channel"));
    assert!(s.discord.messages().is_empty());
}

#[tokio::test]
async fn an_undecodable_payload_is_terminal() {
    let s = setup().await;
    let err = s
        .handler
        .handle(&job("acme", JobKind::BuildStatus, json!({"nope": 1})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, onomancer_shared::JobError::Terminal { .. }),
        "{err}"
    );
}
