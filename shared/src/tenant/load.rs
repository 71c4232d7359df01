//! Reading the config folder: `defaults.json`, `quotas.json`, then each `tenants/<id>.json`
//! layered as defaults -> tier -> tenant file -> `ONOMANCER_TENANT_<ID>_*` environment, merged as
//! JSON and deserialized with field paths in every error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::defaults::{Defaults, QuotasFile, TierSpec};
use super::duplicate_keys::find_duplicate_key;
use super::error::ConfigError;
use super::layers::{apply_env_overrides, deep_merge, Applied};
use super::model::{build_config, RawTenant};
use super::secrets::{decrypt_secret, ApiKeyHash, SecretRef, TenantCredentials};
use super::TenantContext;
use crate::ids::{Persona, TenantId};
use crate::queue::RateLimit;

/// Environment lookup used while loading (the process environment, or a map in tests).
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads and parses one JSON file; a key repeated in one object (at any depth) is refused.
pub(crate) fn read_json(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    let value = serde_json::from_str(&text).map_err(|source| ConfigError::Syntax {
        path: path.to_owned(),
        source,
    })?;
    if let Some(d) = find_duplicate_key(&text) {
        return Err(ConfigError::field(
            path,
            d.field,
            format!(
                "duplicate key (again at line {}, column {}): JSON keeps only the last one \
                 without a word, so remove one",
                d.line, d.column
            ),
        ));
    }
    Ok(value)
}

/// Deserializes `value`, naming the failing field path; `applied` names the variable that set it.
pub(crate) fn typed<T: DeserializeOwned>(
    path: &Path,
    value: Value,
    applied: &[Applied],
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut message = e.inner().to_string();
        let mut field = match e.path().to_string() {
            p if p == "." => String::new(),
            p => p,
        };
        // "missing field `x`" is reported at the parent: name the missing field itself.
        if let Some(missing) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            field = if field.is_empty() {
                missing.to_owned()
            } else {
                format!("{field}.{missing}")
            };
            message = "missing field".to_owned();
        }
        if field.is_empty() {
            field = "(top level)".to_owned();
        }
        if let Some(a) = applied.iter().find(|a| {
            field == a.field
                || field.starts_with(&format!("{}.", a.field))
                || field.starts_with(&format!("{}[", a.field))
        }) {
            message.push_str(&format!(" (set by environment variable {})", a.var));
        }
        ConfigError::field(path, field, message)
    })
}

fn check_positive(path: &Path, field: &str, v: u32) -> Result<(), ConfigError> {
    if v == 0 {
        return Err(ConfigError::field(path, field, "must be greater than 0"));
    }
    Ok(())
}

fn check_rate_limits(
    path: &Path,
    prefix: &str,
    limits: &BTreeMap<String, RateLimit>,
) -> Result<(), ConfigError> {
    for (service, l) in limits {
        check_positive(path, &format!("{prefix}.{service}.requests"), l.requests)?;
        if l.window().is_zero() {
            return Err(ConfigError::field(
                path,
                format!("{prefix}.{service}.perSeconds"),
                "must be greater than 0",
            ));
        }
    }
    Ok(())
}

/// Loads and validates `defaults.json`.
pub(crate) fn load_defaults(dir: &Path) -> Result<(PathBuf, Defaults), ConfigError> {
    let path = dir.join("defaults.json");
    let d: Defaults = typed(&path, read_json(&path)?, &[])?;
    TenantId::parse(d.default_tenant.as_str())
        .map_err(|e| ConfigError::field(&path, "defaultTenant", e.to_string()))?;
    for (i, p) in d.default_personas.iter().enumerate() {
        Persona::parse(p.as_str()).map_err(|e| {
            ConfigError::field(&path, format!("defaultPersonas[{i}]"), e.to_string())
        })?;
    }
    check_positive(&path, "requestsPerMinute", d.requests_per_minute)?;
    for (op, model) in [
        ("transform", &d.models.transform),
        ("validation", &d.models.validation),
        ("summarize", &d.models.summarize),
    ] {
        if !d.prices.contains(model) {
            return Err(ConfigError::field(
                &path,
                format!("models.{op}"),
                format!("model {model:?} has no entry in prices"),
            ));
        }
    }
    d.prices.validate().map_err(|(field, message)| {
        ConfigError::field(&path, format!("prices.{field}"), message)
    })?;
    if d.cache.single_flight.lease_ms == 0 {
        return Err(ConfigError::field(
            &path,
            "cache.singleFlight.leaseMs",
            "must be greater than 0",
        ));
    }
    check_rate_limits(&path, "rateLimits", &d.rate_limits)?;
    cron::Schedule::from_str(&d.digest.cron).map_err(|e| {
        ConfigError::field(
            &path,
            "digest.cron",
            format!(
                "{:?} is not a cron expression with seconds like \"0 0 9 * * Mon\": {e}",
                d.digest.cron
            ),
        )
    })?;
    if d.digest.timezone != "UTC" {
        return Err(ConfigError::field(
            &path,
            "digest.timezone",
            "only \"UTC\" is supported",
        ));
    }
    Ok((path, d))
}

/// Loads and validates `quotas.json`.
pub(crate) fn load_tiers(dir: &Path) -> Result<BTreeMap<String, TierSpec>, ConfigError> {
    let path = dir.join("quotas.json");
    let q: QuotasFile = typed(&path, read_json(&path)?, &[])?;
    if q.tiers.is_empty() {
        return Err(ConfigError::field(
            &path,
            "tiers",
            "must define at least one tier",
        ));
    }
    for (name, t) in &q.tiers {
        check_positive(
            &path,
            &format!("tiers.{name}.requestsPerMinute"),
            t.requests_per_minute,
        )?;
    }
    Ok(q.tiers)
}

/// The tenant files in `dir/tenants`, sorted by name.
pub(crate) fn tenant_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let tdir = dir.join("tenants");
    let io = |source| ConfigError::Io {
        path: tdir.clone(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&tdir).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.is_file() && p.extension().is_some_and(|e| e == "json") {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// The lowest layer of every tenant, from `defaults.json`.
fn defaults_layer(d: &Defaults) -> Value {
    let limits: serde_json::Map<String, Value> = d
        .rate_limits
        .iter()
        .map(|(k, l)| {
            (
                k.clone(),
                json!({"requests": l.requests, "perSeconds": l.per_seconds()}),
            )
        })
        .collect();
    json!({
        "tier": d.tier,
        "config": { "defaultPersonas": d.default_personas },
        "quotas": { "requestsPerMinute": d.requests_per_minute },
        "rateLimits": limits,
    })
}

/// The tier layer, from `quotas.json`.
fn tier_layer(t: &TierSpec) -> Value {
    json!({ "quotas": {
        "transformationsPerDay": t.transformations_per_day,
        "transformationsPerMonth": t.transformations_per_month,
        "storageGB": t.storage_gb,
        "usersMax": t.users_max,
        "requestsPerMinute": t.requests_per_minute,
    }})
}

/// Everything one tenant file needs from the rest of the config.
pub(crate) struct TenantInputs<'a> {
    pub defaults: &'a Defaults,
    pub tiers: &'a BTreeMap<String, TierSpec>,
    pub lookup: EnvLookup<'a>,
    pub master_key: Option<&'a SecretString>,
}

/// Loads one tenant file through all layers.
pub(crate) fn load_tenant(
    path: &Path,
    inputs: &TenantInputs<'_>,
    consulted: &mut BTreeSet<String>,
) -> Result<TenantContext, ConfigError> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let id = TenantId::parse(stem).map_err(|source| ConfigError::InvalidTenantId {
        path: path.to_owned(),
        source,
    })?;
    let file = read_json(path)?;
    if !file.is_object() {
        return Err(ConfigError::field(
            path,
            "(top level)",
            "expected a JSON object",
        ));
    }
    let base = defaults_layer(inputs.defaults);

    // Which tier: decided by the layers above the tier layer (file, environment) or the default.
    let mut probe = base.clone();
    deep_merge(&mut probe, file.clone());
    let applied = apply_env_overrides(id.as_str(), &mut probe, inputs.lookup, consulted);
    let tier = match &probe["tier"] {
        Value::String(t) => t.clone(),
        other => {
            let by = applied
                .iter()
                .find(|a| a.field == "tier")
                .map(|a| format!(" (set by environment variable {})", a.var))
                .unwrap_or_default();
            return Err(ConfigError::field(
                path,
                "tier",
                format!("expected a tier name (a string), found {other}{by}"),
            ));
        }
    };
    let spec = inputs
        .tiers
        .get(&tier)
        .ok_or_else(|| ConfigError::UnknownTier {
            path: path.to_owned(),
            tier: tier.clone(),
            known: inputs.tiers.keys().cloned().collect(),
        })?;

    let mut merged = base;
    deep_merge(&mut merged, tier_layer(spec));
    deep_merge(&mut merged, file);
    let applied = apply_env_overrides(id.as_str(), &mut merged, inputs.lookup, consulted);
    let raw: RawTenant = typed(path, merged, &applied)?;

    if raw.tenant_id != id.as_str() {
        return Err(ConfigError::TenantIdMismatch {
            path: path.to_owned(),
            tenant_id: raw.tenant_id,
            expected: id.to_string(),
        });
    }
    if raw.name.trim().is_empty() {
        return Err(ConfigError::field(path, "name", "must not be empty"));
    }
    check_positive(
        path,
        "quotas.requestsPerMinute",
        raw.quotas.requests_per_minute,
    )?;
    check_rate_limits(path, "rateLimits", &raw.rate_limits)?;
    let config = build_config(raw.config).map_err(|(f, m)| ConfigError::field(path, f, m))?;
    let credentials = resolve_credentials(path, raw.credentials, inputs)?;
    Ok(TenantContext {
        tenant_id: id,
        name: raw.name,
        tier: raw.tier,
        config,
        quotas: raw.quotas,
        credentials,
        rate_limits: raw.rate_limits,
        source: path.to_owned(),
        overrides: applied.into_iter().map(|a| a.var).collect(),
    })
}

fn resolve_credentials(
    path: &Path,
    raw: super::model::RawCredentials,
    inputs: &TenantInputs<'_>,
) -> Result<TenantCredentials, ConfigError> {
    let resolve =
        |field: &str, r: Option<SecretRef>| -> Result<Option<SecretString>, ConfigError> {
            let field = format!("credentials.{field}");
            match r {
                None => Ok(None),
                Some(SecretRef::Env { var, optional }) => {
                    match (inputs.lookup)(&var).filter(|v| !v.is_empty()) {
                        Some(v) => Ok(Some(SecretString::from(v))),
                        None if optional => Ok(None),
                        None => Err(ConfigError::MissingEnv {
                            path: path.to_owned(),
                            field,
                            var,
                        }),
                    }
                }
                Some(SecretRef::Encrypted(value)) => {
                    let key = inputs
                        .master_key
                        .ok_or_else(|| ConfigError::MissingMasterKey {
                            path: path.to_owned(),
                            field: field.clone(),
                        })?;
                    decrypt_secret(key, &value).map(Some).map_err(|reason| {
                        ConfigError::Undecryptable {
                            path: path.to_owned(),
                            field,
                            reason,
                        }
                    })
                }
                Some(SecretRef::Plain(s)) if inputs.defaults.allow_plaintext_secrets => Ok(Some(s)),
                Some(SecretRef::Plain(_)) => Err(ConfigError::PlaintextSecret {
                    path: path.to_owned(),
                    field,
                }),
            }
        };
    let google_service_account = resolve("googleServiceAccount", raw.google_service_account)?;
    if let Some(sa) = &google_service_account {
        let ok = serde_json::from_str::<Value>(sa.expose_secret())
            .ok()
            .is_some_and(|v| v.get("client_email").is_some() && v.get("private_key").is_some());
        if !ok {
            return Err(ConfigError::field(
                path,
                "credentials.googleServiceAccount",
                "is not a Google service-account JSON key (needs client_email and private_key)",
            ));
        }
    }
    let mut api_keys = Vec::with_capacity(raw.api_keys.len());
    for (i, h) in raw.api_keys.iter().enumerate() {
        let hash = ApiKeyHash::from_hex(h).ok_or_else(|| {
            ConfigError::field(
                path,
                format!("credentials.apiKeys[{i}]"),
                "is not a SHA-256 hex digest (64 hex characters: list the key's hash, never the key)",
            )
        })?;
        api_keys.push(hash);
    }
    Ok(TenantCredentials {
        github_webhook_secret: resolve("githubWebhookSecret", raw.github_webhook_secret)?,
        linear_webhook_secret: resolve("linearWebhookSecret", raw.linear_webhook_secret)?,
        api_keys,
        google_service_account,
    })
}
