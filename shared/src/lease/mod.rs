//! Redis leases, the one way a process holds something for a while: scheduler leadership, a
//! worker's consumer name, a single-flight lock, a Discord part being posted. A lease is a key
//! whose value is its holder's token and whose expiry is the lease's end; every change after the
//! take compares the token in the same script (`renew.lua`, `release.lua`), so a holder whose
//! lease expired can neither extend nor delete a lease another holder took since. Each `.lua`
//! file here says what it touches; each touches one key, so leases work on Redis Cluster.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;

use crate::redis_conn::RedisConn;

/// `hold.lua`: take or renew, for holders that keep a lease for their whole life. Also composed
/// into the queue's `live.lua`, which renews a consumer name with its liveness.
pub(crate) const HOLD_LUA: &str = include_str!("hold.lua");

/// The answer to [`Leases::take`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Take {
    /// The caller holds the lease now.
    Taken,
    /// Someone else holds the key: its value, and the time it has left (`None`: no expiry).
    Held {
        /// The key's value: the holder's token, or whatever a user wrote over it.
        value: String,
        /// How long until it expires.
        left: Option<Duration>,
    },
}

/// The lease scripts, loaded once per [`Leases`] and run with `EVALSHA`.
struct Scripts {
    take: Script,
    hold: Script,
    renew: Script,
    release: Script,
}

/// Take, renew and release leases by token over one connection. Cheap to clone.
#[derive(Clone)]
pub struct Leases {
    conn: RedisConn,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases").finish_non_exhaustive()
    }
}

/// A lease length as the milliseconds the scripts take (at least 1: `PX 0` is an error).
fn millis(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

impl Leases {
    /// Leases stored through `conn`.
    pub fn new(conn: RedisConn) -> Self {
        Self {
            conn,
            scripts: Arc::new(Scripts {
                take: Script::new(include_str!("take.lua")),
                hold: Script::new(HOLD_LUA),
                renew: Script::new(include_str!("renew.lua")),
                release: Script::new(include_str!("release.lua")),
            }),
        }
    }

    /// A fresh holder token (a v4 UUID), unique to one holder.
    pub fn token() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// Takes `key` for `token` for `ttl` if nobody holds it (`take.lua`); otherwise says who does.
    pub async fn take(&self, key: &str, token: &str, ttl: Duration) -> redis::RedisResult<Take> {
        let (taken, value, pttl): (i64, String, i64) = self
            .scripts
            .take
            .key(key)
            .arg(token)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(if taken == 1 {
            Take::Taken
        } else {
            Take::Held {
                value,
                left: u64::try_from(pttl).ok().map(Duration::from_millis),
            }
        })
    }

    /// Takes `key` for `token`, or extends it when `token` already holds it (`hold.lua`); true
    /// while `token` holds it.
    pub async fn hold(&self, key: &str, token: &str, ttl: Duration) -> redis::RedisResult<bool> {
        let held: i64 = self
            .scripts
            .hold
            .key(key)
            .arg(token)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(held == 1)
    }

    /// Extends `key` to `ttl` from now if `token` still holds it (`renew.lua`); false when the
    /// lease is no longer `token`'s (it expired, and perhaps another holder took it).
    pub async fn renew(&self, key: &str, token: &str, ttl: Duration) -> redis::RedisResult<bool> {
        let renewed: i64 = self
            .scripts
            .renew
            .key(key)
            .arg(token)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(renewed == 1)
    }

    /// Deletes `key` if `token` still holds it (`release.lua`); false when it was no longer
    /// `token`'s, and then it is left to its new holder.
    pub async fn release(&self, key: &str, token: &str) -> redis::RedisResult<bool> {
        let released: i64 = self
            .scripts
            .release
            .key(key)
            .arg(token)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(released == 1)
    }
}

#[cfg(test)]
mod tests;
