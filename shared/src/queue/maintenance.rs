//! Queue upkeep: promoting due delayed jobs, trimming acknowledged entries (never unacknowledged
//! ones) with the repairs that ride along, and the depth figures behind `onomancer queue stats`
//! and the depth gauges (computed by one process at a time, read by all at O(lanes) cost).

use std::time::Duration;

use redis::AsyncCommands;
use serde::Serialize;

use crate::ids::TenantId;
use crate::job::Lane;
use crate::queue::{now_ms, Queue, QueueError, GROUP};

/// Depth figures of one lane.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct LaneStats {
    /// The lane.
    pub lane: String,
    /// Entries not yet delivered.
    pub queued: u64,
    /// Delivered, not yet acknowledged.
    pub pending: u64,
    /// Entries kept in the streams (acknowledged ones until trimmed).
    pub length: u64,
    /// Tenants with a stream in this lane.
    pub tenants: u64,
}

/// The whole queue at a glance.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct QueueStats {
    /// Per lane, highest priority first.
    pub lanes: Vec<LaneStats>,
    /// Jobs waiting for a retry or a rate-limit window.
    pub delayed: u64,
    /// Entries in the dead-letter stream.
    pub dead: u64,
}

/// Streams per `upkeep.lua` call and per `depth.lua` call: every call stays short.
const UPKEEP_CHUNK: usize = 50;
const DEPTH_CHUNK: usize = 50;
/// Delayed jobs moved per `promote.lua` call.
const PROMOTE_BATCH: u64 = 100;
/// Published depth figures younger than this are used as they are.
const DEPTH_FRESH: Duration = Duration::from_secs(15);
/// How long the process that computes the depth figures holds the right to (the others read).
const DEPTH_LEASE: Duration = Duration::from_secs(5);

impl Queue {
    /// Tenants with a stream in `lane`, read a few hundred per call (`SSCAN`), so no call grows
    /// with the number of tenants.
    pub async fn lane_tenants(&self, lane: Lane) -> Result<Vec<TenantId>, QueueError> {
        let key = self.keys().lane_tenants(lane);
        let mut conn = self.conn();
        let mut members: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("SSCAN")
                .arg(&key)
                .arg(cursor)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await?;
            members.extend(page);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        members.sort_unstable();
        members.dedup();
        let mut v: Vec<TenantId> = members.into_iter().map(TenantId::new).collect();
        v.sort();
        Ok(v)
    }

    /// Moves due delayed jobs into their streams (and their tenants into the ready index);
    /// returns how many moved.
    pub async fn promote_due(&self) -> Result<u64, QueueError> {
        let keys = self.keys();
        let mut total = 0;
        loop {
            let moved: u64 = self
                .scripts()
                .promote
                .key(keys.delayed())
                .key(keys.delayed_bodies())
                .arg(keys.queue_keys_prefix())
                .arg(now_ms())
                .arg(PROMOTE_BATCH)
                .arg(GROUP)
                .invoke_async(&mut self.conn())
                .await?;
            total += moved;
            if moved < PROMOTE_BATCH {
                return Ok(total);
            }
        }
    }

    /// Puts a wake token on `lane`'s wake list (a worker passing on a token it cannot use).
    pub(crate) async fn wake_lane(&self, lane: Lane) -> Result<(), QueueError> {
        let _: () = self.conn().rpush(self.keys().wake(lane), "1").await?;
        Ok(())
    }

    /// Upkeep of every stream, in short calls (`upkeep.lua`): trims acknowledged entries (never
    /// an unacknowledged one), re-indexes tenants with undelivered entries missing from the
    /// ready index, and hands the entries of unregistered idle consumers to the reclaim. Returns
    /// how many entries were trimmed.
    pub async fn trim_acknowledged(&self) -> Result<u64, QueueError> {
        let keys = self.keys();
        let (mut trimmed, mut reindexed, mut adopted) = (0, 0, 0);
        for lane in Lane::ALL {
            for chunk in self.lane_tenants(lane).await?.chunks(UPKEEP_CHUNK) {
                let mut inv = self.scripts().upkeep.prepare_invoke();
                inv.arg(keys.queue_keys_prefix())
                    .arg(GROUP)
                    .arg(self.config().claim_idle.as_millis() as u64);
                for tenant in chunk {
                    inv.key(keys.stream(tenant, lane))
                        .arg(lane.as_str())
                        .arg(tenant.as_str());
                }
                let (t, r, a): (u64, u64, u64) = inv.invoke_async(&mut self.conn()).await?;
                (trimmed, reindexed, adopted) = (trimmed + t, reindexed + r, adopted + a);
            }
        }
        if reindexed > 0 {
            tracing::warn!(
                streams = reindexed,
                "streams with undelivered entries were missing from the ready index; re-indexed"
            );
        }
        if adopted > 0 {
            tracing::warn!(
                streams = adopted,
                "entries pending for consumers that are not live were handed to the reclaim"
            );
        }
        Ok(trimmed)
    }

    /// Exact depth figures (one short `depth.lua` call per chunk of streams); updates this
    /// process's depth gauges and publishes the figures for every other process.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut c = self.conn();
        let keys = self.keys();
        let mut lanes = Vec::new();
        for lane in Lane::ALL {
            let tenants = self.lane_tenants(lane).await?;
            let mut s = LaneStats {
                lane: lane.as_str().to_owned(),
                tenants: tenants.len() as u64,
                ..LaneStats::default()
            };
            for chunk in tenants.chunks(DEPTH_CHUNK) {
                let mut inv = self.scripts().depth.prepare_invoke();
                inv.arg(GROUP);
                for tenant in chunk {
                    inv.key(keys.stream(tenant, lane));
                }
                let (queued, pending, length): (u64, u64, u64) = inv.invoke_async(&mut c).await?;
                s.queued += queued;
                s.pending += pending;
                s.length += length;
            }
            lanes.push(s);
        }
        let delayed: u64 = c.zcard(keys.delayed()).await?;
        let dead: u64 = c.xlen(keys.dead_letter()).await?;
        let stats = QueueStats {
            lanes,
            delayed,
            dead,
        };
        self.set_depth_gauges(&stats);
        let mut fields: Vec<(String, u64)> = vec![
            ("at".into(), now_ms() as u64),
            ("delayed".into(), stats.delayed),
            ("dead".into(), stats.dead),
        ];
        for l in &stats.lanes {
            fields.push((format!("{}:queued", l.lane), l.queued));
            fields.push((format!("{}:pending", l.lane), l.pending));
            fields.push((format!("{}:length", l.lane), l.length));
            fields.push((format!("{}:tenants", l.lane), l.tenants));
        }
        let _: () = c.hset_multiple(keys.depth(), &fields).await?;
        Ok(stats)
    }

    /// Refreshes this process's depth gauges at O(lanes) cost: from the published figures while
    /// they are fresh; otherwise one process (whoever takes the short depth lease) computes and
    /// publishes them, and the others keep the last published ones.
    pub async fn refresh_depth_gauges(&self) -> Result<(), QueueError> {
        let mut c = self.conn();
        let keys = self.keys();
        let published: std::collections::HashMap<String, u64> = c.hgetall(keys.depth()).await?;
        let at = published.get("at").copied().unwrap_or(0) as i64;
        if now_ms() - at < DEPTH_FRESH.as_millis() as i64 {
            self.set_depth_gauges(&QueueStats::from_published(&published));
            return Ok(());
        }
        let won: Option<String> = redis::cmd("SET")
            .arg(keys.depth_lease())
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(DEPTH_LEASE.as_millis() as u64)
            .query_async(&mut c)
            .await?;
        if won.is_some() {
            self.stats().await?;
        } else if !published.is_empty() {
            self.set_depth_gauges(&QueueStats::from_published(&published));
        }
        Ok(())
    }

    fn set_depth_gauges(&self, stats: &QueueStats) {
        let m = self.metrics();
        for l in &stats.lanes {
            m.depth.with_label_values(&[&l.lane]).set(l.queued as i64);
            m.pending
                .with_label_values(&[&l.lane])
                .set(l.pending as i64);
        }
        m.delayed
            .with_label_values(&[self.keys().name()])
            .set(stats.delayed as i64);
        m.dead
            .with_label_values(&[self.keys().name()])
            .set(stats.dead as i64);
    }
}

impl QueueStats {
    /// The figures as published in the depth hash (missing fields read as 0).
    fn from_published(f: &std::collections::HashMap<String, u64>) -> Self {
        let get = |k: &str| f.get(k).copied().unwrap_or(0);
        Self {
            lanes: Lane::ALL
                .into_iter()
                .map(|lane| {
                    let l = lane.as_str();
                    LaneStats {
                        lane: l.to_owned(),
                        queued: get(&format!("{l}:queued")),
                        pending: get(&format!("{l}:pending")),
                        length: get(&format!("{l}:length")),
                        tenants: get(&format!("{l}:tenants")),
                    }
                })
                .collect(),
            delayed: get("delayed"),
            dead: get("dead"),
        }
    }
}
