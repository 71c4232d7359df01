//! One of each: the worker's root built against the fakes gives every handler the same billed
//! Claude (and so one rate limiter and one connection pool), the same Discord poster and the
//! same Google client per tenant (one access token for all handlers).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use onomancer_shared::queue::{Queue, QueueConfig};
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::TenantRegistry;
use onomancer_shared::TenantId;
use onomancer_testkit::google_fake::GoogleFake;
use onomancer_testkit::{ClaudeFake, TestDb, TestRedis};

use super::Services;
use crate::handlers::Handlers;

#[tokio::test]
async fn every_handler_shares_the_one_client_of_each_kind() {
    let redis = TestRedis::new().await;
    let db = TestDb::sqlite().await;
    let claude = ClaudeFake::start().await;
    let google = GoogleFake::start().await;
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let env: BTreeMap<&str, String> = BTreeMap::from([
        ("REDIS_URL", onomancer_testkit::redis_ns::redis_url()),
        ("ONOMANCER_NAMESPACE", redis.name.clone()),
        ("ONOMANCER_CONFIG_DIR", config_dir.display().to_string()),
        ("DATABASE_URL", db.url.clone()),
        ("ANTHROPIC_API_KEY", "test-key".into()),
        ("ANTHROPIC_BASE_URL", claude.base_url()),
        ("DISCORD_BOT_TOKEN", "bot-token".into()),
        ("DISCORD_APPLICATION_ID", "1234567".into()),
    ]);
    let settings = Settings::from_lookup(|k| env.get(k).cloned()).unwrap();
    let registry = prometheus::Registry::new();
    let queue = Queue::connect(
        &settings.redis_url,
        settings.key_space(),
        QueueConfig::default(),
        &registry,
    )
    .await
    .unwrap();
    // The shipped `thj` tenant has a Workspace; its service account points at the fake.
    let key = google.service_account_json();
    let tenants = TenantRegistry::load_with_env(&config_dir, |k| {
        (k == "THJ_GOOGLE_SERVICE_ACCOUNT").then(|| key.clone())
    })
    .unwrap();
    let services = Services::with(
        &settings,
        Arc::new(tenants),
        db.db.clone(),
        &queue,
        &registry,
    )
    .unwrap();
    let handlers = Handlers::from_services(&services);

    let transform = handlers.transform.as_ref().expect("Claude is configured");
    let digest = handlers.digest.as_ref().expect("a database is configured");
    let command = handlers
        .discord_command
        .as_ref()
        .expect("Discord is configured");
    let command_transform = command.transform.as_ref().expect("/transform runs here");
    let decisions = command
        .decisions
        .as_ref()
        .expect("a database is configured");
    let one = services.claude.as_ref().expect("Claude is configured");
    for (who, claude) in [
        ("transform", &transform.engine.claude),
        ("/transform", &command_transform.engine.claude),
        ("digest", digest.writer.claude.as_ref().unwrap()),
        ("/decisions", decisions.writer.claude.as_ref().unwrap()),
    ] {
        assert!(Arc::ptr_eq(one, claude), "{who} has its own Claude client");
    }
    let poster = services.discord.as_ref().expect("Discord is configured");
    for (who, discord) in [
        ("transform", transform.discord.as_ref().unwrap()),
        ("notify", &handlers.notify.as_ref().unwrap().discord),
        ("discord command", &command.discord),
        ("digest", digest.discord.as_ref().unwrap()),
    ] {
        assert!(
            poster.shares_clients_with(discord),
            "{who} has its own Discord poster"
        );
    }
    assert!(
        Arc::ptr_eq(&transform.engine, &command_transform.engine),
        "/transform runs on the transform handler's engine (one cache, one prompt store)"
    );

    // Both handlers that write to Google Docs ask for a token: Google grants one.
    let thj = TenantId::new("thj");
    transform.google[&thj].access_token().await.unwrap();
    digest.google[&thj].access_token().await.unwrap();
    assert_eq!(
        google.grants(),
        1,
        "each handler fetched its own Google token"
    );
}
