//! Websocket mode (`DISCORD_INTERACTIONS=gateway`) against the Discord fake's Gateway half (a
//! websocket speaking Discord's HELLO / IDENTIFY / READY / dispatch protocol, and close code 4004
//! for a rejected token), driven by serenity's real client.

use std::time::Duration;

use onomancer_gateway::discord::ws;
use onomancer_shared::integrations::discord::DiscordConfig;
use onomancer_shared::Lane;
use onomancer_testkit::discord_fake::{gateway_interaction, DiscordFake, BOT_USER_ID};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::{payload, spawn_app, GUILD};

const WAIT: Duration = Duration::from_secs(20);

/// A slash command `name` with `options`, as the Gateway delivers it.
pub fn slash(id: u64, token: &str, name: &str, options: Value) -> Value {
    gateway_interaction(
        id,
        token,
        GUILD,
        &[],
        json!({"id": "1", "name": name, "type": 1, "options": options}),
    )
}

fn config(discord: &DiscordFake) -> DiscordConfig {
    let mut c = DiscordConfig::new("bot-token".to_string().into(), BOT_USER_ID);
    c.api_base = Some(discord.api_base());
    c
}

#[tokio::test]
async fn interactions_over_the_gateway_get_the_same_answers_and_jobs() {
    let app = spawn_app().await;
    let discord = DiscordFake::start().await;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ws::run(
        config(&discord),
        app.state.clone(),
        shutdown.clone(),
    ));

    let identify = discord.wait_gateway_identify(WAIT).await;
    // serenity identifies with the HTTP form of the token, which Discord accepts.
    assert_eq!(identify["token"], "Bot bot-token");
    assert_eq!(identify["intents"], 1, "GUILDS only: no privileged intent");

    discord.dispatch_interaction(slash(
        900_000_000_000_000_101,
        "tok-ws-usage",
        "usage",
        json!([]),
    ));
    let callbacks = discord.wait_interaction_callbacks(1, WAIT).await;
    assert_eq!(
        (
            callbacks[0].interaction_id.as_str(),
            callbacks[0].token.as_str()
        ),
        ("900000000000000101", "tok-ws-usage")
    );
    assert_eq!(callbacks[0].body, json!({"type": 5}));
    let jobs = app.jobs("acme", Lane::Interactive).await;
    assert_eq!(jobs.len(), 1);
    let p = payload(&jobs[0]);
    assert_eq!(p["command"], "usage");
    assert_eq!(p["token"], "tok-ws-usage");
    assert_eq!(p["user_id"], "777777777777777777");

    discord.dispatch_interaction(slash(
        900_000_000_000_000_102,
        "tok-ws-decisions",
        "decisions",
        json!([{"name": "query", "type": 3, "value": "pricing"}]),
    ));
    let callbacks = discord.wait_interaction_callbacks(2, WAIT).await;
    assert_eq!(callbacks[1].body, json!({"type": 5}));
    let jobs = app.jobs("acme", Lane::Interactive).await;
    assert_eq!(payload(&jobs[1])["options"]["query"], "pricing");

    // An immediate answer is sent as the callback too.
    discord.dispatch_interaction(slash(
        900_000_000_000_000_103,
        "tok-ws-help",
        "help",
        json!([]),
    ));
    let callbacks = discord.wait_interaction_callbacks(3, WAIT).await;
    let body = &callbacks[2].body;
    assert_eq!(body["type"], 4);
    assert_eq!(body["data"]["flags"], 64);
    assert!(body["data"]["content"]
        .as_str()
        .unwrap()
        .contains("/transform"));
    assert_eq!(app.jobs("acme", Lane::Interactive).await.len(), 2);
    assert_eq!(
        app.state
            .metrics
            .requests
            .with_label_values(&[ws::METRICS_ROUTE, "200"])
            .get(),
        3
    );

    shutdown.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("websocket mode stops on shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_rejected_bot_token_is_an_error_naming_it() {
    let app = spawn_app().await;
    let discord = DiscordFake::start().await;
    discord.reject_gateway_token();
    let err = tokio::time::timeout(
        WAIT,
        ws::run(
            config(&discord),
            app.state.clone(),
            CancellationToken::new(),
        ),
    )
    .await
    .expect("a rejected token ends websocket mode")
    .unwrap_err();
    assert!(err.to_string().contains("DISCORD_BOT_TOKEN"), "{err}");
}

#[tokio::test]
async fn websocket_mode_without_a_bot_token_fails_at_start_naming_the_settings() {
    let config_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let redis_url = onomancer_testkit::redis_ns::redis_url();
    let vars = [
        ("DISCORD_INTERACTIONS", "gateway"),
        ("ONOMANCER_HTTP_ADDR", "127.0.0.1:0"),
        ("ONOMANCER_NAMESPACE", "ws-mode-start-test"),
        ("DATABASE_URL", "sqlite::memory:"),
        ("REDIS_URL", redis_url.as_str()),
    ];
    let settings = onomancer_shared::settings::Settings::from_lookup(|k| match k {
        "ONOMANCER_CONFIG_DIR" => Some(config_dir.display().to_string()),
        _ => vars
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string()),
    })
    .unwrap();
    let err = tokio::time::timeout(
        WAIT,
        onomancer_gateway::run(&settings, CancellationToken::new()),
    )
    .await
    .expect("start fails at once")
    .unwrap_err();
    assert!(
        format!("{err:#}").contains(
            "DISCORD_INTERACTIONS=gateway needs DISCORD_BOT_TOKEN and DISCORD_APPLICATION_ID"
        ),
        "{err:#}"
    );
}
