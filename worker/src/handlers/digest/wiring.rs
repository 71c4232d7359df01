//! Builds the digest handler from process settings, like `TransformHandler::from_settings`:
//! the activity store on the usage store's database, Claude (once per job) when
//! `ANTHROPIC_API_KEY` is set, the Discord poster when Discord is configured, and one Google
//! client per Workspace tenant.

use std::sync::Arc;

use onomancer_shared::activity::ActivityStore;
use onomancer_shared::decisions::DecisionStore;
use onomancer_shared::integrations::discord::{DiscordConfig, DiscordPoster};
use onomancer_shared::queue::Queue;
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::TenantRegistry;
use onomancer_shared::upstream::UpstreamPause;
use onomancer_shared::usage::UsageStore;

use super::DigestHandler;
use crate::handlers::claude_once::ClaudeOnce;
use crate::transform::wiring::google_clients;

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
        let discord = match DiscordConfig::from_settings(settings, &tenants.defaults().rate_limits)
        {
            Some(config) => Some(DiscordPoster::new(
                config,
                queue.conn(),
                queue.keys().clone(),
            )?),
            None => None,
        };
        // Quota answers of a Google service account pause every worker.
        let google = google_clients(&tenants, usage.metrics())?;
        let pause = UpstreamPause::new(queue.conn(), queue.keys().clone());
        google.values().for_each(|g| g.pause_with(pause.clone()));
        Ok(Self {
            activity: ActivityStore::new(usage.database().clone()),
            decisions: Some(DecisionStore::new(usage.database().clone())),
            writer: ClaudeOnce::from_settings(settings, &tenants, queue, usage)?,
            prompts_dir: settings.config_dir.join("prompts"),
            discord,
            google,
            tenants,
        })
    }
}
