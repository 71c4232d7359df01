//! `POST /discord/interactions`.

use onomancer_shared::{JobKind, Lane};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{command, payload, spawn_app, spawn_app_with, Options, GUILD, TRANSFORM_ROLE};

async fn reply(app: &crate::helpers::TestApp, body: &Value) -> Value {
    let resp = app.discord(body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

fn ephemeral_text(v: &Value) -> &str {
    assert_eq!(v["type"], 4, "{v}");
    assert_eq!(v["data"]["flags"], 64, "{v}");
    v["data"]["content"].as_str().unwrap()
}

#[tokio::test]
async fn ping_gets_pong() {
    let app = spawn_app().await;
    assert_eq!(
        reply(
            &app,
            &json!({"type": 1, "id": "1", "application_id": "2", "token": "t"})
        )
        .await,
        json!({"type": 1})
    );
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_401() {
    let app = spawn_app().await;
    let url = format!("{}/discord/interactions", app.address);
    let resp = app
        .client
        .post(&url)
        .body(r#"{"type":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app
        .client
        .post(&url)
        .header("x-signature-ed25519", "00".repeat(64))
        .header("x-signature-timestamp", "1700000000")
        .body(r#"{"type":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn transform_is_deferred_and_enqueued_on_the_interactive_lane() {
    let app = spawn_app().await;
    let ix = command(
        "transform",
        json!([{"name": "link", "type": 3, "value": "https://docs.google.com/document/d/abc/edit"},
               {"name": "personas", "type": 3, "value": "Leadership, devrel"},
               {"name": "product", "type": 3, "value": "rocket"}]),
        GUILD,
        &[TRANSFORM_ROLE],
    );
    assert_eq!(reply(&app, &ix).await, json!({"type": 5}));
    let jobs = app.jobs("acme", Lane::Interactive).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].kind, JobKind::DiscordCommand);
    let p = payload(&jobs[0]);
    assert_eq!(p["command"], "transform");
    assert_eq!(p["token"], ix["token"]);
    assert_eq!(p["application_id"], "555555555555555555");
    assert_eq!(p["options"]["product"], "rocket");
    assert_eq!(p["quota_consumed"], true);
    assert_eq!(
        p["transform"]["source"],
        json!({"type": "url", "url": "https://docs.google.com/document/d/abc/edit"})
    );
    assert_eq!(p["transform"]["personas"], json!(["leadership", "devrel"]));
    assert_eq!(p["transform"]["origin"]["type"], "discord");
}

#[tokio::test]
async fn transform_accepts_an_attachment() {
    let app = spawn_app().await;
    let mut ix = command(
        "transform",
        json!([{"name": "file", "type": 11, "value": "999"}]),
        GUILD,
        &[TRANSFORM_ROLE],
    );
    ix["data"]["resolved"] = json!({"attachments": {"999": {"id": "999", "filename": "prd.md", "size": 10,
        "url": "https://cdn.discordapp.com/attachments/1/999/prd.md", "proxy_url": "https://media/x", "content_type": "text/markdown"}}});
    assert_eq!(reply(&app, &ix).await, json!({"type": 5}));
    let p = payload(&app.jobs("acme", Lane::Interactive).await[0]);
    assert_eq!(p["transform"]["source"]["type"], "discord_attachment");
    assert_eq!(p["transform"]["source"]["filename"], "prd.md");
    assert_eq!(
        p["options"]["file"]["url"],
        "https://cdn.discordapp.com/attachments/1/999/prd.md"
    );
}

#[tokio::test]
async fn usage_status_decisions_and_digest_are_deferred_jobs() {
    let app = spawn_app().await;
    for (name, options) in [
        ("usage", json!([])),
        ("status", json!([])),
        (
            "decisions",
            json!([{"name": "query", "type": 3, "value": "pricing"}]),
        ),
        (
            "digest",
            json!([{"name": "persona", "type": 3, "value": "marketing"}]),
        ),
    ] {
        assert_eq!(
            reply(&app, &command(name, options, GUILD, &[])).await,
            json!({"type": 5}),
            "{name}"
        );
    }
    let commands: Vec<String> = app
        .jobs("acme", Lane::Interactive)
        .await
        .iter()
        .map(|j| payload(j)["command"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(commands, ["usage", "status", "decisions", "digest"]);
}

/// A *Record decision* invocation on a message with `content`.
fn record_decision(content: &str) -> Value {
    let mut ix = command("Record decision", json!([]), GUILD, &[]);
    ix["data"] = json!({"id": "2", "name": "Record decision", "type": 3,
        "target_id": "123456789012345678",
        "resolved": {"messages": {"123456789012345678": {
            "id": "123456789012345678", "channel_id": "444444444444444444", "content": content,
            "author": {"id": "777", "username": "ada", "global_name": "Ada L."},
            "timestamp": "2026-11-18T08:30:00.000000+00:00", "attachments": [], "embeds": []}}}});
    ix
}

#[tokio::test]
async fn record_decision_defers_a_job_carrying_the_target_message() {
    let app = spawn_app().await;
    let ix = record_decision("Decision: pricing stays flat.");
    assert_eq!(reply(&app, &ix).await, json!({"type": 5}));
    let jobs = app.jobs("acme", Lane::Interactive).await;
    assert_eq!(jobs.len(), 1);
    let p = payload(&jobs[0]);
    assert_eq!(p["command"], "record-decision");
    assert_eq!(
        p["options"]["message"],
        json!({"id": "123456789012345678", "channel_id": "444444444444444444",
               "content": "Decision: pricing stays flat.", "author": "Ada L.",
               "timestamp": "2026-11-18T08:30:00.000000+00:00"})
    );
    assert_eq!(p["guild_id"], GUILD);

    // A message with no text is refused at once; a slash command cannot pose as it.
    let v = reply(&app, &record_decision("  ")).await;
    assert_eq!(
        ephemeral_text(&v),
        "That message has no text to record as a decision."
    );
    let v = reply(&app, &command("Record decision", json!([]), GUILD, &[])).await;
    assert!(ephemeral_text(&v).starts_with("Unknown command"), "{v}");
    // The resolved message missing from a valid signed body: 400 naming it.
    let mut broken = record_decision("x");
    broken["data"]["resolved"] = json!({});
    let resp = app.discord(&broken).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("resolved target message"));
    assert_eq!(app.jobs("acme", Lane::Interactive).await.len(), 1);
}

#[tokio::test]
async fn help_is_answered_at_once_without_a_job() {
    let app = spawn_app().await;
    let v = reply(&app, &command("help", json!([]), "999", &[])).await;
    assert!(ephemeral_text(&v).contains("/transform"));
    assert!(ephemeral_text(&v).contains("Record decision"));
    assert!(app.all_jobs("acme").await.is_empty());
}

#[tokio::test]
async fn refusals_say_exactly_why() {
    let app = spawn_app().await;
    let link = json!([{"name": "link", "type": 3, "value": "https://example.com/prd"}]);
    let v = reply(&app, &command("usage", json!([]), "999999999999", &[])).await;
    assert!(
        ephemeral_text(&v).contains("not set up for Onomancer"),
        "{v}"
    );
    let v = reply(&app, &command("transform", link.clone(), GUILD, &[])).await;
    assert!(ephemeral_text(&v).contains("role"), "{v}");
    let v = reply(
        &app,
        &command("transform", json!([]), GUILD, &[TRANSFORM_ROLE]),
    )
    .await;
    assert!(ephemeral_text(&v).contains("needs a document"), "{v}");
    let v = reply(
        &app,
        &command(
            "transform",
            json!([{"name": "link", "type": 3, "value": "ftp://x"}]),
            GUILD,
            &[TRANSFORM_ROLE],
        ),
    )
    .await;
    assert!(ephemeral_text(&v).contains("not an http(s) link"), "{v}");
    assert!(app.all_jobs("acme").await.is_empty());
}

#[tokio::test]
async fn a_spent_quota_is_refused_with_the_reset_time() {
    let app = spawn_app_with(Options {
        per_day: Some(1),
        ..Options::default()
    })
    .await;
    let link = json!([{"name": "link", "type": 3, "value": "https://example.com/prd"}]);
    assert_eq!(
        reply(
            &app,
            &command("transform", link.clone(), GUILD, &[TRANSFORM_ROLE])
        )
        .await,
        json!({"type": 5})
    );
    let v = reply(&app, &command("transform", link, GUILD, &[TRANSFORM_ROLE])).await;
    let text = ephemeral_text(&v);
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT00:00:00Z")
        .to_string();
    assert!(
        text.contains("transformationsPerDay") && text.contains(&tomorrow),
        "{text}"
    );
    // Commands that create no transform still work.
    assert_eq!(
        reply(&app, &command("usage", json!([]), GUILD, &[])).await,
        json!({"type": 5})
    );
    assert_eq!(app.jobs("acme", Lane::Interactive).await.len(), 2);
}

#[tokio::test]
async fn a_rate_limited_tenant_is_told_when_to_retry() {
    let app = spawn_app_with(Options {
        requests_per_minute: 1,
        ..Options::default()
    })
    .await;
    assert_eq!(
        reply(&app, &command("usage", json!([]), GUILD, &[])).await,
        json!({"type": 5})
    );
    let v = reply(&app, &command("usage", json!([]), GUILD, &[])).await;
    assert!(ephemeral_text(&v).contains("try again in"), "{v}");
}

#[tokio::test]
async fn malformed_interactions_with_a_valid_signature_are_400() {
    let app = spawn_app().await;
    let resp = app.discord(&json!({"type": "two"})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = resp.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("type"), "{v}");
}
