//! The parts the worker's composition root (`crate::app::Services`) builds its clients from:
//! model routes and prices, one Google client per Workspace tenant, the tiered cache (L3 in SQL,
//! or in the tenant's Google Drive when it has a Workspace and a service account), the fetch
//! policy and the shared rate limiter.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;

use onomancer_shared::cache::{GoogleDocsL3, SqlL3, TieredCache};
use onomancer_shared::db::Database;
use onomancer_shared::integrations::fetch::{FetchPolicy, SourceKind};
use onomancer_shared::integrations::google::{GoogleClient, GoogleConfig};
use onomancer_shared::llm::{ModelRoutes, Prices};
use onomancer_shared::queue::{Queue, RateLimiter};
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::{Defaults, TenantRegistry};
use onomancer_shared::usage::{services, UsageMetrics};
use onomancer_shared::TenantId;

/// Model routes and prices from `config/defaults.json`.
pub fn models_and_prices(defaults: &Defaults) -> (ModelRoutes, Prices) {
    (defaults.models.clone(), defaults.prices.clone())
}

/// Google clients of tenants that have a Workspace and a service account.
pub fn google_clients(
    tenants: &TenantRegistry,
    metrics: Option<&UsageMetrics>,
) -> anyhow::Result<BTreeMap<TenantId, GoogleClient>> {
    let mut out = BTreeMap::new();
    for t in tenants.tenants() {
        let (Some(_), Some(key)) = (
            &t.config.google_workspace_id,
            &t.credentials.google_service_account,
        ) else {
            continue;
        };
        let client = GoogleClient::from_key_json(GoogleConfig::default(), key)
            .with_context(|| format!("Google service account of tenant {}", t.tenant_id))?;
        if let Some(m) = metrics {
            client.count_calls_in(m.api_calls(services::GOOGLE, t.tenant_id.as_str()));
        }
        out.insert(t.tenant_id.clone(), client);
    }
    Ok(out)
}

/// The tiered cache of a worker: SQL L3 by default, Google Docs for Workspace tenants.
pub fn build_cache(
    settings: &Settings,
    tenants: &TenantRegistry,
    queue: &Queue,
    db: &Database,
    google: &BTreeMap<TenantId, GoogleClient>,
    registry: &prometheus::Registry,
) -> anyhow::Result<TieredCache> {
    let mut builder = TieredCache::builder(queue.conn(), queue.keys().clone())
        .config(tenants.defaults().cache.clone())
        .redis_url(settings.redis_url.clone())
        .l3(Arc::new(SqlL3::from(db)));
    for t in tenants.tenants() {
        if let (Some(client), Some(root)) =
            (google.get(&t.tenant_id), t.config.folder_ids.get("root"))
        {
            builder = builder.l3_for_tenant(
                t.tenant_id.clone(),
                Arc::new(GoogleDocsL3::new(
                    client.clone(),
                    t.tenant_id.clone(),
                    root.clone(),
                )),
            );
        }
    }
    builder.build(registry).context("registering cache metrics")
}

/// The document-fetching policy: the built-in one (Discord's CDN, GitHub, Google over https),
/// with the `fetch` section of `defaults.json` applied.
pub fn fetch_policy(settings: &onomancer_shared::tenant::FetchSettings) -> FetchPolicy {
    let mut policy = FetchPolicy::default();
    for (kind, hosts) in [
        (SourceKind::DiscordAttachment, &settings.discord_hosts),
        (SourceKind::GitHubFile, &settings.github_hosts),
        (SourceKind::GoogleDoc, &settings.google_hosts),
    ] {
        if let Some(hosts) = hosts {
            policy
                .allowed_hosts
                .insert(kind, hosts.iter().map(|h| h.to_ascii_lowercase()).collect());
        }
    }
    if let Some(max) = settings.max_bytes {
        policy.max_bytes = max;
    }
    if let Some(secs) = settings.timeout_seconds {
        policy.timeout = std::time::Duration::from_secs(secs);
    }
    policy.insecure_http_hosts = settings.insecure_http_hosts.clone();
    policy.allow_private = settings.allow_private;
    policy
}

/// The upstream rate limiter every worker shares: the seed's External API Quotas from
/// `defaults.json`, overridden per tenant.
pub fn rate_limiter(queue: &Queue, tenants: &TenantRegistry) -> RateLimiter {
    let limits = tenants.defaults().rate_limits.clone();
    let mut limiter = RateLimiter::new(queue.clone(), limits);
    for t in tenants.tenants() {
        for (service, l) in &t.rate_limits {
            limiter = limiter.with_tenant_limit(t.tenant_id.clone(), service, *l);
        }
    }
    limiter
}
