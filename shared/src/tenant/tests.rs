//! Loading tests: config folders written to temp dirs, environments passed as maps.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::registry::check_unused_overrides;
use super::*;

fn defaults_json() -> Value {
    json!({
        "defaultTenant": "thj",
        "tier": "starter",
        "defaultPersonas": ["leadership", "product"],
        "requestsPerMinute": 30,
        "allowPlaintextSecrets": false,
        "models": {"transform": "sonnet", "validation": "haiku", "summarize": "haiku"},
        "prices": {
            "sonnet": {"input": 3.0, "output": 15.0, "cacheWrite5mMultiplier": 1.25, "cacheWrite1hMultiplier": 2.0, "cacheReadMultiplier": 0.1},
            "haiku": {"input": 1.0, "output": 5.0, "cacheWrite5mMultiplier": 1.25, "cacheWrite1hMultiplier": 2.0, "cacheReadMultiplier": 0.1}
        },
        "cache": {
            "l1": {"maxSize": 100, "ttlMs": 300000},
            "l2": {"ttlSeconds": {"transformation": 3600, "linearIssue": 300, "githubPR": 600, "folderIds": 3600, "userRoles": 3600}},
            "staleWhileRevalidate": {"maxStaleMs": 300000, "backgroundRefreshEnabled": true}
        },
        "rateLimits": {"claude": {"requests": 50, "perSeconds": 60}, "discord": {"requests": 50, "perSeconds": 1}},
        "queue": {"maxAttempts": 5, "backoffBaseMs": 1000, "backoffMaxMs": 600000, "claimIdleMs": 30000,
                  "maxDeliveries": 10, "idempotencyWindowSeconds": 86400, "statusTtlSeconds": 604800, "streamMaxLenHint": 100000},
        "digest": {"cron": "0 0 9 * * Mon", "timezone": "UTC"}
    })
}

fn quotas_json() -> Value {
    json!({"tiers": {
        "starter": {"usersMax": 5, "transformationsPerDay": 10, "transformationsPerMonth": 100, "storageGB": 5, "requestsPerMinute": 60, "pricePerMonthUsd": 49},
        "team": {"usersMax": 20, "transformationsPerDay": 50, "transformationsPerMonth": 500, "storageGB": 20, "requestsPerMinute": 120, "pricePerMonthUsd": 149},
        "enterprise": {"usersMax": null, "transformationsPerDay": null, "transformationsPerMonth": null, "storageGB": null, "requestsPerMinute": 1200, "pricePerMonthUsd": null}
    }})
}

fn thj_json() -> Value {
    json!({"tenantId": "thj", "name": "The Honey Jar", "config": {"discordServerId": "123456789"}})
}

/// A temp config folder with defaults, quotas and `thj`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let f = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(f.dir.path().join("tenants")).unwrap();
        f.write("defaults.json", &defaults_json());
        f.write("quotas.json", &quotas_json());
        f.write("tenants/thj.json", &thj_json());
        f
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn write(&self, rel: &str, v: &Value) {
        std::fs::write(self.path(rel), serde_json::to_string_pretty(v).unwrap()).unwrap();
    }
    fn tenant(&self, id: &str, v: Value) {
        self.write(&format!("tenants/{id}.json"), &v);
    }
    fn load(&self, env: &[(&str, &str)]) -> Result<TenantRegistry, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TenantRegistry::load_with_env(self.dir.path(), move |k| env.get(k).cloned())
    }
    fn err(&self, env: &[(&str, &str)]) -> String {
        self.load(env).unwrap_err().to_string()
    }
}

fn acme(extra: Value) -> Value {
    let mut v = json!({"tenantId": "acme", "name": "Acme", "config": {"discordServerId": "42"}});
    layers::deep_merge(&mut v, extra);
    v
}

#[test]
fn layers_apply_defaults_then_tier_then_file() {
    let f = Fixture::new();
    f.tenant(
        "acme",
        acme(json!({
            "tier": "team",
            "quotas": {"usersMax": 25},
            "rateLimits": {"claude": {"requests": 100}}
        })),
    );
    let reg = f.load(&[]).unwrap();
    let t = reg.get_tenant_context("acme").unwrap();
    assert_eq!(t.tier, "team");
    assert_eq!(t.quotas.users_max, Some(25), "file beats tier");
    assert_eq!(
        t.quotas.transformations_per_day,
        Some(50),
        "tier beats nothing"
    );
    assert_eq!(t.quotas.requests_per_minute, 120, "tier beats defaults");
    let claude = t.rate_limit("claude").unwrap();
    assert_eq!(
        (claude.requests, claude.per_seconds),
        (100, 60),
        "partial override merges"
    );
    assert_eq!(t.rate_limit("discord").unwrap().per_seconds, 1);
    let personas: Vec<&str> = t
        .config
        .default_personas
        .iter()
        .map(|p| p.as_str())
        .collect();
    assert_eq!(
        personas,
        ["leadership", "product"],
        "defaults fill absent fields"
    );

    let thj = reg.default_tenant();
    assert_eq!(thj.tenant_id.as_str(), "thj");
    assert_eq!(thj.tier, "starter", "default tier");
    assert_eq!(thj.quotas.transformations_per_month, Some(100));
    let ids: Vec<&str> = reg.tenants().map(|t| t.tenant_id.as_str()).collect();
    assert_eq!(ids, ["acme", "thj"]);
    assert_eq!(reg.defaults().cache.l2.ttl_seconds.github_pr, 600);
    assert_eq!(reg.tier("team").unwrap().price_per_month_usd, Some(149));
}

#[test]
fn environment_overrides_win() {
    let f = Fixture::new();
    let reg = f
        .load(&[
            ("ONOMANCER_TENANT_THJ_QUOTAS_TRANSFORMATIONS_PER_DAY", "5"),
            ("ONOMANCER_TENANT_THJ_CONFIG_DISCORD_SERVER_ID", "987"),
            ("ONOMANCER_TENANT_THJ_TIER", "enterprise"),
            ("ONOMANCER_TENANT_THJ_RATE_LIMITS_CLAUDE_REQUESTS", "7"),
            (
                "ONOMANCER_TENANT_THJ_CONFIG_DEFAULT_PERSONAS",
                r#"["devrel"]"#,
            ),
        ])
        .unwrap();
    let t = reg.default_tenant();
    assert_eq!(t.tier, "enterprise");
    assert_eq!(t.quotas.transformations_per_day, Some(5));
    assert_eq!(t.quotas.users_max, None, "enterprise tier: unlimited");
    assert_eq!(t.config.discord_server_id, "987");
    assert_eq!(t.rate_limit("claude").unwrap().requests, 7);
    assert_eq!(t.config.default_personas[0].as_str(), "devrel");
    assert!(t
        .overrides
        .contains(&"ONOMANCER_TENANT_THJ_TIER".to_string()));
    assert!(reg.by_discord_guild("987").is_some());
}

#[test]
fn type_errors_name_file_and_field() {
    let f = Fixture::new();
    f.tenant(
        "acme",
        acme(json!({"quotas": {"transformationsPerDay": "ten"}})),
    );
    let expected = format!(
        "{}: quotas.transformationsPerDay: invalid type: string \"ten\", expected u32",
        f.path("tenants/acme.json").display()
    );
    assert_eq!(f.err(&[]), expected);
}

#[test]
fn env_errors_name_the_variable() {
    let f = Fixture::new();
    let e = f.err(&[("ONOMANCER_TENANT_THJ_QUOTAS_USERS_MAX", "lots")]);
    assert!(
        e.contains("thj.json: quotas.usersMax: invalid type: string \"lots\""),
        "{e}"
    );
    assert!(e.contains("ONOMANCER_TENANT_THJ_QUOTAS_USERS_MAX"), "{e}");
}

#[test]
fn unknown_fields_are_refused() {
    let f = Fixture::new();
    f.tenant("acme", acme(json!({"config": {"discordServerID": "1"}})));
    let e = f.err(&[]);
    assert!(e.contains("acme.json: config"), "{e}");
    assert!(e.contains("unknown field `discordServerID`"), "{e}");
}

#[test]
fn unknown_tier_is_refused() {
    let f = Fixture::new();
    f.tenant("acme", acme(json!({"tier": "gold"})));
    let e = f.err(&[]);
    assert!(e.contains("acme.json: tier: unknown tier \"gold\""), "{e}");
    assert!(e.contains("enterprise, starter, team"), "{e}");
}

#[test]
fn tenant_id_must_match_file_name() {
    let f = Fixture::new();
    f.tenant("acme", acme(json!({"tenantId": "acme-corp"})));
    let e = f.err(&[]);
    assert!(
        e.contains("acme.json: tenantId: \"acme-corp\" does not match"),
        "{e}"
    );
}

#[test]
fn invalid_ids_and_personas_are_refused() {
    let f = Fixture::new();
    f.tenant(
        "acme",
        acme(json!({"config": {"defaultPersonas": ["product", "Dev Rel"]}})),
    );
    let e = f.err(&[]);
    assert!(
        e.contains("acme.json: config.defaultPersonas[1]: invalid persona"),
        "{e}"
    );

    let f = Fixture::new();
    f.tenant("Acme Corp", acme(json!({})));
    let e = f.err(&[]);
    assert!(
        e.contains("Acme Corp.json: the file name must be a tenant id"),
        "{e}"
    );
}

#[test]
fn duplicate_discord_servers_are_refused() {
    let f = Fixture::new();
    f.tenant(
        "acme",
        acme(json!({"config": {"discordServerId": "123456789"}})),
    );
    let e = f.err(&[]);
    assert!(
        e.contains("thj.json: config.discordServerId: server 123456789 is already used by"),
        "{e}"
    );
    assert!(e.contains("acme.json"), "{e}");
}

#[test]
fn credentials_from_env_missing_env_and_plaintext() {
    let f = Fixture::new();
    f.tenant(
        "acme",
        acme(json!({"credentials": {
            "githubWebhookSecret": {"env": "ACME_GH"},
            "linearWebhookSecret": {"env": "ACME_LINEAR", "optional": true}
        }})),
    );
    let e = f.err(&[]);
    assert!(
        e.contains(
            "acme.json: credentials.githubWebhookSecret: environment variable ACME_GH is not set"
        ),
        "{e}"
    );
    let reg = f.load(&[("ACME_GH", "gh-secret")]).unwrap();
    let t = reg.get_tenant_context("acme").unwrap();
    let gh = t.credentials.github_webhook_secret.as_ref().unwrap();
    assert_eq!(gh.expose_secret(), "gh-secret");
    assert!(
        t.credentials.linear_webhook_secret.is_none(),
        "optional and unset"
    );
    assert!(
        !format!("{t:?}").contains("gh-secret"),
        "Debug never prints secrets"
    );

    f.tenant(
        "acme",
        acme(json!({"credentials": {"githubWebhookSecret": "plain-secret"}})),
    );
    let e = f.err(&[]);
    assert!(
        e.contains("credentials.githubWebhookSecret: plain-text secrets are not allowed"),
        "{e}"
    );
    assert!(!e.contains("plain-secret"), "{e}");
    let mut d = defaults_json();
    d["allowPlaintextSecrets"] = json!(true);
    f.write("defaults.json", &d);
    assert!(f.load(&[]).is_ok());
}

#[test]
fn encrypted_credentials_decrypt_with_the_master_key() {
    let f = Fixture::new();
    let master = SecretString::from("correct horse");
    let sealed = encrypt_secret(&master, "whsec_123");
    f.tenant(
        "acme",
        acme(json!({"credentials": {"linearWebhookSecret": {"encrypted": sealed}}})),
    );
    let reg = f
        .load(&[("ONOMANCER_MASTER_KEY", "correct horse")])
        .unwrap();
    let t = reg.get_tenant_context("acme").unwrap();
    assert_eq!(
        t.credentials
            .linear_webhook_secret
            .as_ref()
            .unwrap()
            .expose_secret(),
        "whsec_123"
    );
    let e = f.err(&[("ONOMANCER_MASTER_KEY", "wrong")]);
    assert!(
        e.contains("acme.json: credentials.linearWebhookSecret: cannot decrypt: wrong ONOMANCER_MASTER_KEY"),
        "{e}"
    );
    assert!(!e.contains("whsec_123"));
    let e = f.err(&[]);
    assert!(
        e.contains(
            "credentials.linearWebhookSecret: encrypted, but ONOMANCER_MASTER_KEY is not set"
        ),
        "{e}"
    );
}

#[test]
fn env_override_of_a_credential_reads_that_variable() {
    let f = Fixture::new();
    let reg = f
        .load(&[(
            "ONOMANCER_TENANT_THJ_CREDENTIALS_GITHUB_WEBHOOK_SECRET",
            "from-env",
        )])
        .unwrap();
    let t = reg.default_tenant();
    assert_eq!(
        t.credentials
            .github_webhook_secret
            .as_ref()
            .unwrap()
            .expose_secret(),
        "from-env"
    );
}

#[test]
fn unknown_tenant_is_typed() {
    let reg = Fixture::new().load(&[]).unwrap();
    assert_eq!(
        reg.get_tenant_context("nope").unwrap_err(),
        TenantError::Unknown("nope".into())
    );
    assert!(reg.get_tenant_context("thj").is_ok());
}

#[test]
fn lookup_by_discord_guild() {
    let f = Fixture::new();
    f.tenant("acme", acme(json!({})));
    let reg = f.load(&[]).unwrap();
    assert_eq!(
        reg.by_discord_guild("42").unwrap().tenant_id.as_str(),
        "acme"
    );
    assert_eq!(
        reg.by_discord_guild("123456789")
            .unwrap()
            .tenant_id
            .as_str(),
        "thj"
    );
    assert!(reg.by_discord_guild("7").is_none());
}

#[test]
fn lookup_by_api_key_hash() {
    let f = Fixture::new();
    f.tenant(
        "acme",
        acme(json!({"credentials": {"apiKeys": [hash_api_key("ono_acme_1"), hash_api_key("ono_acme_2")]}})),
    );
    let reg = f.load(&[]).unwrap();
    assert_eq!(
        reg.by_api_key("ono_acme_2").unwrap().tenant_id.as_str(),
        "acme"
    );
    assert!(reg.by_api_key("ono_acme_3").is_none());
    assert!(reg.by_api_key("").is_none());

    f.tenant(
        "acme",
        acme(json!({"credentials": {"apiKeys": ["ono_acme_1"]}})),
    );
    let e = f.err(&[]);
    assert!(
        e.contains("credentials.apiKeys[0]: is not a SHA-256 hex digest"),
        "{e}"
    );
    assert!(!e.contains("ono_acme_1"), "{e}");

    let mut thj = thj_json();
    thj["credentials"] = json!({"apiKeys": [hash_api_key("shared")]});
    f.write("tenants/thj.json", &thj);
    f.tenant(
        "acme",
        acme(json!({"credentials": {"apiKeys": [hash_api_key("shared")]}})),
    );
    assert!(f
        .err(&[])
        .contains("credentials.apiKeys: a key hash is already used by"));
}

#[test]
fn defaults_and_quotas_errors_name_their_file() {
    let f = Fixture::new();
    let mut d = defaults_json();
    d["models"]["transform"] = json!("opus");
    f.write("defaults.json", &d);
    let e = f.err(&[]);
    assert!(
        e.contains("defaults.json: models.transform: model \"opus\" has no entry in prices"),
        "{e}"
    );

    d = defaults_json();
    d["digest"]["cron"] = json!("every monday");
    f.write("defaults.json", &d);
    assert!(f.err(&[]).contains("defaults.json: digest.cron:"));

    d = defaults_json();
    d["cache"]["l1"]["ttlMS"] = json!(1);
    f.write("defaults.json", &d);
    let e = f.err(&[]);
    assert!(
        e.contains("defaults.json: cache.l1") && e.contains("unknown field `ttlMS`"),
        "{e}"
    );

    f.write("defaults.json", &defaults_json());
    let mut q = quotas_json();
    q["tiers"]["team"]
        .as_object_mut()
        .unwrap()
        .remove("usersMax");
    f.write("quotas.json", &q);
    let e = f.err(&[]);
    assert!(
        e.contains("quotas.json: tiers.team: missing field `usersMax`"),
        "{e}"
    );

    f.write("quotas.json", &quotas_json());
    std::fs::write(f.path("tenants/thj.json"), "{ \"tenantId\": ").unwrap();
    let e = f.err(&[]);
    assert!(e.contains("thj.json: not valid JSON"), "{e}");
}

#[test]
fn the_default_tenant_must_exist() {
    let f = Fixture::new();
    std::fs::remove_file(f.path("tenants/thj.json")).unwrap();
    f.tenant("acme", acme(json!({})));
    let e = f.err(&[]);
    assert!(
        e.contains("defaults.json: defaultTenant: no tenant file for \"thj\""),
        "{e}"
    );
}

#[test]
fn unused_override_variables_are_refused() {
    let consulted: BTreeSet<String> = ["ONOMANCER_TENANT_THJ_NAME".to_string()].into();
    let names = |v: &[&str]| {
        v.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    };
    assert!(
        check_unused_overrides(&consulted, names(&["ONOMANCER_TENANT_THJ_NAME", "PATH"])).is_ok()
    );
    let e = check_unused_overrides(&consulted, names(&["ONOMANCER_TENANT_THJ_QUOTAS_USER_MAX"]))
        .unwrap_err();
    assert!(e
        .to_string()
        .contains("ONOMANCER_TENANT_THJ_QUOTAS_USER_MAX: names no tenant field"));
}

#[test]
fn github_routing_and_globs() {
    let f = Fixture::new();
    f.tenant(
        "acme",
        acme(json!({"config": {"github": {
            "documentPaths": ["docs/prd/**", "docs/specs/*.md"],
            "channels": {"acme/app": "555"}
        }}})),
    );
    let t = f.load(&[]).unwrap().get_tenant_context("acme").unwrap();
    assert!(t.config.github.is_document("docs/prd/2026/q1.md"));
    assert!(t.config.github.is_document("docs/specs/api.md"));
    assert!(!t.config.github.is_document("src/main.rs"));
    assert_eq!(t.config.github.channel_for("acme/app"), Some("555"));

    f.tenant(
        "acme",
        acme(json!({"config": {"github": {"documentPaths": ["docs/[prd"]}}})),
    );
    assert!(f.err(&[]).contains("config.github.documentPaths[0]:"));
    f.tenant(
        "acme",
        acme(json!({"config": {"github": {"channels": {"acme/app": "general"}}}})),
    );
    assert!(f
        .err(&[])
        .contains("config.github.channels.acme/app: \"general\" is not a Discord id"));
}

fn shipped_config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

#[test]
fn the_shipped_config_loads() {
    let reg = TenantRegistry::load_with_env(&shipped_config_dir(), |_| None).unwrap();
    let thj = reg.default_tenant();
    assert_eq!(thj.tenant_id.as_str(), "thj");
    assert_eq!(thj.name, "The Honey Jar");
    assert_eq!(thj.tier, "business");
    assert_eq!(thj.config.discord_server_id, "123456789");
    assert_eq!(thj.config.default_personas.len(), 4);
    assert_eq!(thj.quotas.transformations_per_day, Some(100));
    assert_eq!(thj.quotas.transformations_per_month, Some(2000));
    assert_eq!(thj.quotas.storage_gb, Some(50));
    assert_eq!(thj.quotas.users_max, Some(50));
    assert!(thj.config.github.is_document("docs/prd/onboarding.md"));
    let d = reg.defaults();
    assert_eq!(d.models.transform, "claude-sonnet-4-5");
    assert_eq!(d.prices["claude-haiku-4-5"].output, 5.0);
    assert_eq!(d.cache.l1.ttl_ms, 300_000);
    assert_eq!(d.rate_limits["googleDrive"].requests, 12_000);
    assert_eq!(d.queue.max_attempts, 5);
    assert!(d.digest.schedule().is_ok());
    assert_eq!(reg.tier("enterprise").unwrap().users_max, None);
    assert_eq!(reg.tier("starter").unwrap().price_per_month_usd, Some(49));

    let with_secrets = TenantRegistry::load_with_env(&shipped_config_dir(), |k| match k {
        "THJ_GOOGLE_SERVICE_ACCOUNT" => {
            Some(r#"{"client_email":"bot@thj.iam","private_key":"k"}"#.to_string())
        }
        k if k.starts_with("THJ_") => Some("x".to_string()),
        _ => None,
    })
    .unwrap();
    assert!(with_secrets
        .default_tenant()
        .credentials
        .google_service_account
        .is_some());
    assert!(with_secrets
        .default_tenant()
        .credentials
        .github_webhook_secret
        .is_some());
}
