//! Worker memory with many transforms in flight. Run in release mode on the machine's Redis:
//!
//! ```text
//! cargo build --release --bin onomancer --example bench_worker_rss
//! ./target/release/examples/bench_worker_rss [--jobs 1000] [--kib 48] [--http http2|http1] \
//!     [--bin onomancer|onomancer-worker]
//! ```
//!
//! Starts the Claude fake in this process with answers held back, a real `onomancer worker`
//! process (the release binary beside this example) with `ONOMANCER_WORKER_CONCURRENCY` = jobs,
//! and enqueues `jobs` four-persona transforms of distinct documents of about `kib` KiB each
//! (48 KiB is the seed's 12,000-token PRD), with the Claude rate limit raised so every job's
//! first call is sent. Once every job's first Claude call is waiting on the
//! fake, it samples the worker's resident memory (`VmRSS`) for a few seconds and prints one JSON
//! line with the steady and peak (`VmHWM`) figures. Keys live in an isolated namespace deleted at
//! the end; the SQLite file is in a temporary folder.
//!
//! The worker speaks HTTP/2 to the fake by default (`ANTHROPIC_HTTP_VERSION=http2`, prior
//! knowledge: the fake has no TLS), as it does to `https://api.anthropic.com`, where TLS
//! negotiates HTTP/2; `--http http1` measures one HTTP/1.1 connection per call instead.
//! `--bin onomancer-worker` runs the worker-only binary (what `docker-compose.yml` runs; build it
//! with `cargo build --release --bin onomancer-worker`) instead of `onomancer worker`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use onomancer_shared::queue::{Queue, QueueConfig, QueueMetrics};
use onomancer_shared::transform_job::{DocumentSource, Origin, TransformJob};
use onomancer_shared::{Lane, NewJob, TenantId};
use onomancer_testkit::{ClaudeFake, TestRedis};

/// A document of about `bytes`, distinct per `seed` so no two jobs share a cache entry.
fn document(seed: usize, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 200);
    let mut i = 0usize;
    while s.len() < bytes {
        i += 1;
        s.push_str(&format!(
            "## Section {i} of document {seed}\n\nThe checkout service must answer within {} ms for {} users; owner: team-{}. The rollout starts in region {} after the review.\n\n",
            100 + i % 50,
            i * 37 + seed,
            i % 7,
            seed % 13
        ));
    }
    s
}

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

fn onomancer_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join(name))
        .with_context(|| format!("locating target/<profile>/{name}"))?;
    if !bin.exists() {
        bail!(
            "{} not found: build it first (cargo build --release --bin {name})",
            bin.display()
        );
    }
    Ok(bin)
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A copy of the repository's `config/` whose Claude rate limit lets every job's call through at
/// once (the seed's 50 requests/min would hold all but 50 jobs in the delayed set).
fn bench_config(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let to = dir.join("config");
    copy_dir(&from, &to)?;
    let defaults = to.join("defaults.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&defaults)?)?;
    v["rateLimits"]["claude"] = serde_json::json!({"requests": 1_000_000, "perSeconds": 60});
    std::fs::write(&defaults, serde_json::to_vec_pretty(&v)?)?;
    Ok(to)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn text_arg(name: &str, default: &str) -> anyhow::Result<String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .cloned()
            .with_context(|| format!("{name} needs a value")),
        None => Ok(default.to_owned()),
    }
}

fn arg(name: &str, default: usize) -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .with_context(|| format!("{name} needs a value"))?
            .parse()
            .with_context(|| format!("{name} takes a whole number")),
        None => Ok(default),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let jobs = arg("--jobs", 1000)?;
    let kib = arg("--kib", 48)?;
    let http = text_arg("--http", "http2")?;
    let bin = text_arg("--bin", "onomancer")?;
    // `onomancer worker`, or the worker-only binary, which takes no arguments.
    let role_args: &[&str] = match bin.as_str() {
        "onomancer" => &["worker"],
        "onomancer-worker" => &[],
        _ => bail!("--bin takes onomancer or onomancer-worker"),
    };
    if !["http1", "http2"].contains(&http.as_str()) {
        bail!("--http takes http1 or http2");
    }
    let redis = TestRedis::new().await;
    let claude = ClaudeFake::start().await;
    // Hold every answer back: the worker keeps `jobs` transforms in flight.
    claude.set_delay(Some(Duration::from_secs(3600)));
    let data = tempfile::tempdir()?;
    let config = bench_config(data.path())?;
    let worker = KillOnDrop(
        Command::new(onomancer_binary(&bin)?)
            .args(role_args)
            .env("REDIS_URL", onomancer_testkit::redis_ns::redis_url())
            .env("ONOMANCER_NAMESPACE", &redis.name)
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/bench.db", data.path().display()),
            )
            .env("ONOMANCER_CONFIG_DIR", &config)
            .env("ONOMANCER_WORKER_CONCURRENCY", jobs.to_string())
            .env("ANTHROPIC_API_KEY", "bench-key")
            .env("ANTHROPIC_BASE_URL", claude.base_url())
            .env("ANTHROPIC_HTTP_VERSION", &http)
            .env("ONOMANCER_WORKER_NAME", "rss-bench")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the worker")?,
    );
    let pid = worker.0.id();
    let queue = Queue::from_parts(
        redis.conn.clone(),
        &onomancer_testkit::redis_ns::redis_url(),
        redis.keys.clone(),
        QueueConfig::default(),
        QueueMetrics::unregistered(),
    );
    let tenant = TenantId::new("thj");
    // Idle figure once the worker has taken its consumer name (it is up and claiming).
    let lease = redis.keys.consumer_lease("rss-bench");
    let up = Instant::now();
    while !redis::AsyncCommands::exists::<_, bool>(&mut redis.conn.clone(), &lease).await? {
        if up.elapsed() > Duration::from_secs(30) {
            bail!("the worker did not start within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let idle = memory_kib(pid)?;
    // The interactive lane may use every slot (default and bulk leave `queue.reservedShare` to
    // it), so all `jobs` run at once, as `/transform` commands do.
    let batch: Vec<NewJob> = (0..jobs)
        .map(|i| {
            let job = TransformJob {
                v: 1,
                source: DocumentSource::Text {
                    text: document(i, kib * 1024),
                },
                personas: Vec::new(),
                product: None,
                origin: Origin::Api,
                user: Some("bench".into()),
                title: Some(format!("rss-bench-{i}.md")),
            };
            NewJob::new(tenant.clone(), &job).lane(Lane::Interactive)
        })
        .collect();
    for chunk in batch.chunks(500) {
        queue.enqueue_many(chunk.to_vec()).await?;
    }
    // Wait until every job's first persona call is waiting on the fake.
    let started = Instant::now();
    while claude.calls() < jobs {
        if started.elapsed() > Duration::from_secs(120) {
            bail!(
                "only {} of {jobs} Claude calls arrived within 120 s",
                claude.calls()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ramp_s = started.elapsed().as_secs_f64();
    let mut samples = Vec::new();
    for _ in 0..30 {
        samples.push(memory_kib(pid)?.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, hwm) = memory_kib(pid)?;
    samples.sort_unstable();
    let line = serde_json::json!({
        "jobs_in_flight": jobs,
        "document_kib": kib,
        "claude_http": http,
        "binary": bin,
        "claude_calls_waiting": claude.calls(),
        "ramp_s": (ramp_s * 10.0).round() / 10.0,
        "worker_rss_idle_mib": idle.0 / 1024,
        "worker_rss_in_flight_mib": samples[samples.len() / 2] / 1024,
        "worker_rss_peak_mib": hwm / 1024,
    });
    println!("{line}");
    drop(worker);
    redis.cleanup().await;
    Ok(())
}
