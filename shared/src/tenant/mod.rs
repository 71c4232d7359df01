//! Tenant context and layered configuration (defaults, tier, tenant file, environment).
//!
//! The config folder (`ONOMANCER_CONFIG_DIR`, default `./config`) holds `defaults.json`,
//! `quotas.json` (SaaS tiers) and `tenants/<id>.json` (the seed's layout). A tenant is the JSON
//! deep merge of, lowest first:
//! 1. `defaults.json` (`tier`, `defaultPersonas`, `requestsPerMinute`, `rateLimits`);
//! 2. its tier in `quotas.json` (the quota fields);
//! 3. its file `tenants/<id>.json`;
//! 4. environment overrides `ONOMANCER_TENANT_<ID>_<FIELD_PATH>` (see [`layers`] for the naming).
//!
//! A broken config stops the process at start with a [`ConfigError`] naming the file, the field
//! path and the problem. Credentials are resolved at load (environment, or decrypted with
//! `ONOMANCER_MASTER_KEY`) and held as `SecretString`s.

pub mod defaults;
mod duplicate_keys;
pub mod error;
pub mod layers;
mod load;
pub mod model;
mod registry;
pub mod secrets;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use defaults::{Defaults, DigestConfig, FetchSettings, TierSpec};
pub use error::{ConfigError, TenantError};
pub use layers::override_var;
pub use model::{
    GithubConfig, LinearConfig, ProductConfig, TenantConfig, TenantDiscordConfig, TenantQuotas,
};
pub use registry::TenantRegistry;
pub use secrets::{
    decrypt_secret, encrypt_secret, hash_api_key, ApiKeyHash, SecretError, TenantCredentials,
};

use crate::ids::TenantId;
use crate::queue::RateLimit;

/// Everything the code needs to act for one tenant (the seed's `TenantContext`).
#[derive(Clone, Debug)]
pub struct TenantContext {
    /// The tenant's id (`thj`): the file name and the prefix of its Redis keys.
    pub tenant_id: TenantId,
    /// Display name.
    pub name: String,
    /// SaaS tier, a key of `quotas.json` (`starter`, `team`, `business`, `enterprise`).
    pub tier: String,
    /// Settings and routing.
    pub config: TenantConfig,
    /// Usage limits after layering.
    pub quotas: TenantQuotas,
    /// Resolved credentials (`Debug` redacts them).
    pub credentials: TenantCredentials,
    /// Upstream rate limits per service (`claude`, `googleDrive`, `googleDocs`, `linear`,
    /// `discord`, ...): defaults with this tenant's overrides.
    pub rate_limits: BTreeMap<String, RateLimit>,
    /// The file it was loaded from (for messages).
    pub source: PathBuf,
    /// Names of the environment variables that overrode fields (never their values).
    pub overrides: Vec<String>,
}

impl TenantContext {
    /// The tenant's limit for an upstream service, if one is configured.
    pub fn rate_limit(&self, service: &str) -> Option<RateLimit> {
        self.rate_limits.get(service).copied()
    }
}
