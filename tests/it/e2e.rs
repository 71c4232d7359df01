//! End to end through `onomancer up` (one real process, every role): a signed Discord
//! `/transform` with an attached document is deferred by the gateway, queued, run by the worker
//! against the Claude fake, and the deferred reply is edited in the Discord fake.

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

#[tokio::test]
async fn a_discord_transform_is_deferred_queued_run_and_the_reply_edited() {
    let t = TestQueue::new(fast_config()).await;
    let claude = ClaudeFake::start().await;
    let discord = DiscordFake::start().await;
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

    let key = SigningKey::generate(&mut rand_core::OsRng);
    let port = free_port();
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
            "DISCORD_PUBLIC_KEY",
            hex::encode(key.verifying_key().to_bytes()),
        )
        .env("DISCORD_BOT_TOKEN", "bot-token")
        .env("DISCORD_APPLICATION_ID", "555555555555555555")
        .env("DISCORD_API_BASE", discord.api_base())
        .env("ANTHROPIC_API_KEY", "test-key")
        .env("ANTHROPIC_BASE_URL", claude.base_url())
        .env("RUST_LOG", "warn")
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
    let body = serde_json::to_vec(&interaction).unwrap();
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut signed = ts.clone().into_bytes();
    signed.extend_from_slice(&body);
    let sig = key.sign(&signed);
    let started = std::time::Instant::now();
    let reply = http
        .post(format!("{base}/discord/interactions"))
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
    assert_eq!(
        reply.json::<serde_json::Value>().await.unwrap(),
        json!({"type": 5})
    );

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
    drop(up);
}
