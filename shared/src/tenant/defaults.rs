//! `config/defaults.json` and `config/quotas.json`: process-wide defaults (models, prices, cache,
//! queue, digest schedule, upstream rate limits) and the SaaS quota tiers.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::Deserialize;

use crate::ids::{Persona, TenantId};

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
    pub models: Models,
    /// Price per model id, in US dollars per million tokens.
    pub prices: BTreeMap<String, ModelPrice>,
    /// The seed's `CACHE_CONFIG`.
    pub cache: CacheConfig,
    /// Upstream quotas per service (`claude`, `googleDrive`, `googleDocs`, `linear`, `discord`),
    /// the seed's External API Quotas table; tenants may override them.
    pub rate_limits: BTreeMap<String, RateLimit>,
    /// Queue behaviour: retries, backoff, stalled-job recovery, retention.
    pub queue: QueueDefaults,
    /// When weekly digests run.
    pub digest: DigestConfig,
    /// Which hosts user-supplied document links may be fetched from, and limits.
    #[serde(default)]
    pub fetch: FetchSettings,
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

/// Model ids per operation (kept in config because ids and prices change).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Models {
    /// Persona transforms and digests (Sonnet).
    pub transform: String,
    /// Content validation (Haiku: cheap).
    pub validation: String,
    /// Summarizing large documents before a transform (Haiku).
    pub summarize: String,
}

/// Price of one model, dollars per million tokens, with Anthropic's prompt-caching multipliers.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelPrice {
    /// Dollars per million input tokens.
    pub input: f64,
    /// Dollars per million output tokens.
    pub output: f64,
    /// Multiplier on `input` for tokens written to the 5-minute cache.
    pub cache_write5m_multiplier: f64,
    /// Multiplier on `input` for tokens written to the 1-hour cache.
    pub cache_write1h_multiplier: f64,
    /// Multiplier on `input` for tokens read from the cache.
    pub cache_read_multiplier: f64,
}

/// Token counts of one model call, as the Messages API reports them in `usage`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// `input_tokens` (not cached).
    pub input: u64,
    /// `output_tokens`.
    pub output: u64,
    /// `cache_creation.ephemeral_5m_input_tokens`.
    pub cache_write_5m: u64,
    /// `cache_creation.ephemeral_1h_input_tokens`.
    pub cache_write_1h: u64,
    /// `cache_read_input_tokens`.
    pub cache_read: u64,
}

impl ModelPrice {
    /// Cost in dollars of a call with these token counts.
    pub fn cost_usd(&self, t: TokenCounts) -> f64 {
        let per = |tokens: u64, dollars_per_m: f64| tokens as f64 * dollars_per_m / 1_000_000.0;
        per(t.input, self.input)
            + per(t.output, self.output)
            + per(t.cache_write_5m, self.input * self.cache_write5m_multiplier)
            + per(t.cache_write_1h, self.input * self.cache_write1h_multiplier)
            + per(t.cache_read, self.input * self.cache_read_multiplier)
    }
}

/// The seed's `CACHE_CONFIG`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheConfig {
    /// In-process cache.
    pub l1: L1Config,
    /// Redis cache.
    pub l2: L2Config,
    /// Serving stale entries while refreshing.
    pub stale_while_revalidate: StaleWhileRevalidate,
}

/// L1 (in-process, per worker) cache settings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct L1Config {
    /// Maximum entries.
    pub max_size: u64,
    /// Time to live in milliseconds.
    pub ttl_ms: u64,
}

/// L2 (Redis) cache settings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct L2Config {
    /// TTL per kind of entry.
    pub ttl_seconds: L2Ttls,
}

/// L2 TTLs in seconds, per kind of cached entry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct L2Ttls {
    /// Persona transforms.
    pub transformation: u64,
    /// Linear issues.
    pub linear_issue: u64,
    /// GitHub pull requests.
    #[serde(rename = "githubPR")]
    pub github_pr: u64,
    /// Google Drive folder ids.
    pub folder_ids: u64,
    /// Discord user roles.
    pub user_roles: u64,
}

/// Stale-while-revalidate settings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaleWhileRevalidate {
    /// How long past expiry an entry may still be served.
    pub max_stale_ms: u64,
    /// Whether a stale hit triggers a background refresh.
    pub background_refresh_enabled: bool,
}

/// An upstream quota: at most `requests` per `per_seconds` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length in seconds.
    pub per_seconds: u32,
}

impl RateLimit {
    /// The window as a duration.
    pub fn window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.per_seconds))
    }

    /// Sustained rate in requests per second.
    pub fn per_second(&self) -> f64 {
        f64::from(self.requests) / f64::from(self.per_seconds)
    }
}

/// Queue defaults (the queue's `QueueConfig` is built from these).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueDefaults {
    /// Attempts before a job goes to the dead-letter stream.
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt (with jitter).
    pub backoff_base_ms: u64,
    /// Cap on the retry delay.
    pub backoff_max_ms: u64,
    /// A worker that has not renewed its liveness this long is presumed dead; its jobs are reclaimed.
    pub claim_idle_ms: u64,
    /// Deliveries (claims, including crashes) before a job is treated as poison.
    pub max_deliveries: u32,
    /// How long an idempotency key dedupes enqueues.
    pub idempotency_window_seconds: u64,
    /// How long a finished job's status stays queryable.
    pub status_ttl_seconds: u64,
    /// Approximate `MAXLEN` for streams.
    pub stream_max_len_hint: u64,
    /// How long upstream rate limits (429, 529, a fleet-wide pause) may keep deferring one job,
    /// ms from its first deferral, before it is dead-lettered (default one hour).
    #[serde(default)]
    pub defer_deadline_ms: Option<u64>,
    /// How long running jobs may finish at shutdown (optional; read by `QueueConfig::load`).
    #[serde(default)]
    pub shutdown_grace_ms: Option<u64>,
    /// Shares of worker slots kept for interactive and default work (optional; read and
    /// checked by `QueueConfig::load`).
    #[serde(default)]
    pub reserved_share: Option<serde_json::Value>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_follows_the_price_table() {
        let sonnet = ModelPrice {
            input: 3.0,
            output: 15.0,
            cache_write5m_multiplier: 1.25,
            cache_write1h_multiplier: 2.0,
            cache_read_multiplier: 0.1,
        };
        // The seed's "Transform PRD (1 persona)": 12k in, 2k out = $0.066.
        let c = sonnet.cost_usd(TokenCounts {
            input: 12_000,
            output: 2_000,
            ..Default::default()
        });
        assert!((c - 0.066).abs() < 1e-9, "{c}");
        let cached = sonnet.cost_usd(TokenCounts {
            cache_read: 1_000_000,
            cache_write_5m: 1_000_000,
            cache_write_1h: 1_000_000,
            ..Default::default()
        });
        assert!((cached - (0.3 + 3.75 + 6.0)).abs() < 1e-9, "{cached}");
    }

    #[test]
    fn rate_limit_rates() {
        let r = RateLimit {
            requests: 50,
            per_seconds: 60,
        };
        assert_eq!(r.window().as_secs(), 60);
        assert!((r.per_second() - 50.0 / 60.0).abs() < 1e-12);
    }
}
