//! `TenantRegistry`: every tenant, loaded once at start, looked up by id, Discord server or API key.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;

use super::defaults::{Defaults, TierSpec};
use super::error::{ConfigError, TenantError};
use super::layers::ENV_PREFIX;
use super::load::{load_defaults, load_tenant, load_tiers, tenant_files, TenantInputs};
use super::secrets::ApiKeyHash;
use super::TenantContext;

/// All tenants and the defaults. Cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct TenantRegistry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    defaults: Defaults,
    tiers: BTreeMap<String, TierSpec>,
    /// By tenant id (sorted, so `tenants()` is stable).
    tenants: BTreeMap<String, Arc<TenantContext>>,
    /// By Discord server id (unique across tenants, checked at load).
    by_guild: HashMap<String, Arc<TenantContext>>,
    default_tenant: Arc<TenantContext>,
}

impl TenantRegistry {
    /// Loads `config_dir` with overrides from the process environment, and refuses any
    /// `ONOMANCER_TENANT_*` variable that names no tenant field.
    pub fn load(config_dir: &Path) -> Result<TenantRegistry, ConfigError> {
        let (registry, consulted) = Self::load_inner(config_dir, &|k| std::env::var(k).ok())?;
        check_unused_overrides(
            &consulted,
            std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()),
        )?;
        Ok(registry)
    }

    /// Loads `config_dir`, reading environment variables (overrides, credential references,
    /// `ONOMANCER_MASTER_KEY`) through `lookup` (tests pass a map).
    pub fn load_with_env(
        config_dir: &Path,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<TenantRegistry, ConfigError> {
        Self::load_inner(config_dir, &lookup).map(|(r, _)| r)
    }

    fn load_inner(
        dir: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(TenantRegistry, BTreeSet<String>), ConfigError> {
        let (defaults_path, defaults) = load_defaults(dir)?;
        let tiers = load_tiers(dir)?;
        if !tiers.contains_key(&defaults.tier) {
            return Err(ConfigError::UnknownTier {
                path: defaults_path,
                tier: defaults.tier.clone(),
                known: tiers.keys().cloned().collect(),
            });
        }
        if defaults.allow_plaintext_secrets
            && lookup("ONOMANCER_ENV").as_deref() == Some("production")
        {
            return Err(ConfigError::field(
                defaults_path,
                "allowPlaintextSecrets",
                "must be false when ONOMANCER_ENV=production",
            ));
        }
        if (defaults.fetch.allow_private || !defaults.fetch.insecure_http_hosts.is_empty())
            && lookup("ONOMANCER_ENV").as_deref() == Some("production")
        {
            return Err(ConfigError::field(
                defaults_path,
                "fetch",
                "allowPrivate and insecureHttpHosts are for local fakes and must be off when ONOMANCER_ENV=production",
            ));
        }
        let master_key = lookup("ONOMANCER_MASTER_KEY")
            .filter(|k| !k.is_empty())
            .map(SecretString::from);
        let inputs = TenantInputs {
            defaults: &defaults,
            tiers: &tiers,
            lookup,
            master_key: master_key.as_ref(),
        };
        let mut consulted = BTreeSet::new();
        let mut tenants = BTreeMap::new();
        let mut by_guild: HashMap<String, Arc<TenantContext>> = HashMap::new();
        let mut key_owner: HashMap<ApiKeyHash, PathBuf> = HashMap::new();
        for path in tenant_files(dir)? {
            let ctx = Arc::new(load_tenant(&path, &inputs, &mut consulted)?);
            let guild = ctx.config.discord_server_id.clone();
            if let Some(other) = by_guild.get(&guild) {
                return Err(ConfigError::DuplicateDiscordServer {
                    path,
                    guild_id: guild,
                    other: other.source.clone(),
                });
            }
            for k in &ctx.credentials.api_keys {
                if let Some(other) = key_owner.get(k) {
                    return Err(ConfigError::DuplicateApiKey {
                        path,
                        other: other.clone(),
                    });
                }
                key_owner.insert(*k, path.clone());
            }
            by_guild.insert(guild, ctx.clone());
            tenants.insert(ctx.tenant_id.to_string(), ctx);
        }
        let default_tenant = tenants
            .get(defaults.default_tenant.as_str())
            .cloned()
            .ok_or_else(|| ConfigError::NoDefaultTenant {
                path: dir.join("defaults.json"),
                tenant: defaults.default_tenant.to_string(),
            })?;
        let inner = Inner {
            defaults,
            tiers,
            tenants,
            by_guild,
            default_tenant,
        };
        Ok((
            TenantRegistry {
                inner: Arc::new(inner),
            },
            consulted,
        ))
    }

    /// The tenant `id`; an unknown (or malformed) id is `TenantError::Unknown`.
    pub fn get_tenant_context(&self, id: &str) -> Result<Arc<TenantContext>, TenantError> {
        self.inner
            .tenants
            .get(id)
            .cloned()
            .ok_or_else(|| TenantError::Unknown(id.chars().take(64).collect()))
    }

    /// The single-tenant default (`defaultTenant` in `defaults.json`, `thj`).
    pub fn default_tenant(&self) -> Arc<TenantContext> {
        self.inner.default_tenant.clone()
    }

    /// The tenant that owns a Discord server.
    pub fn by_discord_guild(&self, guild_id: &str) -> Option<Arc<TenantContext>> {
        self.inner.by_guild.get(guild_id).cloned()
    }

    /// The tenant whose API keys include `bearer` (the raw key from `Authorization: Bearer`).
    /// The key is hashed and compared against every tenant's hashes in constant time.
    pub fn by_api_key(&self, bearer: &str) -> Option<Arc<TenantContext>> {
        let presented = ApiKeyHash::of_key(bearer);
        let mut found = None;
        for t in self.inner.tenants.values() {
            if t.credentials.accepts_api_key(&presented) && found.is_none() {
                found = Some(t.clone());
            }
        }
        found
    }

    /// Every tenant, ordered by id.
    pub fn tenants(&self) -> impl Iterator<Item = &Arc<TenantContext>> {
        self.inner.tenants.values()
    }

    /// The process-wide defaults (models, prices, cache, queue, digest, rate limits).
    pub fn defaults(&self) -> &Defaults {
        &self.inner.defaults
    }

    /// A tier from `quotas.json` (e.g. for its list price).
    pub fn tier(&self, name: &str) -> Option<&TierSpec> {
        self.inner.tiers.get(name)
    }
}

/// Refuses `ONOMANCER_TENANT_*` variables that loading did not consult (typos, unknown tenants).
pub(crate) fn check_unused_overrides(
    consulted: &BTreeSet<String>,
    env_names: impl Iterator<Item = String>,
) -> Result<(), ConfigError> {
    let mut unknown: Vec<String> = env_names
        .filter(|k| k.starts_with(ENV_PREFIX) && !consulted.contains(k))
        .collect();
    unknown.sort();
    match unknown.into_iter().next() {
        Some(var) => Err(ConfigError::UnknownOverride { var }),
        None => Ok(()),
    }
}
