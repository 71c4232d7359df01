//! Fleet-wide upstream pauses. When an upstream says a whole service is limited, not one route
//! or one job (Discord's global 429, a 429 on the deployment's one Claude key, a Google quota of
//! a service account), every worker stops calling it until the wait is over: the worker that got
//! the answer sets a pause key in Redis that expires after the upstream's `retry-after`
//! (`pause.lua`), and every client checks it before each call, turning a pause in force into
//! [`JobError::Deferred`] with the time left. Calls that nobody makes cannot be refused, so a
//! limited upstream sees one 429 per window instead of one per waiting job.
//!
//! A pause is advisory: if Redis cannot be read the call goes ahead (the upstream then answers
//! 429 itself, which defers the job), so Redis trouble never blocks work here.

use std::time::Duration;

use crate::job::JobError;
use crate::keys::KeySpace;
use crate::redis_conn::RedisConn;

/// A pause in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pause {
    /// Time left.
    pub remaining: Duration,
    /// What the upstream said, as recorded by the worker that paused it.
    pub reason: String,
}

impl Pause {
    /// The deferral of a job that meets this pause on `scope`.
    pub fn defer(&self, scope: &str) -> JobError {
        JobError::deferred(
            self.remaining,
            format!(
                "{scope} is paused for every worker for {:.1}s more ({})",
                self.remaining.as_secs_f64(),
                self.reason
            ),
        )
    }
}

/// The pause keys of one deployment's key space. Cheap to clone.
#[derive(Clone, Debug)]
pub struct UpstreamPause {
    conn: RedisConn,
    keys: KeySpace,
    script: redis::Script,
}

impl UpstreamPause {
    /// Pauses stored through `conn` under `keys`.
    pub fn new(conn: RedisConn, keys: KeySpace) -> Self {
        Self {
            conn,
            keys,
            script: redis::Script::new(include_str!("pause.lua")),
        }
    }

    /// The key of a scope (`claude`, `discord`, `discord:channel:<id>`, `google:<account>`).
    /// Under the deployment's hash tag, so scripts may combine it with other keys of the tag.
    pub fn key(&self, scope: &str) -> String {
        self.keys.global(format_args!("upstream:pause:{scope}"))
    }

    /// The key space the pauses live in.
    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }

    /// The connection the pauses are read through.
    pub fn conn(&self) -> RedisConn {
        self.conn.clone()
    }

    /// The pause in force on `scope`, if any.
    pub async fn current(&self, scope: &str) -> redis::RedisResult<Option<Pause>> {
        let key = self.key(scope);
        let mut conn = self.conn.clone();
        let (reason, ttl): (Option<String>, i64) = redis::pipe()
            .atomic()
            .get(&key)
            .pttl(&key)
            .query_async(&mut conn)
            .await?;
        Ok(match (reason, ttl) {
            (Some(reason), ms) if ms > 0 => Some(Pause {
                remaining: Duration::from_millis(ms as u64),
                reason,
            }),
            _ => None,
        })
    }

    /// Before a call: `Err(Deferred)` while `scope` is paused. A Redis failure lets the call
    /// through (logged), so a pause never turns Redis trouble into failed work.
    pub async fn check(&self, scope: &str) -> Result<(), JobError> {
        match self.current(scope).await {
            Ok(None) => Ok(()),
            Ok(Some(p)) => Err(p.defer(scope)),
            Err(e) => {
                tracing::warn!(scope, error = %e, "could not read the upstream pause; calling anyway");
                Ok(())
            }
        }
    }

    /// Pauses `scope` for every worker for `wait` (kept if a longer pause is in force) and
    /// returns the pause now in force. Logged once per call, at info: a pause is news.
    pub async fn pause(
        &self,
        scope: &str,
        wait: Duration,
        reason: &str,
    ) -> redis::RedisResult<Duration> {
        let ms = (wait.as_millis() as u64).max(1);
        let mut conn = self.conn.clone();
        let in_force: i64 = self
            .script
            .key(self.key(scope))
            .arg(ms)
            .arg(reason)
            .invoke_async(&mut conn)
            .await?;
        let in_force = Duration::from_millis(in_force.max(0) as u64);
        tracing::info!(
            scope,
            wait_ms = in_force.as_millis() as u64,
            reason,
            "upstream paused for every worker"
        );
        Ok(in_force)
    }

    /// [`UpstreamPause::pause`] where a failure only costs the fleet-wide effect (the job that
    /// met the limit is deferred either way): logged, not returned.
    pub async fn pause_or_log(&self, scope: &str, wait: Duration, reason: &str) {
        if let Err(e) = self.pause(scope, wait, reason).await {
            tracing::warn!(scope, error = %e, "could not record the upstream pause");
        }
    }
}

#[cfg(test)]
mod tests;
