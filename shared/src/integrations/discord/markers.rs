//! Redis markers that make each posted part of a job's output happen once: a short "pending"
//! lease while posting (a [`Leases`] lease whose token starts with `pending:`), then
//! `done:<message id>` for a day. Taking the lease is atomic, so two runs of the same job (a
//! stalled job reclaimed while its first worker still runs) never both see the marker absent and
//! both post; releasing it is by token, so neither a `done:` marker written in between nor
//! another run's lease is ever deleted.

use std::time::Duration;

use crate::ids::{JobId, TenantId};
use crate::keys::KeySpace;
use crate::lease::{Leases, Take};
use crate::redis_conn::RedisConn;

/// How long a "done" marker is kept: longer than any job's retry horizon.
pub const DONE_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a "pending" lease lasts by default: longer than one Discord call (its default
/// timeout is 20 s). A poster's lease is 1.5 times its call timeout.
pub const PENDING_LEASE: Duration = Duration::from_secs(30);

/// What the marker says about one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody posted it yet: this run holds the lease (by this token) and must post.
    Claimed(String),
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
    leases: Leases,
}

impl PostMarkers {
    /// Markers stored through `conn` under `keys`, with the default lease.
    pub fn new(conn: RedisConn, keys: KeySpace) -> Self {
        Self {
            leases: Leases::new(conn.clone()),
            conn,
            keys,
            lease: PENDING_LEASE,
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
        let token = format!("pending:{}", Leases::token());
        let key = self.key(tenant, job, part);
        Ok(match self.leases.take(&key, &token, self.lease).await? {
            Take::Taken => Claim::Claimed(token),
            Take::Held { value, left } => match value.strip_prefix("done:") {
                Some(id) => Claim::Done(id.parse().unwrap_or(0)),
                None => Claim::Busy(left.unwrap_or_default().max(Duration::from_millis(100))),
            },
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

    /// Gives a claimed part back (the post failed), so a retry may claim it at once; `token` is
    /// the one [`Claim::Claimed`] gave.
    pub async fn release(
        &self,
        tenant: &TenantId,
        job: &JobId,
        part: usize,
        token: &str,
    ) -> redis::RedisResult<()> {
        self.leases
            .release(&self.key(tenant, job, part), token)
            .await?;
        Ok(())
    }
}
