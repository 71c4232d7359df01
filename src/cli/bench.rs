//! `onomancer bench queue`: no-op jobs through the real queue and worker runtime, on the
//! configured Redis under an isolated namespace that is deleted afterwards. Prints one JSON line.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use onomancer_shared::queue::{JobHandler, Queue, QueueConfig, WorkerOptions, WorkerRuntime};
use onomancer_shared::settings::Settings;
use onomancer_shared::{Envelope, JobError, JobKind, JobOutcome, KeySpace, Lane, NewJob, TenantId};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Queue throughput (enqueue, claim, ack with status tracking) and enqueue-to-start latency.
    Queue {
        /// No-op jobs for the throughput phase.
        #[arg(long, default_value_t = 100_000)]
        jobs: usize,
        /// Jobs in flight in the worker.
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        /// Jobs per enqueue batch (one pipeline).
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Enqueue rate of the latency phase, jobs/s (0 skips the phase).
        #[arg(long, default_value_t = 1000)]
        latency_rate: u64,
        /// Length of the latency phase, seconds.
        #[arg(long, default_value_t = 5)]
        latency_seconds: u64,
    },
}

#[derive(Serialize, Deserialize)]
struct Probe {
    /// Enqueue time, µs since the epoch.
    t_us: i64,
}

struct BenchHandler {
    latencies_us: Mutex<Vec<i64>>,
}

impl JobHandler for BenchHandler {
    async fn handle(&self, job: Envelope) -> Result<JobOutcome, JobError> {
        let p: Probe = job.payload_as()?;
        let now = chrono::Utc::now().timestamp_micros();
        self.latencies_us.lock().expect("lock").push(now - p.t_us);
        Ok(JobOutcome::default())
    }
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn probe_job(tenant: &TenantId) -> NewJob {
    let p = Probe {
        t_us: chrono::Utc::now().timestamp_micros(),
    };
    NewJob::new(tenant.clone(), JobKind::NOOP, Lane::Default, &p)
}

async fn pending(queue: &Queue, tenant: &TenantId) -> anyhow::Result<u64> {
    let (count, ..): (u64, Option<String>, Option<String>, redis::Value) = redis::cmd("XPENDING")
        .arg(queue.keys().stream(tenant, Lane::Default))
        .arg(onomancer_shared::queue::GROUP)
        .query_async(&mut queue.conn())
        .await?;
    Ok(count)
}

/// Runs a benchmark.
pub async fn run(settings: Settings, cmd: BenchCommand) -> anyhow::Result<()> {
    let BenchCommand::Queue {
        jobs,
        concurrency,
        batch,
        latency_rate,
        latency_seconds,
    } = cmd;
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
    let result = measure(
        &queue,
        jobs,
        concurrency,
        batch,
        latency_rate,
        latency_seconds,
    )
    .await;
    cleanup(&queue, &keys).await?;
    let line = result?;
    println!("{line}");
    Ok(())
}

async fn measure(
    queue: &Queue,
    jobs: usize,
    concurrency: usize,
    batch: usize,
    latency_rate: u64,
    latency_seconds: u64,
) -> anyhow::Result<serde_json::Value> {
    let tenant = TenantId::new("bench");
    // Throughput: enqueue everything in pipelined batches, then drain with acks and statuses.
    let t0 = Instant::now();
    let mut left = jobs;
    while left > 0 {
        let n = left.min(batch.max(1));
        queue
            .enqueue_many((0..n).map(|_| probe_job(&tenant)).collect())
            .await?;
        left -= n;
    }
    let enqueue_s = t0.elapsed().as_secs_f64();

    let handler = Arc::new(BenchHandler {
        latencies_us: Mutex::new(Vec::with_capacity(jobs)),
    });
    let mut options = WorkerOptions::new(format!("bench-{}", std::process::id()));
    options.concurrency = concurrency;
    options.block = Duration::from_millis(50);
    let runtime = WorkerRuntime::new(queue.clone(), handler.clone(), options);
    let handle = runtime.handle();
    let stop = CancellationToken::new();
    let t1 = Instant::now();
    let worker = tokio::spawn(runtime.run(stop.clone().cancelled_owned()));
    loop {
        if handle.finished.load(Ordering::Relaxed) as usize >= jobs
            && pending(queue, &tenant).await? == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let drain_s = t1.elapsed().as_secs_f64();

    // Latency: a steady enqueue rate against the running worker.
    handler.latencies_us.lock().expect("lock").clear();
    let total = (latency_rate * latency_seconds) as usize;
    if total > 0 {
        let every = Duration::from_secs_f64(1.0 / latency_rate as f64);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for _ in 0..total {
            tick.tick().await;
            queue.enqueue(probe_job(&tenant)).await?;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while handler.latencies_us.lock().expect("lock").len() < total && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    stop.cancel();
    worker.await??;
    let mut lat = handler.latencies_us.lock().expect("lock").clone();
    lat.sort_unstable();
    Ok(serde_json::json!({
        "jobs": jobs,
        "concurrency": concurrency,
        "jobs_per_s": (jobs as f64 / drain_s).round(),
        "enqueue_per_s": (jobs as f64 / enqueue_s).round(),
        "latency_rate": latency_rate,
        "latency_samples": lat.len(),
        "p50_ms": percentile(&lat, 0.50),
        "p99_ms": percentile(&lat, 0.99),
    }))
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
