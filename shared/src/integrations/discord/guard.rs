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

use std::collections::BTreeMap;
use std::time::Duration;

use crate::queue::RateLimit;
use crate::upstream::UpstreamPause;

/// The pause scope of the bot (a global 429 pauses every call).
pub const PAUSE_SCOPE: &str = "discord";

/// The pause scope of one channel's message bucket.
pub fn channel_scope(channel_id: u64) -> String {
    format!("discord:channel:{channel_id}")
}

/// The limits the guard keeps, fleet-wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscordLimits {
    /// Every bot call counted by Discord's global limit (`rateLimits.discord`).
    pub global: RateLimit,
    /// Messages posted to one channel (`rateLimits.discordChannel`).
    pub channel: RateLimit,
}

impl Default for DiscordLimits {
    /// Discord's documented limits: 50 requests/s per bot, 5 messages per 5 s per channel.
    fn default() -> Self {
        Self {
            global: RateLimit::new(50, Duration::from_secs(1)),
            channel: RateLimit::new(5, Duration::from_secs(5)),
        }
    }
}

impl DiscordLimits {
    /// `discord` and `discordChannel` of the loaded `rateLimits` (`config/defaults.json`,
    /// validated at load), each falling back to Discord's documented limit when absent.
    pub fn from_rate_limits(limits: &BTreeMap<String, RateLimit>) -> Self {
        let d = Self::default();
        Self {
            global: limits.get("discord").copied().unwrap_or(d.global),
            channel: limits.get("discordChannel").copied().unwrap_or(d.channel),
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
            .arg(self.limits.global.window().as_millis() as u64)
            .arg(self.limits.channel.requests)
            .arg(self.limits.channel.window().as_millis() as u64)
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
