//! A worker's liveness: the lease on its consumer name, and its expiry in the consumers zset,
//! renewed together every third of the claim-idle time. Peers reclaim the entries of a consumer
//! only once its expiry has passed, so a live worker's jobs are never taken, however long they
//! run, and nothing is extended per entry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::queue::{Queue, QueueError};

/// Whether the consumer was live when it renewed (`live.lua`'s `lapsed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Renewal {
    /// Live, renewed in time.
    Live,
    /// Its expiry had passed: peers may have reclaimed some of its jobs (they may run twice).
    Lapsed,
    /// Not registered: a first renewal, or peers reclaimed everything and forgot it.
    Unregistered,
    /// Another process holds the consumer name.
    NameLost,
}

/// How often liveness is renewed: a third of the shorter of claim-idle and the name lease.
pub(crate) fn renew_every(queue: &Queue, lease: Duration) -> Duration {
    (queue.config().claim_idle.min(lease) / 3).max(Duration::from_millis(10))
}

/// Renews the name lease and the liveness of `consumer` (`live.lua`).
pub(crate) async fn renew(
    queue: &Queue,
    consumer: &str,
    token: &str,
    lease: Duration,
) -> Result<Renewal, QueueError> {
    let keys = queue.keys();
    let (held, lapsed): (i64, i64) = queue
        .scripts()
        .live
        .key(keys.consumer_lease(consumer))
        .key(keys.consumers())
        .key(keys.consumers_tick())
        .arg(token)
        .arg(lease.as_millis() as u64)
        .arg(consumer)
        .arg(queue.config().claim_idle.as_millis() as u64)
        .invoke_async(&mut queue.conn())
        .await?;
    Ok(match (held, lapsed) {
        (0, _) => Renewal::NameLost,
        (_, 0) => Renewal::Live,
        (_, 1) => Renewal::Lapsed,
        _ => Renewal::Unregistered,
    })
}

/// Renews liveness until `stop`, logging when this worker was presumed dead (it stalled past
/// the claim-idle time, so peers may have taken over its jobs) or lost its name.
pub(crate) async fn run_heartbeat(
    queue: Queue,
    consumer: String,
    token: String,
    lease: Duration,
    stop: Arc<Notify>,
) {
    let every = renew_every(&queue, lease);
    loop {
        tokio::select! {
            _ = stop.notified() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match renew(&queue, &consumer, &token, lease).await {
            Ok(Renewal::Live) => {}
            Ok(Renewal::Lapsed | Renewal::Unregistered) => tracing::error!(
                consumer,
                claim_idle_ms = queue.config().claim_idle.as_millis() as u64,
                "this worker could not renew its liveness within the claim-idle time and was presumed dead; peers may have taken over its running jobs"
            ),
            Ok(Renewal::NameLost) => tracing::error!(
                consumer,
                "another process took this consumer name's lease (this one stalled past it)"
            ),
            Err(e) => tracing::warn!(error = %e, "renewing this worker's liveness failed"),
        }
    }
}

/// Takes the lease on a consumer name for `token`. A name still leased by an earlier incarnation
/// of this worker (it crashed; same host and pid, as in a restarted container) is waited for until
/// its lease expires, so the restarted worker drains its own pending entries; a name that stays
/// leased longer is held by a live duplicate, and a unique variant is used instead.
pub(crate) async fn take_consumer_lease(
    queue: &Queue,
    wanted: &str,
    token: &str,
    lease: Duration,
) -> Result<String, QueueError> {
    let key = queue.keys().consumer_lease(wanted);
    let deadline = Instant::now() + lease + Duration::from_millis(500);
    let mut warned = false;
    while Instant::now() < deadline {
        if queue.leases().hold(&key, token, lease).await? {
            return Ok(wanted.to_owned());
        }
        if !warned {
            tracing::warn!(
                consumer = wanted,
                wait_ms = lease.as_millis() as u64,
                "consumer name is leased (a previous run that crashed, or a live duplicate); waiting for the lease to expire"
            );
            warned = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let name = format!(
        "{wanted}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    tracing::warn!(
        consumer = wanted,
        using = name,
        "consumer name is held by a live worker; using a unique variant"
    );
    queue
        .leases()
        .hold(&queue.keys().consumer_lease(&name), token, lease)
        .await?;
    Ok(name)
}

/// A clean stop: leaves the consumers zset (or, with entries still pending after a failed
/// hand-back, expires at once so a peer reclaims them), then releases the name lease by token
/// (a lease another process took since is left alone).
pub(crate) async fn retire(queue: &Queue, consumer: &str, token: &str) {
    let keys = queue.keys();
    let left: redis::RedisResult<i64> = queue
        .scripts()
        .retire
        .key(keys.consumers())
        .key(keys.owned(consumer))
        .arg(consumer)
        .invoke_async(&mut queue.conn())
        .await;
    match left {
        Ok(0) => {}
        Ok(_) => tracing::warn!(
            consumer,
            "entries are still pending for this worker; it is marked dead so a peer reclaims them now"
        ),
        Err(e) => tracing::warn!(error = %e, "could not retire this worker's liveness; peers reclaim after the claim-idle time"),
    }
    let released = queue
        .leases()
        .release(&keys.consumer_lease(consumer), token)
        .await;
    if let Err(e) = released {
        tracing::warn!(error = %e, "could not release this worker's consumer name; it expires with its lease");
    }
}
