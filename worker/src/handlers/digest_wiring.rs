//! Builds the digest handler from process settings, like `TransformHandler::from_settings`:
//! the activity and usage stores on the database, Claude when `ANTHROPIC_API_KEY` is set, the
//! shared rate limiter, the Discord poster when Discord is configured, and one Google client per
//! Workspace tenant.

use std::sync::Arc;

use onomancer_shared::activity::ActivityStore;
use onomancer_shared::integrations::discord::{DiscordConfig, DiscordPoster};
use onomancer_shared::llm::{ClaudeClient, ClaudeConfig};
use onomancer_shared::queue::Queue;
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::TenantRegistry;
use onomancer_shared::usage::UsageStore;

use super::DigestHandler;
use crate::transform::wiring::{google_clients, models_and_prices};

impl DigestHandler {
    /// Everything a worker needs to run `digest` jobs. Claude and Discord are optional here: a
    /// digest that needs one that is missing fails terminally, saying which setting to set
    /// (a quiet week needs no Claude).
    pub fn from_settings(
        settings: &Settings,
        tenants: Arc<TenantRegistry>,
        queue: &Queue,
        usage: &UsageStore,
    ) -> anyhow::Result<Self> {
        let db = usage.database().clone();
        let defaults = tenants.defaults();
        let (models, prices) = models_and_prices(defaults);
        let claude = match settings.anthropic_api_key {
            Some(_) => Some(ClaudeClient::new(ClaudeConfig::from_settings(settings)?)?),
            None => None,
        };
        let limiter = crate::transform::wiring::rate_limiter(queue, &tenants);
        let discord = match DiscordConfig::from_settings(settings) {
            Some(config) => Some(DiscordPoster::new(
                config,
                queue.conn(),
                queue.keys().clone(),
            )?),
            None => None,
        };
        let google = google_clients(&tenants, usage.metrics())?;
        Ok(Self {
            activity: ActivityStore::new(db.clone()),
            usage: usage.clone(),
            claude,
            limiter: Some(limiter),
            prices,
            model: models.transform,
            prompts_dir: settings.config_dir.join("prompts"),
            redis: queue.conn(),
            keys: queue.keys().clone(),
            discord,
            google,
            tenants,
        })
    }
}
