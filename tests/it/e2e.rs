//! End to end through `onomancer up` (one real process, every role), with Claude and Discord
//! faked at the HTTP level:
//! - a signed Discord `/transform` with an attached document is deferred by the gateway, queued,
//!   run by the worker against the Claude fake, and the deferred reply is edited;
//! - a message recorded with *Record decision* is found by `/decisions`, answered with citations;
//! - the same in websocket mode (`DISCORD_INTERACTIONS=gateway`): interactions arrive over the
//!   Discord fake's Gateway, are answered by callback, and the worker edits the replies.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::routing::get;
use ed25519_dalek::{Signer, SigningKey};
use onomancer_testkit::claude_fake::ClaudeFake;
use onomancer_testkit::discord_fake::DiscordFake;
use serde_json::json;

use crate::helpers::*;

const PRD: &str = "# Rocket PRD\n\nRocket lets teams ship release notes in minutes.\n\n## Goals\n\nCut the time from merge to announcement by 80%.\n";

struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `onomancer up` with its fakes, and a way to send signed interactions.
struct System {
    /// First, so the process stops before its fakes and config go away.
    _up: Up,
    t: TestQueue,
    claude: ClaudeFake,
    discord: DiscordFake,
    key: SigningKey,
    base: String,
    /// The worker's `/metrics`.
    metrics: String,
    http: reqwest::Client,
    _cfg: tempfile::TempDir,
}

impl System {
    async fn start(cfg: tempfile::TempDir) -> Self {
        Self::start_with(cfg, &[]).await
    }

    /// Like [`System::start`], with extra environment variables.
    async fn start_with(cfg: tempfile::TempDir, env: &[(&str, &str)]) -> Self {
        let t = TestQueue::new(fast_config()).await;
        let claude = ClaudeFake::start().await;
        let discord = DiscordFake::start().await;
        let key = SigningKey::generate(&mut rand_core::OsRng);
        let port = free_port();
        let metrics_port = free_port();
        let up = Up(Command::new(env!("CARGO_BIN_EXE_onomancer"))
            .arg("up")
            .env("REDIS_URL", onomancer_testkit::redis_ns::redis_url())
            .env("ONOMANCER_NAMESPACE", &t.redis.name)
            .env("ONOMANCER_CONFIG_DIR", cfg.path())
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/up.db", cfg.path().display()),
            )
            .env("ONOMANCER_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env(
                "ONOMANCER_METRICS_ADDR",
                format!("127.0.0.1:{metrics_port}"),
            )
            .env(
                "DISCORD_PUBLIC_KEY",
                hex::encode(key.verifying_key().to_bytes()),
            )
            .env("DISCORD_BOT_TOKEN", "bot-token")
            .env("DISCORD_APPLICATION_ID", "555555555555555555")
            .env("DISCORD_API_BASE", discord.api_base())
            .env("ANTHROPIC_API_KEY", "test-key")
            .env("ANTHROPIC_BASE_URL", claude.base_url())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap());
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        wait_until(Duration::from_secs(30), "gateway ready", || async {
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        Self {
            t,
            claude,
            discord,
            key,
            base,
            metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
            http,
            _cfg: cfg,
            _up: up,
        }
    }

    /// POSTs `interaction`, signed, and returns the gateway's answer (asserting 200 within
    /// Discord's 3 s).
    async fn interact(&self, interaction: &serde_json::Value) -> serde_json::Value {
        let body = serde_json::to_vec(interaction).unwrap();
        let ts = chrono::Utc::now().timestamp().to_string();
        let mut signed = ts.clone().into_bytes();
        signed.extend_from_slice(&body);
        let sig = self.key.sign(&signed);
        let started = std::time::Instant::now();
        let reply = self
            .http
            .post(format!("{}/discord/interactions", self.base))
            .header("content-type", "application/json")
            .header("x-signature-ed25519", hex::encode(sig.to_bytes()))
            .header("x-signature-timestamp", ts)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "answered within Discord's deadline"
        );
        reply.json().await.unwrap()
    }
}

#[tokio::test]
async fn a_discord_transform_is_deferred_queued_run_and_the_reply_edited() {
    // The attachment's host: a local file server (allowed by the test config's fetch section).
    let files = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let files_addr = files.local_addr().unwrap();
    tokio::spawn(async move {
        let app = axum::Router::new().route("/attachments/1/999/prd.md", get(|| async { PRD }));
        axum::serve(files, app).await.unwrap();
    });

    let cfg = config_dir(serde_json::json!({}));
    let defaults = cfg.path().join("defaults.json");
    let mut d: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&defaults).unwrap()).unwrap();
    d["fetch"] = json!({"discordHosts": ["127.0.0.1"], "insecureHttpHosts": ["127.0.0.1"], "allowPrivate": true});
    std::fs::write(&defaults, serde_json::to_vec(&d).unwrap()).unwrap();
    let sys = System::start(cfg).await;
    let (t, claude, discord) = (&sys.t, &sys.claude, &sys.discord);

    let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    let interaction = json!({
        "type": 2,
        "id": "900000000000000001",
        "application_id": "555555555555555555",
        "token": token,
        "guild_id": "123456789",
        "channel_id": "444444444444444444",
        "member": {"user": {"id": "777777777777777777", "username": "ada"}, "roles": []},
        "data": {
            "id": "1", "name": "transform", "type": 1,
            "options": [
                {"name": "file", "type": 11, "value": "999"},
                {"name": "personas", "type": 3, "value": "leadership,devrel"}
            ],
            "resolved": {"attachments": {"999": {
                "id": "999", "filename": "prd.md", "size": PRD.len(),
                "url": format!("http://{files_addr}/attachments/1/999/prd.md"),
                "proxy_url": format!("http://{files_addr}/attachments/1/999/prd.md"),
                "content_type": "text/markdown"
            }}}
        },
        "version": 1
    });
    assert_eq!(sys.interact(&interaction).await, json!({"type": 5}));

    wait_until(Duration::from_secs(30), "deferred reply edited", || async {
        discord
            .interaction_messages(&token)
            .iter()
            .any(|m| m.content.to_lowercase().contains("leadership"))
    })
    .await;
    let messages = discord.interaction_messages(&token);
    let all: String = messages
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        all.to_lowercase().contains("devrel"),
        "both personas posted:\n{all}"
    );
    assert_eq!(claude.calls(), 2, "one Claude call per persona");
    let prompt = serde_json::to_string(&claude.requests()[0].body).unwrap();
    assert!(
        prompt.contains("Rocket lets teams ship release notes"),
        "the attachment reached Claude"
    );
    // The job's status lists every persona as it finished (what `onomancer transform` shows).
    let stream = t.queue.keys().stream(
        &onomancer_shared::TenantId::new("thj"),
        onomancer_shared::Lane::Interactive,
    );
    let entries: redis::streams::StreamRangeReply =
        redis::AsyncCommands::xrange_all(&mut t.redis.conn.clone(), &stream)
            .await
            .unwrap();
    let raw = match entries.ids[0].map.get("e") {
        Some(redis::Value::BulkString(b)) => b.clone(),
        other => panic!("no envelope: {other:?}"),
    };
    let env = onomancer_shared::Envelope::decode(&raw).unwrap();
    let status = t.status(&env.tenant, &env.id).await;
    let done = status.progress.expect("progress recorded")["personas_done"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(done, 2);

    // The seed's cost metrics on the worker's /metrics: tokens, Claude calls, running cost.
    let metrics = sys
        .http
        .get(&sys.metrics)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
    };
    assert_eq!(
        value("onomancer_api_calls_total{service=\"claude\",tenant=\"thj\"}"),
        2.0
    );
    assert!(value("onomancer_tokens_used_total{tenant=\"thj\",type=\"output\"}") > 0.0);
    assert!(value("onomancer_estimated_cost_dollars{tenant=\"thj\"}") > 0.0);
}

fn interaction(id: u64, token: &str, data: serde_json::Value) -> serde_json::Value {
    json!({
        "type": 2, "id": id.to_string(), "application_id": "555555555555555555",
        "token": token, "guild_id": "123456789", "channel_id": "444444444444444444",
        "member": {"user": {"id": "777777777777777777", "username": "ada"}, "roles": []},
        "data": data, "version": 1
    })
}

#[tokio::test]
async fn a_recorded_message_is_found_by_decisions_with_citations() {
    let sys = System::start(config_dir(json!({}))).await;
    sys.claude
        .set_responder(|_| "Pricing stays flat through 2027 [1].".to_owned());

    let record_token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    let record = interaction(
        900_000_000_000_000_011,
        &record_token,
        json!({"id": "2", "name": "Record decision", "type": 3, "target_id": "321",
               "resolved": {"messages": {"321": {"id": "321", "channel_id": "444444444444444444",
                 "content": "Decision: pricing stays flat through 2027.",
                 "author": {"id": "8", "username": "carol", "global_name": null},
                 "timestamp": "2026-11-18T08:30:00+00:00"}}}}),
    );
    assert_eq!(sys.interact(&record).await, json!({"type": 5}));
    wait_until(Duration::from_secs(30), "decision recorded", || async {
        sys.discord
            .interaction_messages(&record_token)
            .iter()
            .any(|m| m.content.starts_with("📌 Recorded as a decision"))
    })
    .await;

    let query_token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    let query = interaction(
        900_000_000_000_000_012,
        &query_token,
        json!({"id": "3", "name": "decisions", "type": 1,
               "options": [{"name": "query", "type": 3, "value": "What about pricing?"}]}),
    );
    assert_eq!(sys.interact(&query).await, json!({"type": 5}));
    wait_until(Duration::from_secs(30), "decisions answered", || async {
        sys.discord
            .interaction_messages(&query_token)
            .iter()
            .any(|m| m.content.contains("**Sources**"))
    })
    .await;
    let answer = sys.discord.interaction_messages(&query_token)[0]
        .content
        .clone();
    assert!(
        answer.contains("Pricing stays flat through 2027 [1]."),
        "{answer}"
    );
    assert!(
        answer.contains("[1] 2026-11-18 · Discord · [Decision: pricing stays flat through 2027.](<https://discord.com/channels/123456789/444444444444444444/321>) — carol"),
        "{answer}"
    );
    assert_eq!(sys.claude.calls(), 1);
    let ask = sys.claude.requests()[0].body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ask.contains("[1] 2026-11-18 · Discord"), "{ask}");
}

#[tokio::test]
async fn websocket_mode_records_and_answers_over_discords_gateway() {
    use onomancer_testkit::discord_fake::gateway_interaction;
    let sys = System::start_with(
        config_dir(json!({})),
        &[("DISCORD_INTERACTIONS", "gateway")],
    )
    .await;
    sys.claude
        .set_responder(|_| "Pricing stays flat through 2027 [1].".to_owned());
    let wait = Duration::from_secs(30);
    sys.discord.wait_gateway_identify(wait).await;

    let record_token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    sys.discord.dispatch_interaction(gateway_interaction(
        900_000_000_000_000_021,
        &record_token,
        "123456789",
        &[],
        json!({"id": "2", "name": "Record decision", "type": 3, "target_id": "321",
               "resolved": {"messages": {"321": {"id": "321", "channel_id": "444444444444444444",
                 "content": "Decision: pricing stays flat through 2027.",
                 "author": {"id": "8", "username": "carol", "discriminator": "0",
                            "global_name": null, "avatar": null},
                 "timestamp": "2026-11-18T08:30:00+00:00", "edited_timestamp": null,
                 "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
                 "attachments": [], "embeds": [], "pinned": false, "type": 0}}}}),
    ));
    let callbacks = sys.discord.wait_interaction_callbacks(1, wait).await;
    assert_eq!(callbacks[0].body, json!({"type": 5}));
    wait_until(wait, "decision recorded", || async {
        sys.discord
            .interaction_messages(&record_token)
            .iter()
            .any(|m| {
                m.content
                    .starts_with("📌 Recorded as a decision (by carol)")
            })
    })
    .await;

    let query_token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    sys.discord.dispatch_interaction(gateway_interaction(
        900_000_000_000_000_022,
        &query_token,
        "123456789",
        &[],
        json!({"id": "3", "name": "decisions", "type": 1,
               "options": [{"name": "query", "type": 3, "value": "pricing"}]}),
    ));
    wait_until(wait, "decisions answered", || async {
        sys.discord
            .interaction_messages(&query_token)
            .iter()
            .any(|m| m.content.contains("**Sources**"))
    })
    .await;
    let answer = sys.discord.interaction_messages(&query_token)[0]
        .content
        .clone();
    assert!(
        answer.contains("Pricing stays flat through 2027 [1]."),
        "{answer}"
    );
    assert!(
        answer
            .contains("(<https://discord.com/channels/123456789/444444444444444444/321>) — carol"),
        "{answer}"
    );
    assert_eq!(sys.discord.interaction_callbacks().len(), 2);
}
