//! The fleet-wide gate in front of channel posts ([`DiscordGuard`], `guard.lua`): a pause of
//! all of Discord (after a global 429), a pause of one channel (after its bucket ran out), and
//! sliding-window limits per bot and per channel (`rateLimits.discord` and
//! `rateLimits.discordChannel` in `config/defaults.json`: Discord's 50 requests/s and 5 posts
//! per 5 s per channel), all in Redis, so eight workers keep to the limits one bot has.
//!
//! It keeps 429s rare, not impossible: Discord's buckets are its own (fixed windows that start
//! at its first request), so a 429 can still come back; it defers the job and pauses the
//! channel or the bot for Discord's `retry_after`. Per-bucket accounting from
//! `X-RateLimit-Bucket` is not done here.

use std::path::Path;
use std::time::Duration;

use crate::upstream::UpstreamPause;

/// The pause scope of the bot (a global 429 pauses every call).
pub const PAUSE_SCOPE: &str = "discord";

/// The pause scope of one channel's message bucket.
pub fn channel_scope(channel_id: u64) -> String {
    format!("discord:channel:{channel_id}")
}

/// At most `requests` calls in any `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Calls per window.
    pub requests: u32,
    /// The window.
    pub window: Duration,
}

/// The limits the guard keeps, fleet-wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscordLimits {
    /// Every bot call counted by Discord's global limit (`rateLimits.discord`).
    pub global: Limit,
    /// Messages posted to one channel (`rateLimits.discordChannel`).
    pub channel: Limit,
}

impl Default for DiscordLimits {
    /// Discord's documented limits: 50 requests/s per bot, 5 messages per 5 s per channel.
    fn default() -> Self {
        Self {
            global: Limit {
                requests: 50,
                window: Duration::from_secs(1),
            },
            channel: Limit {
                requests: 5,
                window: Duration::from_secs(5),
            },
        }
    }
}

impl DiscordLimits {
    /// `rateLimits.discord` and `rateLimits.discordChannel` from `<config_dir>/defaults.json`,
    /// each falling back to Discord's documented limit when absent. The tenant loader validates
    /// the same file at start (positive numbers, known fields), so only a missing or unreadable
    /// file falls back as a whole, with a warning.
    pub fn from_config_dir(config_dir: &Path) -> Self {
        let path = config_dir.join("defaults.json");
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()));
        let v = match parsed {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "Discord limits not readable; using Discord's documented limits");
                return Self::default();
            }
        };
        let limit = |service: &str, fallback: Limit| -> Limit {
            let l = &v["rateLimits"][service];
            let requests = l["requests"].as_u64().filter(|n| *n > 0);
            let per = l["perSeconds"].as_u64().filter(|n| *n > 0);
            match (requests, per) {
                (Some(r), Some(p)) => Limit {
                    requests: r.min(u64::from(u32::MAX)) as u32,
                    window: Duration::from_secs(p),
                },
                _ => fallback,
            }
        };
        let d = Self::default();
        Self {
            global: limit("discord", d.global),
            channel: limit("discordChannel", d.channel),
        }
    }
}

/// Why the guard held a call back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Throttle {
    /// How long until the call may go.
    pub wait: Duration,
    /// Which limit (`global`, `channel`, or a pause and what caused it).
    pub why: String,
}

/// The gate; cheap to clone.
#[derive(Clone, Debug)]
pub struct DiscordGuard {
    pause: UpstreamPause,
    limits: DiscordLimits,
    script: redis::Script,
}

impl DiscordGuard {
    /// A guard keeping `limits` with its keys beside `pause`'s.
    pub fn new(pause: UpstreamPause, limits: DiscordLimits) -> Self {
        Self {
            pause,
            limits,
            script: redis::Script::new(include_str!("guard.lua")),
        }
    }

    /// The pauses this guard reads and writes.
    pub fn pause(&self) -> &UpstreamPause {
        &self.pause
    }

    /// The limits in force.
    pub fn limits(&self) -> DiscordLimits {
        self.limits
    }

    /// Takes one call's place before posting to `channel_id`, or says how long to wait. A Redis
    /// failure lets the call through (logged): Discord's own 429 still defers the job.
    pub async fn admit(&self, channel_id: u64) -> Result<(), Throttle> {
        let keys = self.pause.keys();
        let global_log = keys.global(format_args!("discord:ratelimit:global"));
        let channel_log = keys.global(format_args!("discord:ratelimit:channel:{channel_id}"));
        let member = uuid::Uuid::new_v4().simple().to_string();
        let reply: redis::RedisResult<(i64, String)> = self
            .script
            .key(self.pause.key(PAUSE_SCOPE))
            .key(self.pause.key(&channel_scope(channel_id)))
            .key(global_log)
            .key(channel_log)
            .arg(self.limits.global.requests)
            .arg(self.limits.global.window.as_millis() as u64)
            .arg(self.limits.channel.requests)
            .arg(self.limits.channel.window.as_millis() as u64)
            .arg(member)
            .invoke_async(&mut self.pause.conn())
            .await;
        match reply {
            Ok((wait, _)) if wait <= 0 => Ok(()),
            Ok((wait, why)) => Err(Throttle {
                wait: Duration::from_millis(wait as u64),
                why,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "the Discord rate guard is unavailable; posting anyway");
                Ok(())
            }
        }
    }
}
