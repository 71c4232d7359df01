//! `onomancer bench queue`: no-op jobs spread over `--tenants` tenants through `--workers`
//! worker runtimes: throughput, time to first ack, the Redis time of one claim (commandstats
//! around claims made alone, on a namespace of their own), the Redis calls of the run slower
//! than `--slow-us` (SLOWLOG: the longest, and how many took over 1 ms), commandstats over the
//! drain, and enqueue-to-start latency at a steady rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use onomancer_shared::queue::{Queue, QueueConfig};
use onomancer_shared::settings::Settings;
use onomancer_shared::Lane;

use super::redis_stats::{redis_cpu_s, summarize, CommandStats, SlowlogProbe};
use super::{percentile_ms, probe_job, tenants, BenchHandler, Workers};

/// Options of `onomancer bench queue`.
#[derive(Args, Debug)]
pub struct QueueArgs {
    /// No-op jobs for the throughput phase.
    #[arg(long, default_value_t = 100_000)]
    jobs: usize,
    /// Jobs in flight per worker.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Jobs per enqueue call (pipelined script batches).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Tenants the jobs are spread over, round robin.
    #[arg(long, default_value_t = 1)]
    tenants: usize,
    /// Worker runtimes, each on connections of its own.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Claims of `--concurrency` entries made alone first, to time one claim (0 skips them).
    #[arg(long, default_value_t = 200)]
    probe_claims: usize,
    /// Calls of the run slower than this many µs are recorded (SLOWLOG) and reported.
    #[arg(long, default_value_t = 100)]
    slow_us: u64,
    /// Enqueue rate of the latency phase, jobs/s (0 skips the phase).
    #[arg(long, default_value_t = 1000)]
    latency_rate: u64,
    /// Length of the latency phase, seconds.
    #[arg(long, default_value_t = 5)]
    latency_seconds: u64,
}

/// Enqueues `n` no-op jobs round robin over `tenants`, `batch` per call.
async fn enqueue_spread(
    queue: &Queue,
    tenants: &[onomancer_shared::TenantId],
    n: usize,
    batch: usize,
) -> anyhow::Result<()> {
    let mut next = 0;
    while next < n {
        let k = (n - next).min(batch.max(1));
        let jobs = (next..next + k)
            .map(|i| probe_job(&tenants[i % tenants.len()], Lane::Default, 0))
            .collect();
        queue.enqueue_many(jobs).await?;
        next += k;
    }
    Ok(())
}

/// Waits until the workers finished `target` jobs and acknowledged them all (every worker's
/// owned-stream set is empty once nothing of it is pending); returns when the last handler
/// returned (the acknowledgements still to write then are the rest of the drain).
async fn drained(queue: &Queue, workers: &Workers, target: u64) -> anyhow::Result<Instant> {
    let mut handled: Option<Instant> = None;
    let owned: Vec<String> = (0..workers.handles.len())
        .map(|i| {
            queue
                .keys()
                .owned(&format!("bench-{}-{i}", std::process::id()))
        })
        .collect();
    loop {
        if workers.finished() >= target {
            let handled = *handled.get_or_insert_with(Instant::now);
            let mut pipe = redis::pipe();
            for k in &owned {
                pipe.scard(k);
            }
            let left: Vec<u64> = pipe.query_async(&mut queue.conn()).await?;
            if left.iter().all(|n| *n == 0) {
                return Ok(handled);
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The Redis time of one claim of `free` entries, with the jobs spread over `tenants`: claims
/// made alone on a namespace of their own (deleted after), timed by commandstats.
async fn time_claims(
    settings: &Settings,
    tenants: &[onomancer_shared::TenantId],
    free: usize,
    claims: usize,
) -> anyhow::Result<serde_json::Value> {
    let name = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let keys = onomancer_shared::KeySpace::isolated(&name);
    let queue = Queue::connect(
        &settings.redis_url,
        keys.clone(),
        QueueConfig::default(),
        &prometheus::Registry::new(),
    )
    .await?;
    let run = async {
        enqueue_spread(&queue, tenants, claims * free, 1000).await?;
        let before = CommandStats::read(&queue.conn()).await?;
        let mut taken = 0;
        for _ in 0..claims {
            taken += queue.claim_once("bench-probe", free).await?;
        }
        let after = CommandStats::read(&queue.conn()).await?;
        let (calls, us) = after.since(&before, "evalsha");
        let (reads, _) = after.since(&before, "xreadgroup");
        anyhow::Ok(serde_json::json!({
            "claims": claims,
            "entries_per_claim": taken as f64 / claims.max(1) as f64,
            "us_per_claim": (us as f64 / calls.max(1) as f64 * 10.0).round() / 10.0,
            "streams_read_per_claim": (reads as f64 / calls.max(1) as f64 * 10.0).round() / 10.0,
        }))
    }
    .await;
    super::cleanup(&queue, &keys).await?;
    run
}

pub async fn measure(
    settings: &Settings,
    queue: &Queue,
    a: &QueueArgs,
) -> anyhow::Result<serde_json::Value> {
    let tenants = tenants(a.tenants);
    let claim = if a.probe_claims > 0 {
        time_claims(settings, &tenants, a.concurrency, a.probe_claims).await?
    } else {
        serde_json::Value::Null
    };
    let t0 = Instant::now();
    enqueue_spread(queue, &tenants, a.jobs, a.batch).await?;
    let enqueue_s = t0.elapsed().as_secs_f64();

    let handler = Arc::new(BenchHandler::default());
    let slowlog = SlowlogProbe::start(&queue.conn(), a.slow_us).await?;
    let stats_before = CommandStats::read(&queue.conn()).await?;
    let cpu_before = redis_cpu_s(&queue.conn()).await?;
    let t1 = Instant::now();
    let run = async {
        let workers = Workers::start(
            settings,
            queue.keys(),
            &QueueConfig::default(),
            &handler,
            a.workers,
            a.concurrency,
        )
        .await?;
        while workers.finished() == 0 && a.jobs > 0 {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        let first_ack_ms = t1.elapsed().as_secs_f64() * 1000.0;
        let handled = drained(queue, &workers, a.jobs as u64).await?;
        let handled_s = (handled - t1).as_secs_f64();
        anyhow::Ok((workers, first_ack_ms, t1.elapsed().as_secs_f64(), handled_s))
    }
    .await;
    let stats_after = CommandStats::read(&queue.conn()).await?;
    let redis_cpu = redis_cpu_s(&queue.conn()).await? - cpu_before;
    let slow = slowlog
        .finish(queue.keys().name(), &queue.script_hashes())
        .await?;
    let (workers, first_ack_ms, drain_s, handled_s) = run?;
    let per_call = |cmd: &str| {
        let (calls, us) = stats_after.since(&stats_before, cmd);
        serde_json::json!({
            "calls": calls,
            "us_per_call": if calls > 0 { (us as f64 / calls as f64 * 10.0).round() / 10.0 } else { 0.0 },
        })
    };
    let commandstats = serde_json::json!({
        "evalsha": per_call("evalsha"),
        "xreadgroup": per_call("xreadgroup"),
        "blpop": per_call("blpop"),
    });

    // Latency: a steady enqueue rate against the running workers.
    handler.waits_us.lock().expect("lock").clear();
    let total = (a.latency_rate * a.latency_seconds) as usize;
    if total > 0 {
        let every = Duration::from_secs_f64(1.0 / a.latency_rate as f64);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for i in 0..total {
            tick.tick().await;
            queue
                .enqueue(probe_job(&tenants[i % tenants.len()], Lane::Default, 0))
                .await?;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while handler.waits(Lane::Default).len() < total && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    workers.stop().await?;
    let lat = handler.waits(Lane::Default);
    Ok(serde_json::json!({
        "jobs": a.jobs,
        "tenants": tenants.len(),
        "workers": a.workers,
        "concurrency": a.concurrency,
        "jobs_per_s": (a.jobs as f64 / drain_s).round(),
        // Handlers finished per second (acknowledgements may still be on their way).
        "handled_per_s": (a.jobs as f64 / handled_s).round(),
        "enqueue_per_s": (a.jobs as f64 / enqueue_s).round(),
        "first_ack_ms": (first_ack_ms * 10.0).round() / 10.0,
        // Redis's whole CPU over the drain (other clients of the same server included).
        "redis_cpu_us_per_job": (redis_cpu * 1e6 / a.jobs.max(1) as f64 * 10.0).round() / 10.0,
        "claim": claim,
        "slow_calls": summarize(&slow),
        "slow_threshold_us": a.slow_us,
        "drain_commandstats": commandstats,
        "latency_rate": a.latency_rate,
        "latency_samples": lat.len(),
        "p50_ms": percentile_ms(&lat, 0.50),
        "p99_ms": percentile_ms(&lat, 0.99),
    }))
}
