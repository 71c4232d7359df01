//! Posting a job's output to Discord: editing an interaction's deferred reply, follow-ups, and
//! channel messages, each part posted once per job however often the job runs.
//!
//! Requests are built by serenity's HTTP layer (`Http` from `HttpBuilder`, its `Route`s and
//! `Request::build`, so URLs, auth and the `DISCORD_API_BASE` proxy rewrite are serenity's own),
//! and sent on the same `reqwest` client, so the raw response (status, headers, JSON body) is
//! ours to classify: serenity's own error type drops `retry_after` and the rate-limit headers.
//!
//! serenity's in-process rate limiter is disabled on purpose: in 0.12.5 it ignores the proxy
//! (it builds requests with no proxy, `ratelimiting.rs`), on a 429 it sleeps inside the
//! worker's job slot, and it knows only its own process. In its place, [`DiscordGuard`] keeps
//! every worker's channel posts within Discord's limits in Redis before they are sent, and a
//! 429 (or the guard's wait) becomes [`JobError::Deferred`] with Discord's `retry_after`: the
//! queue waits, spreading the jobs with jitter, and no attempt is spent. A global 429 pauses
//! every worker's posts (`crate::upstream`).
//!
//! Idempotency (at-least-once delivery of jobs, exactly-once messages as far as Discord allows):
//! before part N of job J is posted, the marker `{tenant}:posted:{J}:{N}` is claimed with a short
//! "pending" lease ([`PostMarkers`]); after Discord answers, it becomes `done:<message id>` for a
//! day, and a re-run skips the part.
//! - Part 0 of an interaction edits `@original`: naturally idempotent.
//! - Channel messages carry a nonce derived from (tenant, job, part) with `enforce_nonce`, so a
//!   repeat within Discord's nonce window (a few minutes) returns the first message. A job
//!   reclaimed from a dead worker repeats its post after `queue.claimIdleMs` (30 s), or after
//!   the part's lease (1.5 × the call timeout: 30 s) if that ends later, plus the deferral's
//!   jitter: about a minute at most, well inside the window.
//! - Interaction follow-ups cannot be listed or deduplicated by Discord. A worker killed after
//!   Discord created the follow-up but before the marker was written leaves the "pending" lease;
//!   once it expires ([`PENDING_LEASE`]), a re-run posts that part again. This window (one HTTP
//!   response plus one Redis write) is accepted: a missing part would be worse than a rare duplicate.

mod error;
pub mod guard;
mod markers;
pub mod split;

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serenity::builder::{
    CreateAllowedMentions, CreateInteractionResponseFollowup, CreateMessage,
    EditInteractionResponse,
};
use serenity::http::{Http, HttpBuilder, LightMethod, Request, Route};
use serenity::model::channel::Nonce;
use serenity::model::id::{ApplicationId, ChannelId, MessageId};
use sha2::{Digest, Sha256};

use crate::ids::{JobId, TenantId};
use crate::keys::KeySpace;
use crate::queue::RateLimit;
use crate::redis_conn::RedisConn;
use crate::settings::Settings;
use crate::upstream::UpstreamPause;

pub use error::DiscordError;
pub use guard::{DiscordGuard, DiscordLimits};
pub use markers::{Claim, PostMarkers, DONE_TTL, PENDING_LEASE};
pub use split::{split_message, CONTENT_LIMIT, EMBED_DESCRIPTION_LIMIT};

/// Discord's REST base that `DISCORD_API_BASE` overrides.
pub const DEFAULT_API_BASE: &str = "https://discord.com/api/v10";

/// How to reach Discord.
#[derive(Debug)]
pub struct DiscordConfig {
    /// Bot token (`DISCORD_BOT_TOKEN`), without or with the `Bot ` prefix.
    pub token: SecretString,
    /// Application id (`DISCORD_APPLICATION_ID`); interaction webhooks are addressed by it.
    pub application_id: u64,
    /// `DISCORD_API_BASE`, e.g. `http://127.0.0.1:4000/api/v10` for a local fake.
    pub api_base: Option<String>,
    /// Timeout of one HTTP call (`DISCORD_TIMEOUT_SECONDS`); a part's post lease lasts 1.5
    /// times this.
    pub timeout: Duration,
    /// The fleet-wide limits kept before channel posts.
    pub limits: DiscordLimits,
}

impl DiscordConfig {
    /// A configuration for the real Discord with a 20 s call timeout and Discord's documented
    /// limits.
    pub fn new(token: SecretString, application_id: u64) -> Self {
        Self {
            token,
            application_id,
            api_base: None,
            timeout: Duration::from_secs(20),
            limits: DiscordLimits::default(),
        }
    }

    /// From the process settings, with the fleet-wide limits from the loaded `rateLimits`
    /// (`config/defaults.json`: `TenantRegistry::defaults`); `None` when the bot token or
    /// application id is missing.
    pub fn from_settings(
        settings: &Settings,
        rate_limits: &BTreeMap<String, RateLimit>,
    ) -> Option<Self> {
        let token = settings.discord_bot_token.as_ref()?;
        let mut config = Self::new(
            SecretString::from(token.expose_secret().to_owned()),
            settings.discord_application_id?,
        );
        config.api_base = settings.discord_api_base.clone();
        config.timeout = settings.discord_timeout;
        config.limits = DiscordLimits::from_rate_limits(rate_limits);
        Some(config)
    }

    /// How long a part's "pending" lease lasts: one call and half as much again (30 s for the
    /// default 20 s timeout, [`PENDING_LEASE`]).
    pub fn post_lease(&self) -> Duration {
        self.timeout + self.timeout / 2
    }
}

impl DiscordConfig {
    /// serenity's HTTP client for this configuration (token, application id, call timeout,
    /// `DISCORD_API_BASE` as serenity's proxy) and the reqwest client under it. serenity's
    /// in-process rate limiter is off (see the module docs).
    pub fn http(&self) -> Result<(Http, reqwest::Client), DiscordError> {
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .use_rustls_tls()
            // As before reqwest could speak HTTP/2 (enabled for Claude's client).
            .http1_only()
            .build()
            .map_err(|e| DiscordError::Request(e.to_string()))?;
        let mut builder = HttpBuilder::new(self.token.expose_secret())
            .application_id(ApplicationId::new(self.application_id))
            .client(client.clone())
            .ratelimiter_disabled(true);
        if let Some(base) = self.api_base.as_deref().filter(|b| !b.trim().is_empty()) {
            builder = builder.proxy(proxy_origin(base));
        }
        Ok((builder.build(), client))
    }
}

/// serenity's proxy option replaces `https://discord.com` in every URL, so the base it wants is
/// the origin: `http://host:port/api/v10` becomes `http://host:port`.
fn proxy_origin(api_base: &str) -> String {
    let base = api_base.trim_end_matches('/');
    match base.rfind("/api") {
        Some(i) if base[i..] == *"/api" || base[i..].starts_with("/api/v") => base[..i].to_owned(),
        _ => base.to_owned(),
    }
}

/// Where a job's output goes.
#[derive(Debug)]
pub enum PostTarget {
    /// The deferred reply of a slash command (token valid 15 minutes): part 0 edits `@original`,
    /// the rest are follow-ups.
    Interaction {
        /// The interaction token.
        token: SecretString,
    },
    /// A channel (notifications, digests): every part is a message with a job-derived nonce.
    Channel {
        /// The channel's snowflake.
        channel_id: u64,
    },
}

/// What [`DiscordPoster::post_job_output`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedOutput {
    /// The message of every part, in order.
    pub message_ids: Vec<u64>,
    /// Parts posted by this run.
    pub newly_posted: usize,
    /// Parts a previous run had already posted.
    pub already_posted: usize,
}

/// The nonce of part `part` of a job's channel output: 25 hex characters (Discord's maximum
/// length) of SHA-256 over tenant, job and part.
pub fn nonce_for(tenant: &TenantId, job: &JobId, part: usize) -> String {
    let digest = Sha256::digest(format!("{tenant}:{job}:{part}").as_bytes());
    hex::encode(digest)[..25].to_owned()
}

#[derive(Deserialize)]
struct MessageRef {
    id: MessageId,
}

/// Posts to Discord; cheap to clone.
#[derive(Clone)]
pub struct DiscordPoster {
    http: std::sync::Arc<Http>,
    client: reqwest::Client,
    application_id: ApplicationId,
    markers: PostMarkers,
    guard: DiscordGuard,
}

impl std::fmt::Debug for DiscordPoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordPoster")
            .field("application_id", &self.application_id)
            .field("proxy", &self.http.proxy)
            .finish_non_exhaustive()
    }
}

mod send;

impl DiscordPoster {
    /// Whether `other` is a clone of this poster (the same HTTP clients and connections).
    pub fn shares_clients_with(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.http, &other.http)
    }

    /// A poster whose idempotency markers, pauses and fleet-wide limits live in `conn` under
    /// `keys`.
    pub fn new(
        config: DiscordConfig,
        conn: RedisConn,
        keys: KeySpace,
    ) -> Result<Self, DiscordError> {
        if config.application_id == 0 {
            return Err(DiscordError::Request(
                "the application id must not be 0".into(),
            ));
        }
        if config.timeout.is_zero() {
            return Err(DiscordError::Request(
                "the call timeout must be greater than 0".into(),
            ));
        }
        let (http, client) = config.http()?;
        let pause = UpstreamPause::new(conn.clone(), keys.clone());
        Ok(Self {
            http: std::sync::Arc::new(http),
            client,
            application_id: ApplicationId::new(config.application_id),
            markers: PostMarkers::new(conn, keys).with_lease(config.post_lease()),
            guard: DiscordGuard::new(pause, config.limits),
        })
    }

    /// serenity's HTTP client (same token, proxy and connection pool), for calls not wrapped here.
    pub fn http(&self) -> &std::sync::Arc<Http> {
        &self.http
    }

    /// Posts `content` for job `job`: split under Discord's 2000-character limit, each part once.
    /// A re-run of the job skips the parts already posted and returns their message ids.
    pub async fn post_job_output(
        &self,
        tenant: &TenantId,
        job: &JobId,
        target: &PostTarget,
        content: &str,
    ) -> Result<PostedOutput, DiscordError> {
        let parts = split_message(content, CONTENT_LIMIT);
        if parts.is_empty() {
            return Err(DiscordError::EmptyContent);
        }
        let mut out = PostedOutput {
            message_ids: Vec::with_capacity(parts.len()),
            newly_posted: 0,
            already_posted: 0,
        };
        let redis_err = |e: redis::RedisError| DiscordError::Redis(e.to_string());
        for (i, part) in parts.iter().enumerate() {
            let lease = match self
                .markers
                .claim(tenant, job, i)
                .await
                .map_err(redis_err)?
            {
                Claim::Done(id) => {
                    out.message_ids.push(id);
                    out.already_posted += 1;
                    continue;
                }
                Claim::Busy(wait) => return Err(DiscordError::Busy { part: i, wait }),
                Claim::Claimed(token) => token,
            };
            let posted = match target {
                PostTarget::Interaction { token } if i == 0 => {
                    self.edit_original(token.expose_secret(), part).await
                }
                PostTarget::Interaction { token } => {
                    self.create_followup(token.expose_secret(), part).await
                }
                PostTarget::Channel { channel_id } => {
                    self.create_channel_message(*channel_id, part, &nonce_for(tenant, job, i))
                        .await
                }
            };
            match posted {
                Ok(id) => {
                    if let Err(e) = self.markers.mark_done(tenant, job, i, id).await {
                        // The message exists; failing the job now would only post it again.
                        tracing::warn!(%tenant, %job, part = i, error = %e, "posted to Discord but could not record it");
                    }
                    out.message_ids.push(id);
                    out.newly_posted += 1;
                }
                Err(e) => {
                    if e.nothing_was_created() {
                        if let Err(re) = self.markers.release(tenant, job, i, &lease).await {
                            tracing::warn!(%tenant, %job, part = i, error = %re, "could not release the post lease");
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Edits the interaction's deferred reply (`PATCH /webhooks/{app}/{token}/messages/@original`).
    pub async fn edit_original(&self, token: &str, content: &str) -> Result<u64, DiscordError> {
        let body = EditInteractionResponse::new()
            .content(content)
            .allowed_mentions(CreateAllowedMentions::new());
        let route = Route::WebhookOriginalInteractionResponse {
            application_id: self.application_id,
            token,
        };
        self.send(Request::new(route, LightMethod::Patch), &body, None)
            .await
    }

    /// Sends a follow-up to an interaction (`POST /webhooks/{app}/{token}`).
    pub async fn create_followup(&self, token: &str, content: &str) -> Result<u64, DiscordError> {
        let body = CreateInteractionResponseFollowup::new()
            .content(content)
            .allowed_mentions(CreateAllowedMentions::new());
        let route = Route::WebhookFollowupMessages {
            application_id: self.application_id,
            token,
        };
        self.send(Request::new(route, LightMethod::Post), &body, None)
            .await
    }

    /// Posts a channel message with `nonce` and `enforce_nonce: true`
    /// (`POST /channels/{id}/messages`), once the fleet-wide guard lets it go
    /// ([`DiscordError::Throttled`] otherwise, with the wait).
    pub async fn create_channel_message(
        &self,
        channel_id: u64,
        content: &str,
        nonce: &str,
    ) -> Result<u64, DiscordError> {
        if channel_id == 0 {
            return Err(DiscordError::Request("the channel id must not be 0".into()));
        }
        if let Err(t) = self.guard.admit(channel_id).await {
            return Err(DiscordError::Throttled {
                wait: t.wait,
                why: t.why,
            });
        }
        let body = CreateMessage::new()
            .content(content)
            .nonce(Nonce::String(nonce.to_owned()))
            .enforce_nonce(true)
            .allowed_mentions(CreateAllowedMentions::new());
        let route = Route::ChannelMessages {
            channel_id: ChannelId::new(channel_id),
        };
        self.send(
            Request::new(route, LightMethod::Post),
            &body,
            Some(channel_id),
        )
        .await
    }
}

#[cfg(test)]
mod tests;
