//! The Redis Streams job queue: one stream per (lane, tenant), read through one consumer group
//! by every worker; per lane, a ready index of the tenants with undelivered entries (kept by the
//! same scripts that add entries) that claims rotate over, and a wake list idle workers block on;
//! a sorted set of live consumers whose expired members' entries are reclaimed; a sorted set for
//! delayed jobs (retries, rate-limit deferrals); a dead-letter stream; a status hash per job.
//!
//! Guarantees: from the moment `enqueue` returns, the job is in Redis; it ends acknowledged or in
//! the dead-letter stream with its reason. Delivery is at least once. See ARCHITECTURE.md.

mod admit;
mod backoff;
mod config;
mod dlq;
mod maintenance;
mod metrics;
mod ratelimit;
mod scripts;
mod status;
mod worker;

use std::sync::Arc;

use redis::AsyncCommands;

pub use admit::AdmitOutcome;
pub use backoff::{spread, RetryPolicy, MAX_SPREAD, MIN_SPREAD};
pub use config::{QueueConfig, QueueTuning, ReservedShare};
pub use dlq::DeadLetter;
pub use maintenance::{LaneStats, QueueStats};
pub use metrics::QueueMetrics;
pub use ratelimit::{RateLimit, RateLimiter};
pub use status::{JobState, JobStatus};
pub use worker::{default_consumer_name, JobHandler, WorkerHandle, WorkerOptions, WorkerRuntime};

use crate::ids::{JobId, TenantId};
use crate::job::{JobKind, Lane, NewJob};
use crate::keys::KeySpace;
use crate::lease::Leases;
use crate::redis_conn::RedisConn;
use scripts::Scripts;

/// The consumer group every worker joins.
pub const GROUP: &str = "workers";

/// Jobs per `enqueue_batch.lua` call: small enough that one call stays well under a millisecond
/// of Redis time (other clients wait while a script runs).
const ENQUEUE_BATCH: usize = 50;

/// What went wrong talking to the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis could not be reached or answered with an error; nothing was stored.
    #[error("queue unavailable: {0}")]
    Unavailable(#[from] redis::RedisError),
    /// A stored entry could not be read.
    #[error("corrupt queue data: {0}")]
    Corrupt(String),
}

/// The result of an enqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id (the first job's, when the idempotency key was seen before).
    pub id: JobId,
    /// False when the idempotency key matched an earlier job and nothing was created.
    pub created: bool,
}

/// A handle on the queue; cheap to clone.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    conn: RedisConn,
    redis_url: String,
    keys: KeySpace,
    config: QueueConfig,
    scripts: Scripts,
    leases: Leases,
    metrics: QueueMetrics,
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Queue {
    /// Connects to Redis and registers the queue metrics in `registry`.
    pub async fn connect(
        redis_url: &str,
        keys: KeySpace,
        config: QueueConfig,
        registry: &prometheus::Registry,
    ) -> Result<Self, QueueError> {
        let conn = RedisConn::connect(redis_url).await?;
        let metrics = QueueMetrics::register(registry)
            .map_err(|e| QueueError::Corrupt(format!("metrics registration: {e}")))?;
        Ok(Self::from_parts(conn, redis_url, keys, config, metrics))
    }

    /// Connects to `settings.redis_url` as [`Queue::connect`] does, waiting for Redis with
    /// [`crate::redis_conn::wait_for_redis`] while it is unreachable; `Ok(None)` when `shutdown`
    /// came first. How every role starts.
    pub async fn connect_waiting(
        settings: &crate::settings::Settings,
        config: QueueConfig,
        registry: &prometheus::Registry,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Result<Option<Self>, QueueError> {
        let url = &settings.redis_url;
        let keys = settings.key_space();
        crate::redis_conn::wait_for_redis(
            url,
            shutdown,
            || Self::connect(url, keys.clone(), config.clone(), registry),
            |e: &QueueError| matches!(e, QueueError::Unavailable(_)),
        )
        .await
    }

    /// Builds a queue on an existing connection.
    pub fn from_parts(
        conn: RedisConn,
        redis_url: &str,
        keys: KeySpace,
        config: QueueConfig,
        metrics: QueueMetrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                leases: Leases::new(conn.clone()),
                conn,
                redis_url: redis_url.to_owned(),
                keys,
                config,
                scripts: Scripts::new(),
                metrics,
            }),
        }
    }

    /// The shared connection.
    pub fn conn(&self) -> RedisConn {
        self.inner.conn.clone()
    }

    /// A new connection of its own (blocking reads must not hold up the shared one).
    pub async fn dedicated_connection(&self) -> Result<RedisConn, QueueError> {
        Ok(RedisConn::connect(&self.inner.redis_url).await?)
    }

    /// The key space.
    pub fn keys(&self) -> &KeySpace {
        &self.inner.keys
    }

    /// The tuning in force.
    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    /// The queue's metrics.
    pub fn metrics(&self) -> &QueueMetrics {
        &self.inner.metrics
    }

    pub(crate) fn scripts(&self) -> &Scripts {
        &self.inner.scripts
    }

    /// (name, SHA1) of the queue's per-job and per-claim scripts, so benchmarks and diagnostics
    /// can attribute `EVALSHA` calls seen in `SLOWLOG` to a script.
    pub fn script_hashes(&self) -> Vec<(&'static str, String)> {
        self.inner.scripts.hashes()
    }

    /// Leases over the queue's connection (scheduler leadership, worker consumer names).
    pub fn leases(&self) -> &Leases {
        &self.inner.leases
    }

    /// `PING`: is Redis reachable?
    pub async fn ping(&self) -> Result<(), QueueError> {
        Ok(self.inner.conn.ping().await?)
    }

    /// Enqueues one job. With an idempotency key, the same key within the window returns the first
    /// job's id and creates nothing.
    pub async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        let mut out = self.enqueue_many(vec![job]).await?;
        Ok(out.pop().expect("one result per job"))
    }

    /// Enqueues many jobs: those without an idempotency key in batch scripts of
    /// [`ENQUEUE_BATCH`] jobs, the others one script each; the calls are pipelined on the
    /// multiplexed connection. Every job is indexed as ready in the same step it is stored.
    pub async fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let cfg = &self.inner.config;
        let keys = self.keys();
        let prefix = keys.queue_keys_prefix();
        let mut results: Vec<Option<Enqueued>> = Vec::with_capacity(jobs.len());
        let mut idempotent = Vec::new();
        let mut batches: Vec<redis::ScriptInvocation<'_>> = Vec::new();
        let mut in_batch = ENQUEUE_BATCH;
        for job in jobs {
            let id = JobId::generate();
            let (tenant, kind, lane) = (job.tenant.clone(), job.kind.clone(), job.lane);
            let stream = keys.stream(&tenant, lane);
            let status = keys.status(&tenant, &id);
            let idem = job.idempotency_key.clone();
            let env = job.into_envelope(id.clone(), now).encode();
            let enqueued = self
                .inner
                .metrics
                .enqueued
                .with_label_values(&[tenant.as_str(), kind.as_str()]);
            if let Some(key) = idem {
                let mut inv = self.scripts().enqueue.prepare_invoke();
                self.enqueue_script_args(
                    &mut inv,
                    [keys.idempotency(&tenant, &key), stream, status],
                    &id,
                    env,
                    (&tenant, &kind, lane),
                    now,
                );
                idempotent.push((results.len(), inv, enqueued));
                results.push(None);
                continue;
            }
            if in_batch == ENQUEUE_BATCH {
                let mut inv = self.scripts().enqueue_batch.prepare_invoke();
                inv.arg(&prefix)
                    .arg(GROUP)
                    .arg(cfg.status_ttl.as_secs().max(1))
                    .arg(now);
                batches.push(inv);
                in_batch = 0;
            }
            let inv = batches.last_mut().expect("a batch is open");
            inv.key(stream).key(status);
            inv.arg(id.as_str())
                .arg(env)
                .arg(tenant.as_str())
                .arg(kind.as_str())
                .arg(lane.as_str());
            in_batch += 1;
            enqueued.inc();
            results.push(Some(Enqueued { id, created: true }));
        }
        let conn = self.conn();
        let stored = futures::future::join_all(batches.iter().map(|inv| {
            let mut c = conn.clone();
            async move { inv.invoke_async::<i64>(&mut c).await }
        }));
        let answers = futures::future::join_all(idempotent.iter().map(|(_, inv, _)| {
            let mut c = conn.clone();
            async move { inv.invoke_async::<(String, i64)>(&mut c).await }
        }));
        let (stored, answers) = futures::join!(stored, answers);
        for r in stored {
            r?;
        }
        for ((slot, _, enqueued), answer) in idempotent.iter().zip(answers) {
            let (id, created) = answer?;
            if created == 1 {
                enqueued.inc();
            }
            results[*slot] = Some(Enqueued {
                id: JobId::new(id),
                created: created == 1,
            });
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every slot filled"))
            .collect())
    }

    /// `enqueue.lua`'s keys (idempotency key, stream, status hash) and arguments, appended to
    /// `inv`: one spelling for the script alone and composed after the rate check.
    fn enqueue_script_args(
        &self,
        inv: &mut redis::ScriptInvocation<'_>,
        keys: [String; 3],
        id: &JobId,
        env: Vec<u8>,
        (tenant, kind, lane): (&TenantId, &JobKind, Lane),
        now: i64,
    ) {
        let cfg = &self.inner.config;
        for k in keys {
            inv.key(k);
        }
        inv.arg(id.as_str())
            .arg(env)
            .arg(cfg.idempotency_window.as_secs().max(1))
            .arg(cfg.status_ttl.as_secs().max(1))
            .arg(tenant.as_str())
            .arg(kind.as_str())
            .arg(lane.as_str())
            .arg(now)
            .arg(self.keys().queue_keys_prefix())
            .arg(GROUP);
    }

    /// Records how far a running job has got (shown by `GET /v1/jobs/{id}` and the CLI).
    pub async fn set_progress(
        &self,
        tenant: &TenantId,
        id: &JobId,
        progress: &serde_json::Value,
    ) -> Result<(), QueueError> {
        let _: () = self
            .conn()
            .hset(
                self.keys().status(tenant, id),
                "progress",
                progress.to_string(),
            )
            .await?;
        Ok(())
    }

    /// The status of a job of `tenant`, if it is known (and not expired).
    pub async fn status(
        &self,
        tenant: &TenantId,
        id: &JobId,
    ) -> Result<Option<JobStatus>, QueueError> {
        let fields: std::collections::HashMap<String, String> =
            self.conn().hgetall(self.keys().status(tenant, id)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        Ok(JobStatus::from_fields(tenant, id, fields))
    }
}

#[cfg(test)]
mod tests;
