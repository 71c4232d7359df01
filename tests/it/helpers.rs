//! Shared test helpers: an isolated queue per test, an in-process worker, worker processes, and
//! polling with a deadline (a condition, not a sleep).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use onomancer_shared::queue::{
    JobHandler, JobStatus, Queue, QueueConfig, QueueMetrics, WorkerOptions, WorkerRuntime,
};
use onomancer_shared::{JobId, TenantId};
use onomancer_testkit::TestRedis;
use tokio_util::sync::CancellationToken;

pub use crate::private_redis::{answers, PrivateRedis};

/// A queue on its own namespace; keys are deleted when dropped.
pub struct TestQueue {
    pub redis: TestRedis,
    pub queue: Queue,
}

impl TestQueue {
    pub async fn new(config: QueueConfig) -> Self {
        let redis = TestRedis::new().await;
        let queue = Queue::from_parts(
            redis.conn.clone(),
            &onomancer_testkit::redis_ns::redis_url(),
            redis.keys.clone(),
            config,
            QueueMetrics::unregistered(),
        );
        Self { redis, queue }
    }

    pub async fn status(&self, tenant: &TenantId, id: &JobId) -> JobStatus {
        self.queue
            .status(tenant, id)
            .await
            .unwrap()
            .expect("status exists")
    }
}

/// Fast settings for tests: short backoff, short claim idle.
pub fn fast_config() -> QueueConfig {
    let mut c = QueueConfig::default();
    c.retry.base = Duration::from_millis(100);
    c.retry.max = Duration::from_secs(1);
    c.claim_idle = Duration::from_millis(1000);
    c
}

/// A worker runtime running in this process until the returned token is cancelled.
pub fn spawn_worker<H: JobHandler>(
    queue: &Queue,
    handler: Arc<H>,
    name: &str,
    concurrency: usize,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let mut options = WorkerOptions::new(name);
    options.concurrency = concurrency;
    options.block = Duration::from_millis(50);
    options.tenant_refresh = Duration::from_millis(100);
    options.shutdown_grace = Duration::from_secs(5);
    let runtime = WorkerRuntime::new(queue.clone(), handler, options);
    let stop = CancellationToken::new();
    let s = stop.clone();
    let task = tokio::spawn(async move {
        runtime.run(s.cancelled_owned()).await.expect("worker runs");
    });
    (stop, task)
}

/// Polls `check` until it returns true, failing the test after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A copy of the repository's `config/` with `queue` tuning replaced, for worker processes.
pub fn config_dir(queue: serde_json::Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_config(), dir.path());
    let defaults = dir.path().join("defaults.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&defaults).unwrap()).unwrap();
    for (k, val) in queue.as_object().expect("queue tuning is an object") {
        v["queue"][k] = val.clone();
    }
    std::fs::write(&defaults, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    dir
}

fn repo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A real `onomancer worker` process on the test's namespace. Killed on drop if still running.
pub struct WorkerProcess {
    pub child: Child,
}

impl WorkerProcess {
    pub fn start(namespace: &str, config_dir: &Path, name: &str, concurrency: usize) -> Self {
        Self::start_with(namespace, config_dir, name, concurrency, &[])
    }

    /// Starts a worker with extra environment variables.
    pub fn start_with(
        namespace: &str,
        config_dir: &Path,
        name: &str,
        concurrency: usize,
        env: &[(&str, &str)],
    ) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_onomancer"))
            .arg("worker")
            .envs(env.iter().copied())
            .env("REDIS_URL", onomancer_testkit::redis_ns::redis_url())
            .env("ONOMANCER_NAMESPACE", namespace)
            .env("ONOMANCER_CONFIG_DIR", config_dir)
            .env("ONOMANCER_WORKER_NAME", name)
            .env("ONOMANCER_WORKER_CONCURRENCY", concurrency.to_string())
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/worker.db", config_dir.display()),
            )
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start onomancer worker");
        Self { child }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a scripted job does, carried in its payload.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Script {
    /// Fail with a retryable error while `attempt <= fail_until_attempt`.
    #[serde(default)]
    pub fail_until_attempt: u32,
    /// The retry-after the failure reports.
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
    /// Fail terminally with this message.
    #[serde(default)]
    pub terminal: Option<String>,
    /// Run time.
    #[serde(default)]
    pub sleep_ms: u64,
    /// Take one call of this upstream service from the rate limiter first.
    #[serde(default)]
    pub limit_service: Option<String>,
}

impl onomancer_shared::JobPayload for Script {
    const KIND: onomancer_shared::JobKind =
        onomancer_shared::JobKind::Unknown(std::borrow::Cow::Borrowed("test.scripted"));
    const LANE: onomancer_shared::Lane = onomancer_shared::Lane::Default;
}

/// A handler that follows each job's [`Script`] and records every run.
#[derive(Default)]
pub struct ScriptedHandler {
    /// While set, every job fails terminally (to fill the dead-letter stream).
    pub fail_all: std::sync::atomic::AtomicBool,
    /// (job id, tenant, when it started, attempt) for every started run.
    pub started: std::sync::Mutex<Vec<(JobId, TenantId, Instant, u32)>>,
    /// Completed runs.
    pub completed: std::sync::Mutex<Vec<(JobId, Instant)>>,
    /// Shared upstream rate limiter, if the test uses one.
    pub limiter: Option<onomancer_shared::queue::RateLimiter>,
}

impl JobHandler for ScriptedHandler {
    async fn handle(
        &self,
        job: onomancer_shared::Envelope,
    ) -> Result<onomancer_shared::JobOutcome, onomancer_shared::JobError> {
        use onomancer_shared::JobError;
        let s: Script = job.payload_as()?;
        if let (Some(service), Some(limiter)) = (&s.limit_service, &self.limiter) {
            limiter.acquire(&job.tenant, service).await?;
        }
        self.started.lock().unwrap().push((
            job.id.clone(),
            job.tenant.clone(),
            Instant::now(),
            job.attempt,
        ));
        if self.fail_all.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(JobError::terminal("failing everything on purpose"));
        }
        if let Some(m) = s.terminal {
            return Err(JobError::terminal(m));
        }
        if job.attempt <= s.fail_until_attempt {
            return Err(JobError::Retryable {
                message: format!("attempt {} fails on purpose", job.attempt),
                retry_after: s.retry_after_ms.map(Duration::from_millis),
            });
        }
        if s.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(s.sleep_ms)).await;
        }
        self.completed
            .lock()
            .unwrap()
            .push((job.id.clone(), Instant::now()));
        Ok(onomancer_shared::JobOutcome {
            result: Some(serde_json::json!({"ok": true})),
        })
    }
}

/// A scripted job.
pub fn scripted(
    tenant: &str,
    lane: onomancer_shared::Lane,
    script: &Script,
) -> onomancer_shared::NewJob {
    onomancer_shared::NewJob::new(TenantId::new(tenant), script).lane(lane)
}

/// A run of `n` consecutive loopback ports that are free now, each with its cluster-bus twin
/// (port + 10000) free too, for Redis servers the test starts itself.
pub fn free_ports(n: u16) -> Vec<u16> {
    use std::net::TcpListener;
    for _ in 0..200 {
        let base = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base > 55_000 - n {
            continue;
        }
        let all_free = (0..n).all(|i| {
            TcpListener::bind(("127.0.0.1", base + i)).is_ok()
                && TcpListener::bind(("127.0.0.1", base + i + 10_000)).is_ok()
        });
        if all_free {
            return (0..n).map(|i| base + i).collect();
        }
    }
    panic!("no free run of {n} loopback ports");
}

/// A queue on a private Redis at `url` (production key layout: the server is the test's own).
pub async fn queue_at(url: &str, config: QueueConfig) -> Queue {
    let conn = onomancer_shared::RedisConn::connect(url).await.unwrap();
    Queue::from_parts(
        conn,
        url,
        onomancer_shared::KeySpace::production(),
        config,
        QueueMetrics::unregistered(),
    )
}

/// `n` `diag.sleep` jobs of `ms` each for tenant `thj`, default lane, enqueued; their ids.
pub async fn enqueue_sleeps(queue: &Queue, n: usize, ms: u64) -> Vec<JobId> {
    let jobs = (0..n)
        .map(|_| {
            onomancer_shared::NewJob::new(
                TenantId::new("thj"),
                &onomancer_shared::payloads::SleepPayload {
                    ms,
                    ..Default::default()
                },
            )
        })
        .collect();
    queue
        .enqueue_many(jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// The statuses of `ids` (tenant `thj`), those that exist.
pub async fn statuses(queue: &Queue, ids: &[JobId]) -> Vec<JobStatus> {
    let tenant = TenantId::new("thj");
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(s) = queue.status(&tenant, id).await.unwrap() {
            out.push(s);
        }
    }
    out
}
