//! Redis markers that make each posted part of a job's output happen once: a short "pending"
//! lease while posting, then `done:<message id>` for a day (`claim_post.lua`).

use std::time::Duration;

use crate::ids::{JobId, TenantId};
use crate::keys::KeySpace;
use crate::redis_conn::RedisConn;

/// How long a "done" marker is kept: longer than any job's retry horizon.
pub const DONE_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a "pending" lease lasts by default: longer than one Discord call (its default
/// timeout is 20 s). A poster's lease is 1.5 times its call timeout.
pub const PENDING_LEASE: Duration = Duration::from_secs(30);

/// What the marker says about one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody posted it yet: this run holds the lease and must post.
    Claimed,
    /// Already posted, as this message.
    Done(u64),
    /// Another run is posting it right now; look again after this wait.
    Busy(Duration),
}

/// The markers of one deployment's key space.
#[derive(Clone, Debug)]
pub struct PostMarkers {
    conn: RedisConn,
    keys: KeySpace,
    lease: Duration,
    claim: redis::Script,
    release: redis::Script,
}

impl PostMarkers {
    /// Markers stored through `conn` under `keys`, with the default lease.
    pub fn new(conn: RedisConn, keys: KeySpace) -> Self {
        Self {
            conn,
            keys,
            lease: PENDING_LEASE,
            claim: redis::Script::new(include_str!("claim_post.lua")),
            release: redis::Script::new(include_str!("release_post.lua")),
        }
    }

    /// The same markers with a "pending" lease of `lease`.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The "pending" lease.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The marker key of part `part` of job `job`.
    pub fn key(&self, tenant: &TenantId, job: &JobId, part: usize) -> String {
        self.keys.data(tenant, format_args!("posted:{job}:{part}"))
    }

    /// Claims a part (see [`Claim`]).
    pub async fn claim(
        &self,
        tenant: &TenantId,
        job: &JobId,
        part: usize,
    ) -> redis::RedisResult<Claim> {
        let mut conn = self.conn.clone();
        let reply: Vec<String> = self
            .claim
            .key(self.key(tenant, job, part))
            .arg(self.lease.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        Ok(match reply.first().map(String::as_str) {
            Some("done") => Claim::Done(reply.get(1).and_then(|s| s.parse().ok()).unwrap_or(0)),
            Some("busy") => {
                let ms = reply
                    .get(1)
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(1000);
                Claim::Busy(Duration::from_millis(ms.max(100) as u64))
            }
            _ => Claim::Claimed,
        })
    }

    /// Records that a part was posted as `message_id`, replacing the lease.
    pub async fn mark_done(
        &self,
        tenant: &TenantId,
        job: &JobId,
        part: usize,
        message_id: u64,
    ) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.key(tenant, job, part))
            .arg(format!("done:{message_id}"))
            .arg("EX")
            .arg(DONE_TTL.as_secs())
            .query_async(&mut conn)
            .await
    }

    /// Gives a claimed part back (the post failed), so a retry may claim it at once.
    pub async fn release(
        &self,
        tenant: &TenantId,
        job: &JobId,
        part: usize,
    ) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .release
            .key(self.key(tenant, job, part))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}
