//! `onomancer bench queue` and `onomancer bench lanes`: jobs through the real queue and worker
//! runtimes, on the configured Redis under an isolated namespace that is deleted afterwards.
//! Each prints one JSON line.

mod lanes;
mod queue;
mod redis_stats;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use onomancer_shared::queue::{
    JobHandler, Queue, QueueConfig, WorkerHandle, WorkerOptions, WorkerRuntime,
};
use onomancer_shared::settings::Settings;
use onomancer_shared::{
    Envelope, JobError, JobKind, JobOutcome, JobPayload, KeySpace, Lane, NewJob, TenantId,
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Queue throughput (enqueue, claim, ack with status tracking) over one or many tenants and
    /// workers, Redis time per call, time to first ack, and enqueue-to-start latency.
    Queue(queue::QueueArgs),
    /// Lane waits: bulk jobs saturating every slot of the workers, then interactive and default
    /// jobs arriving; enqueue-to-start per lane.
    Lanes(lanes::LanesArgs),
}

/// A bench job's payload.
#[derive(Serialize, Deserialize)]
struct Probe {
    /// Enqueue time, µs since the epoch.
    t_us: i64,
    /// Run time.
    #[serde(default)]
    sleep_ms: u64,
}

/// To the worker a bench job is a `diag.noop`, so a real worker runs it as one.
impl JobPayload for Probe {
    const KIND: JobKind = JobKind::Noop;
    const LANE: Lane = Lane::Default;
}

/// Records each job's wait (enqueue to start) by lane, then sleeps its run time.
#[derive(Default)]
struct BenchHandler {
    waits_us: Mutex<Vec<(Lane, i64)>>,
}

impl JobHandler for BenchHandler {
    async fn handle(&self, job: Envelope) -> Result<JobOutcome, JobError> {
        let p: Probe = job.payload_as()?;
        let now = chrono::Utc::now().timestamp_micros();
        self.waits_us
            .lock()
            .expect("lock")
            .push((job.lane, now - p.t_us));
        if p.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(p.sleep_ms)).await;
        }
        Ok(JobOutcome::default())
    }
}

impl BenchHandler {
    /// Waits of `lane` so far, sorted, µs.
    fn waits(&self, lane: Lane) -> Vec<i64> {
        let mut v: Vec<i64> = self
            .waits_us
            .lock()
            .expect("lock")
            .iter()
            .filter(|(l, _)| *l == lane)
            .map(|(_, w)| *w)
            .collect();
        v.sort_unstable();
        v
    }
}

/// The `p` quantile of sorted µs values, in ms.
fn percentile_ms(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    (sorted[i] as f64 / 10.0).round() / 100.0
}

fn probe_job(tenant: &TenantId, lane: Lane, sleep_ms: u64) -> NewJob {
    let p = Probe {
        t_us: chrono::Utc::now().timestamp_micros(),
        sleep_ms,
    };
    NewJob::new(tenant.clone(), &p).lane(lane)
}

/// `n` tenant ids, `t-0` to `t-{n-1}`.
fn tenants(n: usize) -> Vec<TenantId> {
    (0..n.max(1))
        .map(|i| TenantId::new(format!("t-{i}")))
        .collect()
}

/// Worker runtimes running in this process, each on connections of its own (as processes).
struct Workers {
    stops: Vec<CancellationToken>,
    tasks: Vec<tokio::task::JoinHandle<Result<(), onomancer_shared::queue::QueueError>>>,
    handles: Vec<WorkerHandle>,
}

impl Workers {
    async fn start(
        settings: &Settings,
        keys: &KeySpace,
        config: &QueueConfig,
        handler: &Arc<BenchHandler>,
        count: usize,
        concurrency: usize,
    ) -> anyhow::Result<Self> {
        let mut w = Self {
            stops: Vec::new(),
            tasks: Vec::new(),
            handles: Vec::new(),
        };
        for i in 0..count.max(1) {
            let queue = Queue::connect(
                &settings.redis_url,
                keys.clone(),
                config.clone(),
                &prometheus::Registry::new(),
            )
            .await
            .context("connecting a bench worker to Redis")?;
            let mut options = WorkerOptions::new(format!("bench-{}-{i}", std::process::id()));
            options.concurrency = concurrency;
            options.block = Duration::from_millis(50);
            options.shutdown_grace = Duration::from_millis(100);
            let runtime = WorkerRuntime::new(queue, handler.clone(), options);
            w.handles.push(runtime.handle());
            let stop = CancellationToken::new();
            w.tasks
                .push(tokio::spawn(runtime.run(stop.clone().cancelled_owned())));
            w.stops.push(stop);
        }
        Ok(w)
    }

    /// Jobs finished by all of them.
    fn finished(&self) -> u64 {
        self.handles
            .iter()
            .map(|h| h.finished.load(Ordering::Relaxed))
            .sum()
    }

    async fn stop(self) -> anyhow::Result<()> {
        for s in &self.stops {
            s.cancel();
        }
        for t in self.tasks {
            t.await??;
        }
        Ok(())
    }
}

/// Runs a benchmark on a fresh isolated namespace, deleted afterwards.
pub async fn run(settings: Settings, cmd: BenchCommand) -> anyhow::Result<()> {
    let name = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let keys = KeySpace::isolated(&name);
    let queue = Queue::connect(
        &settings.redis_url,
        keys.clone(),
        QueueConfig::default(),
        &prometheus::Registry::new(),
    )
    .await
    .context("connecting to Redis")?;
    let result = match cmd {
        BenchCommand::Queue(args) => queue::measure(&settings, &queue, &args).await,
        BenchCommand::Lanes(args) => lanes::measure(&settings, &queue, &args).await,
    };
    cleanup(&queue, &keys).await?;
    println!("{}", result?);
    Ok(())
}

async fn cleanup(queue: &Queue, keys: &KeySpace) -> anyhow::Result<()> {
    let mut c = queue.conn();
    for pattern in keys.all_keys_pattern() {
        let mut cursor = 0u64;
        loop {
            let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut c)
                .await?;
            for chunk in found.chunks(1000) {
                let _: () = redis::cmd("UNLINK").arg(chunk).query_async(&mut c).await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(())
}
