//! `spawn_app()`: a gateway with a temp config (tenant `acme` with known secrets, tenant
//! `other`), an isolated Redis namespace, a Discord key pair, and helpers to sign requests the
//! way GitHub, Linear and Discord do and to read the jobs back from Redis.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::{Signer, SigningKey};
use onomancer_gateway::signature::hmac_sha256_hex;
use onomancer_gateway::{AppState, Application, GatewayConfig, HttpSettings};
use onomancer_shared::queue::QueueConfig;
use onomancer_shared::tenant::{hash_api_key, TenantRegistry};
use onomancer_shared::{Envelope, KeySpace, Lane, RedisConn, TenantId};
use onomancer_testkit::TestRedis;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub const GITHUB_SECRET: &str = "github test secret";
pub const LINEAR_SECRET: &str = "linear test secret";
pub const API_KEY: &str = "acme-api-key-0123456789";
pub const OTHER_API_KEY: &str = "other-api-key-0123456789";
pub const GUILD: &str = "111111111111111111";
pub const OTHER_GUILD: &str = "333333333333333333";
pub const TRANSFORM_ROLE: &str = "222222222222222222";

/// Knobs for the test tenant.
#[derive(Clone)]
pub struct Options {
    pub per_day: Option<u32>,
    pub per_month: Option<u32>,
    pub requests_per_minute: u32,
    /// Redis the app talks to (default: the test Redis).
    pub redis_url: Option<String>,
    /// Open a SQLite usage store for `/v1/usage`.
    pub usage_db: bool,
    /// The server's timeouts and connection cap.
    pub http: HttpSettings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            per_day: Some(100),
            per_month: Some(2000),
            requests_per_minute: 100_000,
            redis_url: None,
            usage_db: false,
            http: HttpSettings::default(),
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub state: AppState,
    /// Deletes the namespace's keys on drop.
    _redis: TestRedis,
    /// This crate's view of the namespace (testkit links its own copy of `shared`).
    pub keys: KeySpace,
    pub conn: RedisConn,
    pub client: reqwest::Client,
    pub discord_key: SigningKey,
    shutdown: CancellationToken,
    _config: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn json_value(v: Option<u32>) -> Value {
    v.map_or(Value::Null, Value::from)
}

fn write_config(dir: &Path, o: &Options) {
    let repo_config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    std::fs::create_dir_all(dir.join("tenants")).unwrap();
    for f in ["defaults.json", "quotas.json"] {
        std::fs::copy(repo_config.join(f), dir.join(f)).unwrap();
    }
    let quotas = json!({
        "transformationsPerDay": json_value(o.per_day),
        "transformationsPerMonth": json_value(o.per_month),
        "storageGB": 50,
        "usersMax": 50,
        "requestsPerMinute": o.requests_per_minute,
    });
    let acme = json!({
        "tenantId": "acme",
        "name": "Acme",
        "tier": "business",
        "config": {
            "discordServerId": GUILD,
            "defaultPersonas": ["leadership", "product", "marketing", "devrel"],
            "github": {"documentPaths": ["docs/prd/**"], "channels": {}},
            "discord": {"commandRoles": {"transform": [TRANSFORM_ROLE]}},
            "products": {"rocket": {"displayName": "Rocket"}}
        },
        "quotas": quotas,
        "credentials": {
            "githubWebhookSecret": {"env": "ACME_GITHUB_SECRET"},
            "linearWebhookSecret": {"env": "ACME_LINEAR_SECRET"},
            "apiKeys": [hash_api_key(API_KEY)]
        }
    });
    let other = json!({
        "tenantId": "other",
        "name": "Other",
        "tier": "business",
        "config": {
            "discordServerId": OTHER_GUILD,
            "defaultPersonas": ["product"]
        },
        "quotas": quotas,
        "credentials": {"apiKeys": [hash_api_key(OTHER_API_KEY)]}
    });
    let thj = json!({
        "tenantId": "thj",
        "name": "The Honey Jar",
        "tier": "business",
        "config": {"discordServerId": "123456789", "defaultPersonas": ["product"]},
        "quotas": quotas
    });
    for (name, v) in [("acme", acme), ("other", other), ("thj", thj)] {
        std::fs::write(
            dir.join("tenants").join(format!("{name}.json")),
            serde_json::to_vec_pretty(&v).unwrap(),
        )
        .unwrap();
    }
}

pub fn load_tenants(dir: &Path) -> TenantRegistry {
    let env: HashMap<&str, &str> = HashMap::from([
        ("ACME_GITHUB_SECRET", GITHUB_SECRET),
        ("ACME_LINEAR_SECRET", LINEAR_SECRET),
    ]);
    TenantRegistry::load_with_env(dir, |k| env.get(k).map(|v| v.to_string()))
        .expect("test config loads")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(o: Options) -> TestApp {
    let redis = TestRedis::new().await;
    let keys = KeySpace::isolated(&redis.name);
    let config = tempfile::tempdir().unwrap();
    write_config(config.path(), &o);
    let tenants = Arc::new(load_tenants(config.path()));
    let discord_key = SigningKey::generate(&mut rand_core::OsRng);
    let usage = if o.usage_db {
        let url = format!("sqlite://{}", config.path().join("usage.db").display());
        let db = onomancer_shared::db::Database::open(&url).await.unwrap();
        Some(onomancer_shared::usage::UsageStore::new(db))
    } else {
        None
    };
    let redis_url = o
        .redis_url
        .clone()
        .unwrap_or_else(onomancer_testkit::redis_ns::redis_url);
    let app = Application::build(GatewayConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        redis_url,
        keys: keys.clone(),
        tenants,
        queue: QueueConfig::default(),
        discord_public_key: Some(hex::encode(discord_key.verifying_key().to_bytes())),
        usage,
        http: o.http,
    })
    .await
    .expect("gateway builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(app.run_until_stopped(async move { stop.cancelled().await }));
    let conn = RedisConn::connect(&onomancer_testkit::redis_ns::redis_url())
        .await
        .unwrap();
    TestApp {
        address,
        state,
        _redis: redis,
        keys,
        conn,
        client: reqwest::Client::new(),
        discord_key,
        shutdown,
        _config: config,
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/github")
            .join(name),
    )
    .unwrap()
}

impl TestApp {
    /// Sends `body` as GitHub would: `X-Hub-Signature-256` over the raw bytes.
    pub async fn github(
        &self,
        tenant: &str,
        event: &str,
        delivery: &str,
        body: &[u8],
    ) -> reqwest::Response {
        let sig = format!("sha256={}", hmac_sha256_hex(GITHUB_SECRET, body));
        self.github_signed(tenant, event, delivery, body, Some(&sig))
            .await
    }

    pub async fn github_signed(
        &self,
        tenant: &str,
        event: &str,
        delivery: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/webhooks/github/{tenant}", self.address))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .body(body.to_vec());
        if let Some(s) = signature {
            req = req.header("x-hub-signature-256", s);
        }
        req.send().await.unwrap()
    }

    /// Sends a Linear delivery signed with the test secret.
    pub async fn linear(&self, delivery: &str, body: &Value) -> reqwest::Response {
        let bytes = serde_json::to_vec(body).unwrap();
        let sig = hmac_sha256_hex(LINEAR_SECRET, &bytes);
        self.client
            .post(format!("{}/webhooks/linear/acme", self.address))
            .header("content-type", "application/json")
            .header("linear-signature", sig)
            .header("linear-delivery", delivery)
            .header("linear-event", body["type"].as_str().unwrap_or(""))
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    /// Sends an interaction signed with the test application key.
    pub async fn discord(&self, body: &Value) -> reqwest::Response {
        let bytes = serde_json::to_vec(body).unwrap();
        let ts = chrono::Utc::now().timestamp().to_string();
        let sig = self.discord_key.sign(&[ts.as_bytes(), &bytes].concat());
        self.client
            .post(format!("{}/discord/interactions", self.address))
            .header("content-type", "application/json")
            .header("x-signature-ed25519", hex::encode(sig.to_bytes()))
            .header("x-signature-timestamp", ts)
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    /// The envelopes in a tenant's lane stream, oldest first.
    pub async fn jobs(&self, tenant: &str, lane: Lane) -> Vec<Envelope> {
        let stream = self.keys.stream(&TenantId::new(tenant), lane);
        let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&stream)
            .arg("-")
            .arg("+")
            .query_async(&mut self.conn.clone())
            .await
            .unwrap();
        entries
            .ids
            .iter()
            .map(|e| {
                let bytes: Vec<u8> = e.get("e").expect("entry has an envelope");
                Envelope::decode(&bytes).unwrap()
            })
            .collect()
    }

    /// Every job of `tenant` in every lane.
    pub async fn all_jobs(&self, tenant: &str) -> Vec<Envelope> {
        let mut out = Vec::new();
        for lane in Lane::ALL {
            out.extend(self.jobs(tenant, lane).await);
        }
        out
    }

    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// A Linear webhook body with `webhookTimestamp` = now + `skew_ms`.
pub fn linear_issue(action: &str, skew_ms: i64) -> Value {
    json!({
        "action": action,
        "type": "Issue",
        "createdAt": "2026-11-28T04:00:00.000Z",
        "organizationId": "org-1",
        "webhookId": "hook-1",
        "webhookTimestamp": chrono::Utc::now().timestamp_millis() + skew_ms,
        "url": "https://linear.app/acme/issue/ENG-42/ship-it",
        "actor": {"id": "u1", "name": "Ada", "type": "user"},
        "updatedFrom": {"stateId": "s0", "updatedAt": "2026-11-28T03:00:00.000Z"},
        "data": {
            "id": "issue-1",
            "identifier": "ENG-42",
            "title": "Ship it",
            "team": {"id": "t1", "key": "ENG", "name": "Engineering"},
            "state": {"id": "s1", "name": "In Progress", "type": "started"},
            "priority": 2,
            "labels": []
        }
    })
}

/// A slash-command interaction in `guild` by a member with `roles`.
pub fn command(name: &str, options: Value, guild: &str, roles: &[&str]) -> Value {
    json!({
        "type": 2,
        "id": format!("{}", 900_000_000_000_000_000u64 + fastrand_u32() as u64),
        "application_id": "555555555555555555",
        "token": format!("tok-{}", uuid_simple()),
        "guild_id": guild,
        "channel_id": "444444444444444444",
        "member": {"user": {"id": "777777777777777777", "username": "ada"}, "roles": roles},
        "data": {"id": "1", "name": name, "type": 1, "options": options},
        "version": 1
    })
}

pub fn uuid_simple() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn fastrand_u32() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

/// Payload of an envelope as JSON (msgpack -> serde_json::Value).
pub fn payload(e: &Envelope) -> Value {
    rmp_serde::from_slice(&e.payload).unwrap()
}
