//! Queue upkeep: promoting due delayed jobs, trimming acknowledged entries (never unacknowledged
//! ones), and the depth figures behind `onomancer queue stats` and the depth gauges.

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

fn info_u64(groups: &[Vec<(String, redis::Value)>], field: &str) -> u64 {
    groups
        .iter()
        .find(|g| {
            g.iter().any(|(k, v)| {
                k == "name"
                    && redis::from_redis_value_ref::<String>(v).ok().as_deref() == Some(GROUP)
            })
        })
        .and_then(|g| g.iter().find(|(k, _)| k == field))
        .and_then(|(_, v)| redis::from_redis_value_ref::<u64>(v).ok())
        .unwrap_or(0)
}

impl Queue {
    /// Tenants with a stream in `lane`.
    pub async fn lane_tenants(&self, lane: Lane) -> Result<Vec<TenantId>, QueueError> {
        let members: Vec<String> = self.conn().smembers(self.keys().lane_tenants(lane)).await?;
        let mut v: Vec<TenantId> = members.into_iter().map(TenantId::new).collect();
        v.sort();
        Ok(v)
    }

    /// Moves due delayed jobs into their streams; returns how many moved.
    pub async fn promote_due(&self) -> Result<u64, QueueError> {
        let keys = self.keys();
        let mut total = 0;
        loop {
            let moved: u64 = self
                .scripts()
                .promote
                .key(keys.delayed())
                .key(keys.delayed_bodies())
                .arg(format!("{}q:", keys.queue_prefix()))
                .arg(now_ms())
                .arg(500)
                .invoke_async(&mut self.conn())
                .await?;
            total += moved;
            if moved < 500 {
                return Ok(total);
            }
        }
    }

    /// Trims acknowledged entries from every stream; returns how many entries were removed.
    pub async fn trim_acknowledged(&self) -> Result<u64, QueueError> {
        let mut removed = 0;
        for lane in Lane::ALL {
            for tenant in self.lane_tenants(lane).await? {
                let n: u64 = self
                    .scripts()
                    .trim
                    .key(self.keys().stream(&tenant, lane))
                    .arg(GROUP)
                    .invoke_async(&mut self.conn())
                    .await?;
                removed += n;
            }
        }
        Ok(removed)
    }

    /// Depth figures, and updates the depth gauges.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut c = self.conn();
        let mut lanes = Vec::new();
        for lane in Lane::ALL {
            let tenants = self.lane_tenants(lane).await?;
            let mut s = LaneStats {
                lane: lane.as_str().to_owned(),
                tenants: tenants.len() as u64,
                ..LaneStats::default()
            };
            for tenant in &tenants {
                let stream = self.keys().stream(tenant, lane);
                let groups: redis::RedisResult<Vec<Vec<(String, redis::Value)>>> =
                    redis::cmd("XINFO")
                        .arg("GROUPS")
                        .arg(&stream)
                        .query_async(&mut c)
                        .await;
                let groups = match groups {
                    Ok(g) => g,
                    Err(e) if e.code().is_some() => continue,
                    Err(e) => return Err(e.into()),
                };
                s.queued += info_u64(&groups, "lag");
                s.pending += info_u64(&groups, "pending");
                let len: u64 = c.xlen(&stream).await?;
                s.length += len;
            }
            self.metrics()
                .depth
                .with_label_values(&[lane.as_str()])
                .set(s.queued as i64);
            self.metrics()
                .pending
                .with_label_values(&[lane.as_str()])
                .set(s.pending as i64);
            lanes.push(s);
        }
        let delayed: u64 = c.zcard(self.keys().delayed()).await?;
        let dead: u64 = c.xlen(self.keys().dead_letter()).await?;
        self.metrics()
            .delayed
            .with_label_values(&[self.keys().name()])
            .set(delayed as i64);
        self.metrics()
            .dead
            .with_label_values(&[self.keys().name()])
            .set(dead as i64);
        Ok(QueueStats {
            lanes,
            delayed,
            dead,
        })
    }
}
