//! `config/defaults.json` and `config/quotas.json`: process-wide defaults and the SaaS quota
//! tiers. Each section of `defaults.json` is the type its owner defines (models and prices:
//! `llm`; cache: `cache`; rate limits and queue tuning: `queue`), read here once and validated
//! at load (`load.rs`); processes take them from the loaded `TenantRegistry`.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;

use crate::cache::CacheConfig;
use crate::ids::{Persona, TenantId};
use crate::llm::{ModelRoutes, Prices};
use crate::queue::{QueueTuning, RateLimit};

use super::ConfigError;

/// The settings in `config/defaults.json`. Every tenant starts from these.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Defaults {
    /// The tenant used when a request names none (single-tenant deployments): `thj`.
    #[serde(default = "default_tenant_id")]
    pub default_tenant: TenantId,
    /// Tier of a tenant whose file names none (a key of `quotas.json`'s `tiers`).
    pub tier: String,
    /// Personas generated when a tenant names none.
    pub default_personas: Vec<Persona>,
    /// Gateway admission rate per tenant when neither the tier nor the tenant sets one.
    pub requests_per_minute: u32,
    /// Allows plain-text credentials in tenant files (development only).
    #[serde(default)]
    pub allow_plaintext_secrets: bool,
    /// Which model each operation uses.
    pub models: ModelRoutes,
    /// Price per model id, in US dollars per million tokens (validated at load).
    pub prices: Prices,
    /// The seed's `CACHE_CONFIG`, plus optional single-flight timing.
    pub cache: CacheConfig,
    /// Upstream quotas per service (`claude`, `googleDrive`, `googleDocs`, `linear`, `discord`),
    /// the seed's External API Quotas table; tenants may override them.
    pub rate_limits: BTreeMap<String, RateLimit>,
    /// Queue behaviour: retries, backoff, stalled-job recovery, retention.
    pub queue: QueueTuning,
    /// When weekly digests run.
    pub digest: DigestConfig,
    /// Which hosts user-supplied document links may be fetched from, and limits.
    #[serde(default)]
    pub fetch: FetchSettings,
}

impl Defaults {
    /// Reads and validates `<config_dir>/defaults.json` alone, for tools that act for no tenant
    /// (a process that serves tenants takes it from its loaded `TenantRegistry` instead).
    pub fn load(config_dir: &Path) -> Result<Defaults, ConfigError> {
        super::load::load_defaults(config_dir).map(|(_, d)| d)
    }
}

/// The `fetch` section of `defaults.json`: every field is optional and falls back to the built-in
/// policy (Discord's CDN, GitHub and Google hosts over https, 10 MB, 15 s).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchSettings {
    /// Hosts Discord attachments may come from.
    pub discord_hosts: Option<Vec<String>>,
    /// Hosts GitHub files may come from.
    pub github_hosts: Option<Vec<String>>,
    /// Hosts Google Docs may come from.
    pub google_hosts: Option<Vec<String>>,
    /// Size cap of one document in bytes.
    pub max_bytes: Option<usize>,
    /// Time budget of one fetch in seconds.
    pub timeout_seconds: Option<u64>,
    /// Hosts where plain http is accepted (local fakes only; refused in production).
    #[serde(default)]
    pub insecure_http_hosts: Vec<String>,
    /// Accept loopback/private addresses for exactly listed hosts (local fakes only; refused in
    /// production).
    #[serde(default)]
    pub allow_private: bool,
}

fn default_tenant_id() -> TenantId {
    TenantId::new("thj")
}

/// The weekly digest schedule.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DigestConfig {
    /// A `cron` crate expression with seconds, e.g. `0 0 9 * * Mon`.
    pub cron: String,
    /// Time zone the expression is read in (only `UTC` is supported).
    pub timezone: String,
}

impl DigestConfig {
    /// The parsed schedule (validated at load, so this does not fail for a loaded config).
    pub fn schedule(&self) -> Result<cron::Schedule, cron::error::Error> {
        cron::Schedule::from_str(&self.cron)
    }
}

/// `config/quotas.json`: the SaaS tiers.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct QuotasFile {
    /// Tier name -> limits.
    pub tiers: BTreeMap<String, TierSpec>,
}

/// One SaaS tier. `None` (JSON `null`) means unlimited (or "custom": set per tenant).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierSpec {
    /// Seats.
    #[serde(deserialize_with = "required")]
    pub users_max: Option<u32>,
    /// Transforms per UTC day.
    #[serde(deserialize_with = "required")]
    pub transformations_per_day: Option<u32>,
    /// Transforms per calendar month.
    #[serde(deserialize_with = "required")]
    pub transformations_per_month: Option<u32>,
    /// Google Drive storage.
    #[serde(rename = "storageGB", deserialize_with = "required")]
    pub storage_gb: Option<u32>,
    /// Gateway admission rate.
    pub requests_per_minute: u32,
    /// List price in dollars per month (`None`: custom).
    #[serde(deserialize_with = "required")]
    pub price_per_month_usd: Option<u32>,
}

/// Deserializes an `Option` that must be present (explicit `null` allowed): a missing limit is a
/// typo, not "unlimited".
pub(crate) fn required<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}
