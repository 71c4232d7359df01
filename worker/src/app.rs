//! The worker's composition root: [`Services`] builds every client of a worker process once
//! (tenants, database and usage store, the one billed Claude with its rate limiter, the Discord
//! poster, one Google client per Workspace tenant, the tiered cache, admission) and
//! [`Handlers::from_services`] hands clones of them to every handler, so all handlers share one
//! connection pool and one token cache per upstream. Handlers never build clients themselves.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use onomancer_shared::activity::ActivityStore;
use onomancer_shared::admission::Admission;
use onomancer_shared::cache::TieredCache;
use onomancer_shared::db::Database;
use onomancer_shared::decisions::DecisionStore;
use onomancer_shared::integrations::discord::{DiscordConfig, DiscordPoster};
use onomancer_shared::integrations::fetch::Fetcher;
use onomancer_shared::integrations::google::GoogleClient;
use onomancer_shared::llm::{ClaudeClient, ClaudeConfig, ModelRoutes};
use onomancer_shared::queue::Queue;
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::TenantRegistry;
use onomancer_shared::upstream::UpstreamPause;
use onomancer_shared::usage::{UsageMetrics, UsageStore};
use onomancer_shared::TenantId;

use crate::billed::BilledClaude;
use crate::handlers::claude_once::ClaudeOnce;
use crate::handlers::decisions::DecisionSearch;
use crate::handlers::{
    DigestHandler, DiscordCommandHandler, Handlers, NotifyHandler, TransformHandler,
};
use crate::transform::wiring::{
    build_cache, fetch_policy, google_clients, models_and_prices, rate_limiter,
};
use crate::transform::{PromptStore, TransformEngine};

/// Every client a worker process uses, each built once. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// Tenant settings and credentials, loaded once.
    pub tenants: Arc<TenantRegistry>,
    /// The job queue (its Redis connection also carries texts kept for retries, progress and
    /// the fleet-wide pauses).
    pub queue: Queue,
    /// The SQL database (usage, activity, decisions, the L3 cache).
    pub db: Database,
    /// Usage rows, moving the seed's cost metrics on this worker's `/metrics`.
    pub usage: UsageStore,
    /// GitHub and Linear activity kept for digests.
    pub activity: ActivityStore,
    /// Decisions kept for `/decisions` and digests.
    pub decisions: DecisionStore,
    /// Quota counters for `/usage` and refunds of failed `/transform`s.
    pub admission: Admission,
    /// Claude behind the shared per-tenant rate limit and the bill (`None`: no
    /// `ANTHROPIC_API_KEY`; transforms are dead-lettered, digests and `/decisions` need none
    /// when there is nothing to write).
    pub claude: Option<Arc<BilledClaude>>,
    /// Which model does what (`defaults.json`).
    pub models: ModelRoutes,
    /// Posts to Discord (`None`: no `DISCORD_BOT_TOKEN` / `DISCORD_APPLICATION_ID`).
    pub discord: Option<DiscordPoster>,
    /// One client per Workspace tenant with a service account, its access token shared.
    pub google: BTreeMap<TenantId, GoogleClient>,
    /// The transform cache (`None` where transforms cannot run: no Claude).
    pub cache: Option<TieredCache>,
    /// Reads linked documents under the `fetch` policy of `defaults.json`.
    pub fetcher: Fetcher,
    /// `onomancer_transformation_duration_seconds` (`None` where transforms cannot run).
    pub transform_duration: Option<prometheus::HistogramVec>,
    /// The prompt templates' folder (`{ONOMANCER_CONFIG_DIR}/prompts`).
    pub prompts_dir: PathBuf,
}

impl Services {
    /// Opens the database named by `settings`, then builds every client around the tenants the
    /// process loaded once.
    pub async fn build(
        settings: &Settings,
        tenants: Arc<TenantRegistry>,
        queue: &Queue,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        let db = Database::open(&settings.database_url)
            .await
            .context("opening the database (DATABASE_URL)")?;
        Self::with(settings, tenants, db, queue, registry)
    }

    /// Builds every client from `settings` around already loaded `tenants` and `db`, and
    /// registers the worker's metrics into `registry`.
    pub fn with(
        settings: &Settings,
        tenants: Arc<TenantRegistry>,
        db: Database,
        queue: &Queue,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        // One store for every handler, so every usage record also moves the seed's cost metrics
        // (`onomancer_tokens_used_total`, `onomancer_api_calls_total`,
        // `onomancer_estimated_cost_dollars`) on this worker's `/metrics`.
        let usage = UsageStore::with_metrics(
            db.clone(),
            UsageMetrics::register(registry).context("registering cost metrics")?,
        );
        // Rate limits of Claude's shared key and of Google service accounts pause every worker.
        let pause = UpstreamPause::new(queue.conn(), queue.keys().clone());
        let google = google_clients(&tenants, usage.metrics())?;
        google.values().for_each(|g| g.pause_with(pause.clone()));
        let (models, prices) = models_and_prices(tenants.defaults());
        let claude = match settings.anthropic_api_key {
            Some(_) => Some(Arc::new(BilledClaude {
                client: ClaudeClient::new(ClaudeConfig::from_settings(settings)?)?
                    .with_pause(pause),
                limiter: Some(rate_limiter(queue, &tenants)),
                usage: usage.clone(),
                prices,
            })),
            None => {
                tracing::warn!("ANTHROPIC_API_KEY is not set: transform jobs will be dead-lettered with that reason");
                None
            }
        };
        let discord = match DiscordConfig::from_settings(settings, &tenants.defaults().rate_limits)
        {
            Some(config) => Some(DiscordPoster::new(
                config,
                queue.conn(),
                queue.keys().clone(),
            )?),
            None => {
                tracing::warn!("DISCORD_BOT_TOKEN or DISCORD_APPLICATION_ID is not set: notifications and slash commands will be dead-lettered with that reason");
                None
            }
        };
        let (cache, transform_duration) = match claude {
            Some(_) => (
                Some(build_cache(
                    settings, &tenants, queue, &db, &google, registry,
                )?),
                Some(
                    crate::transform::engine::register_duration(registry)
                        .context("registering transform metrics")?,
                ),
            ),
            None => (None, None),
        };
        Ok(Self {
            fetcher: Fetcher::new(fetch_policy(&tenants.defaults().fetch)),
            admission: Admission::new(queue.conn(), queue.keys().clone()),
            activity: ActivityStore::new(db.clone()),
            decisions: DecisionStore::new(db.clone()),
            prompts_dir: settings.config_dir.join("prompts"),
            tenants,
            queue: queue.clone(),
            db,
            usage,
            claude,
            models,
            discord,
            google,
            cache,
            transform_duration,
        })
    }

    /// `/decisions` search and answers: the decision store, Claude once per job.
    fn decision_search(&self) -> DecisionSearch {
        DecisionSearch {
            store: self.decisions.clone(),
            writer: self.claude_once(),
            prompts_dir: self.prompts_dir.clone(),
        }
    }

    /// Claude once per job (`models.transform`), texts kept in the queue's Redis.
    fn claude_once(&self) -> ClaudeOnce {
        ClaudeOnce {
            claude: self.claude.clone(),
            model: self.models.transform.clone(),
            redis: self.queue.conn(),
            keys: self.queue.keys().clone(),
        }
    }
}

impl Handlers {
    /// Every handler this worker can run with the clients it has, all sharing `services`'
    /// clients.
    pub fn from_services(services: &Services) -> Self {
        let s = services;
        let transform = match (&s.claude, &s.cache) {
            (Some(claude), Some(cache)) => Some(TransformHandler {
                engine: Arc::new(TransformEngine {
                    cache: cache.clone(),
                    claude: claude.clone(),
                    models: s.models.clone(),
                    prompts: PromptStore::new(s.prompts_dir.clone()),
                    duration: s.transform_duration.clone(),
                }),
                tenants: s.tenants.clone(),
                fetcher: s.fetcher.clone(),
                progress: Some(s.queue.clone()),
                discord: s.discord.clone(),
                google: s.google.clone(),
            }),
            _ => None,
        };
        let notify = s.discord.clone().map(|discord| NotifyHandler {
            tenants: s.tenants.clone(),
            discord,
        });
        let discord_command = s.discord.clone().map(|discord| DiscordCommandHandler {
            tenants: s.tenants.clone(),
            queue: s.queue.clone(),
            admission: s.admission.clone(),
            usage: Some(s.usage.clone()),
            discord,
            transform: transform.clone(),
            decisions: Some(s.decision_search()),
        });
        let digest = DigestHandler {
            tenants: s.tenants.clone(),
            activity: s.activity.clone(),
            decisions: Some(s.decisions.clone()),
            writer: s.claude_once(),
            prompts_dir: s.prompts_dir.clone(),
            discord: s.discord.clone(),
            google: s.google.clone(),
        };
        Self {
            transform,
            notify,
            discord_command,
            digest: Some(digest),
            activity: Some(s.activity.clone()),
            decisions: Some(s.decisions.clone()),
        }
    }
}

#[cfg(test)]
mod tests;
