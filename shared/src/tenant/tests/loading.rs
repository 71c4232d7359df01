//! Layering, environment overrides, credentials and lookups on good configs.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::*;

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
        (claude.requests, claude.per_seconds()),
        (100, 60),
        "partial override merges"
    );
    assert_eq!(
        t.rate_limit("discord").unwrap().window(),
        std::time::Duration::from_secs(1)
    );
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
    let e = f.err(&[("ONOMANCER_ENV", "production")]);
    assert!(
        e.ends_with(
            "defaults.json: allowPlaintextSecrets: must be false when ONOMANCER_ENV=production"
        ),
        "{e}"
    );
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
    assert_eq!(d.prices.get("claude-haiku-4-5").unwrap().output, 5.0);
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

#[test]
fn lists_and_maps_are_overridden_as_json() {
    let hash = hash_api_key("ono_thj_ci");
    let keys = format!("[\"{hash}\"]");
    let reg = Fixture::new()
        .load(&[
            ("ONOMANCER_TENANT_THJ_CREDENTIALS_API_KEYS", keys.as_str()),
            (
                "ONOMANCER_TENANT_THJ_CONFIG_GITHUB_CHANNELS",
                r#"{"thj/app": "777"}"#,
            ),
            (
                "ONOMANCER_TENANT_THJ_RATE_LIMITS",
                r#"{"github": {"requests": 5000, "perSeconds": 3600}}"#,
            ),
            (
                "ONOMANCER_TENANT_THJ_CONFIG_DISCORD_COMMAND_ROLES",
                r#"{"transform": ["9"]}"#,
            ),
        ])
        .unwrap();
    assert_eq!(
        reg.by_api_key("ono_thj_ci").unwrap().tenant_id.as_str(),
        "thj"
    );
    let t = reg.default_tenant();
    assert_eq!(t.config.github.channel_for("thj/app"), Some("777"));
    assert!(!t.config.discord.command_allowed("transform", &["1".into()]));
    assert!(t.config.discord.command_allowed("transform", &["9".into()]));
    assert_eq!(t.rate_limit("github").unwrap().requests, 5000, "added");
    assert_eq!(t.rate_limit("claude").unwrap().requests, 50, "kept");
}
