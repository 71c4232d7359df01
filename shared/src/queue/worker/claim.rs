//! Claiming: fair reads across tenant streams in lane priority order, a restarted consumer's own
//! pending entries, reclaiming entries of dead consumers with XAUTOCLAIM, claim extension for long
//! jobs, and the consumer-name lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::streams::{StreamId, StreamReadReply};
use redis::AsyncCommands;
use tokio::sync::Notify;

use super::finish::Claimed;
use super::{InFlight, WorkerOptions};
use crate::ids::TenantId;
use crate::job::{Envelope, Lane};
use crate::queue::{now_ms, Queue, QueueError, GROUP};
use crate::redis_conn::RedisConn;

/// How often a worker refreshes its queue depth gauges.
const DEPTH_EVERY: Duration = Duration::from_secs(5);

fn entry_bytes(e: &mut StreamId) -> Vec<u8> {
    match e.map.remove("e") {
        Some(redis::Value::BulkString(b)) => b,
        _ => Vec::new(),
    }
}

/// Reads batches for one worker.
pub(crate) struct Claimer {
    queue: Queue,
    options: WorkerOptions,
    /// Connection for blocking reads, so they never hold up other commands.
    blocking: RedisConn,
    /// Streams per lane, with their tenants, refreshed periodically.
    streams: Vec<(Lane, Vec<(String, TenantId)>)>,
    /// Stream key -> (tenant, lane).
    owners: HashMap<String, (TenantId, Lane)>,
    refreshed: Option<Instant>,
    reclaimed: Instant,
    promoted: Instant,
    /// When the depth gauges were last refreshed (every worker exports them).
    measured: Option<Instant>,
}

impl Claimer {
    pub(crate) async fn new(queue: Queue, options: WorkerOptions) -> Result<Self, QueueError> {
        let blocking = queue.dedicated_connection().await?;
        let now = Instant::now();
        Ok(Self {
            queue,
            options,
            blocking,
            streams: Vec::new(),
            owners: HashMap::new(),
            refreshed: None,
            reclaimed: now,
            promoted: now,
            measured: None,
        })
    }

    async fn refresh(&mut self) -> Result<(), QueueError> {
        if self
            .refreshed
            .is_some_and(|t| t.elapsed() < self.options.tenant_refresh)
        {
            return Ok(());
        }
        let mut streams = Vec::new();
        for lane in Lane::ALL {
            let mut v = Vec::new();
            for tenant in self.queue.lane_tenants(lane).await? {
                let key = self.queue.keys().stream(&tenant, lane);
                if !self.owners.contains_key(&key) {
                    self.queue.create_group(&key).await?;
                    self.owners.insert(key.clone(), (tenant.clone(), lane));
                }
                v.push((key, tenant));
            }
            streams.push((lane, v));
        }
        self.streams = streams;
        self.refreshed = Some(Instant::now());
        Ok(())
    }

    fn to_claimed(&self, stream: &str, mut e: StreamId, deliveries: u32) -> Option<Claimed> {
        let (tenant, lane) = self.owners.get(stream)?.clone();
        Some(Claimed {
            stream: stream.to_owned(),
            entry_id: std::mem::take(&mut e.id),
            raw: entry_bytes(&mut e),
            tenant,
            lane,
            deliveries,
        })
    }

    /// Interleaves entries of several streams (tenants) so that no tenant's batch runs ahead.
    fn interleave(&self, reply: StreamReadReply, out: &mut Vec<Claimed>) {
        let mut per_stream: Vec<std::vec::IntoIter<StreamId>> = Vec::new();
        let mut names = Vec::new();
        for k in reply.keys {
            names.push(k.key);
            per_stream.push(k.ids.into_iter());
        }
        loop {
            let mut any = false;
            for (i, it) in per_stream.iter_mut().enumerate() {
                if let Some(e) = it.next() {
                    any = true;
                    if let Some(c) = self.to_claimed(&names[i], e, 1) {
                        out.push(c);
                    }
                }
            }
            if !any {
                break;
            }
        }
    }

    async fn read(
        &self,
        conn: &mut RedisConn,
        streams: &[&str],
        count: usize,
        block: Option<Duration>,
    ) -> Result<StreamReadReply, QueueError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.options.consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(b) = block {
            cmd.arg("BLOCK").arg(b.as_millis() as u64);
        }
        cmd.arg("STREAMS").arg(streams);
        for _ in streams {
            cmd.arg(">");
        }
        let reply: Option<StreamReadReply> = cmd.query_async(conn).await?;
        Ok(reply.unwrap_or_default())
    }

    /// Up to about `free` entries: reclaimed ones first, then new ones by lane priority, blocking
    /// briefly when there is nothing to do.
    pub(crate) async fn next_batch(
        &mut self,
        free: usize,
        may_block: bool,
    ) -> Result<Vec<Claimed>, QueueError> {
        self.refresh().await?;
        let mut out = Vec::new();
        if self.options.promote_delayed && self.promoted.elapsed() >= Duration::from_millis(200) {
            self.queue.promote_due().await?;
            self.promoted = Instant::now();
        }
        if self.measured.is_none_or(|t| t.elapsed() >= DEPTH_EVERY) {
            // Depth gauges for this process's /metrics; a failure here is not a claim failure.
            if let Err(e) = self.queue.stats().await {
                tracing::debug!(error = %e, "refreshing queue depth gauges failed");
            }
            self.measured = Some(Instant::now());
        }
        let reclaim_every = self.queue.config().claim_idle / 2;
        if self.reclaimed.elapsed() >= reclaim_every {
            self.reclaim(free, &mut out).await?;
            self.reclaimed = Instant::now();
            if !out.is_empty() {
                return Ok(out);
            }
        }
        let mut shared = self.queue.conn();
        for (_, lane_streams) in &self.streams {
            if lane_streams.is_empty() || out.len() >= free {
                continue;
            }
            let keys: Vec<&str> = lane_streams.iter().map(|(k, _)| k.as_str()).collect();
            let per = (free - out.len()).div_ceil(keys.len()).max(1);
            let reply = self.read(&mut shared, &keys, per, None).await?;
            self.interleave(reply, &mut out);
        }
        if !out.is_empty() || !may_block {
            return Ok(out);
        }
        let all: Vec<&str> = self
            .streams
            .iter()
            .flat_map(|(_, v)| v.iter().map(|(k, _)| k.as_str()))
            .collect();
        if all.is_empty() {
            tokio::time::sleep(self.options.block).await;
            return Ok(out);
        }
        let per = free.div_ceil(all.len()).max(1);
        let mut conn = self.blocking.clone();
        let reply = self
            .read(&mut conn, &all, per, Some(self.options.block))
            .await?;
        self.interleave(reply, &mut out);
        // Highest-priority lane first within the batch.
        out.sort_by_key(|c| c.lane);
        Ok(out)
    }

    /// Takes over entries idle longer than the claim-idle time in any consumer's hands.
    async fn reclaim(&self, free: usize, out: &mut Vec<Claimed>) -> Result<(), QueueError> {
        let idle = self.queue.config().claim_idle.as_millis() as u64;
        for (stream, _) in self.streams.iter().flat_map(|(_, v)| v.iter()) {
            let mut cursor = "0-0".to_owned();
            loop {
                type Reply = (
                    String,
                    Vec<(String, Vec<(String, redis::Value)>, u32)>,
                    Vec<String>,
                );
                let (next, entries, deleted): Reply = self
                    .queue
                    .scripts()
                    .reclaim
                    .key(stream)
                    .arg(GROUP)
                    .arg(&self.options.consumer)
                    .arg(idle)
                    .arg(&cursor)
                    .arg(free.max(1))
                    .invoke_async(&mut self.queue.conn())
                    .await?;
                for id in &deleted {
                    tracing::warn!(stream, entry_id = id, "a pending entry was deleted before it completed (trimmed or removed by an operator)");
                }
                for (id, fields, deliveries) in entries {
                    let e = StreamId {
                        id,
                        map: fields.into_iter().collect(),
                        ..StreamId::default()
                    };
                    if let Some(c) = self.to_claimed(stream, e, deliveries) {
                        self.queue
                            .metrics()
                            .reclaimed
                            .with_label_values(&[c.tenant.as_str(), c.lane.as_str()])
                            .inc();
                        tracing::info!(stream, entry_id = %c.entry_id, deliveries, "reclaimed a stalled job");
                        out.push(c);
                    }
                }
                if next == "0-0" || out.len() >= free {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }

    /// This consumer's own pending entries (left by a previous run under the same name).
    pub(crate) async fn own_pending(&mut self) -> Result<Vec<Claimed>, QueueError> {
        self.refreshed = None;
        self.refresh().await?;
        let mut out = Vec::new();
        let mut c = self.queue.conn();
        let streams: Vec<String> = self.owners.keys().cloned().collect();
        for stream in streams {
            let pending: Vec<(String, String, u64, u32)> = redis::cmd("XPENDING")
                .arg(&stream)
                .arg(GROUP)
                .arg("-")
                .arg("+")
                .arg(10_000)
                .arg(&self.options.consumer)
                .query_async(&mut c)
                .await?;
            if pending.is_empty() {
                continue;
            }
            let counts: HashMap<String, u32> = pending.iter().map(|p| (p.0.clone(), p.3)).collect();
            let ids: Vec<&str> = pending.iter().map(|p| p.0.as_str()).collect();
            let claimed: Vec<StreamId> = {
                let r: redis::streams::StreamClaimReply = redis::cmd("XCLAIM")
                    .arg(&stream)
                    .arg(GROUP)
                    .arg(&self.options.consumer)
                    .arg(0)
                    .arg(&ids)
                    .query_async(&mut c)
                    .await?;
                r.ids
            };
            for e in claimed {
                let deliveries = counts.get(&e.id).copied().unwrap_or(1) + 1;
                if let Some(cl) = self.to_claimed(&stream, e, deliveries) {
                    out.push(cl);
                }
            }
            tracing::info!(
                stream,
                entries = ids.len(),
                "draining this consumer's pending entries first"
            );
        }
        Ok(out)
    }
}

/// Marks a batch of jobs running (one pipeline).
pub(crate) async fn mark_running(
    queue: &Queue,
    consumer: &str,
    jobs: &[(Claimed, Envelope)],
) -> Result<(), QueueError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut pipe = redis::pipe();
    for (_, env) in jobs {
        pipe.cmd("HSET")
            .arg(queue.keys().status(&env.tenant, &env.id))
            .arg("state")
            .arg("running")
            .arg("attempt")
            .arg(env.attempt)
            .arg("consumer")
            .arg(consumer)
            .arg("updated")
            .arg(now)
            .ignore();
    }
    let _: () = pipe.query_async(&mut queue.conn()).await?;
    Ok(())
}

/// Extends claims on in-flight entries and renews the consumer lease, until `stop`.
pub(crate) async fn run_heartbeat(
    queue: Queue,
    options: WorkerOptions,
    token: String,
    inflight: InFlight,
    stop: Arc<Notify>,
) {
    let consumer = options.consumer.clone();
    let lease = options.consumer_lease;
    let every = (queue.config().claim_idle / 3).min(lease / 3);
    loop {
        tokio::select! {
            _ = stop.notified() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let mut by_stream: HashMap<String, Vec<String>> = HashMap::new();
        for (stream, id) in inflight.lock().expect("lock").keys() {
            by_stream
                .entry(stream.clone())
                .or_default()
                .push(id.clone());
        }
        for (stream, ids) in by_stream {
            let r: Result<Vec<String>, _> = queue
                .scripts()
                .extend
                .key(&stream)
                .arg(GROUP)
                .arg(&consumer)
                .arg(&ids)
                .invoke_async(&mut queue.conn())
                .await;
            match r {
                Ok(kept) if kept.len() < ids.len() => tracing::warn!(
                    stream,
                    lost = ids.len() - kept.len(),
                    "some running jobs were taken over by another worker (this one stalled past the claim-idle time)"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "extending job claims failed"),
            }
        }
        match queue
            .hold_lease(&queue.keys().consumer_lease(&consumer), &token, lease)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::error!(
                consumer,
                "another process took this consumer name's lease (this one stalled past it)"
            ),
            Err(e) => tracing::warn!(error = %e, "renewing the consumer lease failed"),
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
        if queue.hold_lease(&key, token, lease).await? {
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
        .hold_lease(&queue.keys().consumer_lease(&name), token, lease)
        .await?;
    Ok(name)
}

/// Drops the lease at a clean stop (only if this process still holds it).
pub(crate) async fn release_consumer_lease(queue: &Queue, consumer: &str, token: &str) {
    let key = queue.keys().consumer_lease(consumer);
    let mut c = queue.conn();
    let holder: redis::RedisResult<Option<String>> = c.get(&key).await;
    if holder.ok().flatten().as_deref() == Some(token) {
        let _: redis::RedisResult<()> = c.del(&key).await;
    }
}
