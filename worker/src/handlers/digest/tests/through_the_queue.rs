//! Digests built by the worker's composition root (`crate::app::Services`) and run through the
//! real queue and worker runtime, as the scheduler enqueues them.

use std::time::Duration;

use onomancer_shared::db::Database;
use onomancer_shared::queue::{
    JobHandler, JobState, JobStatus, Queue, QueueConfig, WorkerOptions, WorkerRuntime,
};
use onomancer_shared::settings::Settings;
use onomancer_shared::JobOutcome;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::transform::progress::follow_job;

struct Adapter(DigestHandler);

impl JobHandler for Adapter {
    async fn handle(&self, job: Envelope) -> Result<JobOutcome, JobError> {
        self.0.handle(&job).await
    }
}

struct Running {
    queue: Queue,
    stop: CancellationToken,
    activity: ActivityStore,
    claude: ClaudeFake,
    discord: DiscordFake,
    _redis: TestRedis,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

/// A worker running only the digest handler, wired from settings pointing at the fakes.
async fn start(with_claude: bool) -> Running {
    let dir = tempfile::tempdir().unwrap();
    write_tenants(dir.path(), "no-root");
    let prompts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/prompts");
    std::fs::create_dir_all(dir.path().join("prompts")).unwrap();
    for e in std::fs::read_dir(prompts).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join("prompts").join(e.file_name())).unwrap();
    }
    let redis = TestRedis::new().await;
    let db = TestDb::sqlite().await;
    let claude = ClaudeFake::start().await;
    claude.set_responder(|_| REPLY.to_owned());
    let discord = DiscordFake::start().await;
    let mut env: BTreeMap<&str, String> = BTreeMap::from([
        ("REDIS_URL", onomancer_testkit::redis_ns::redis_url()),
        ("ONOMANCER_NAMESPACE", redis.name.clone()),
        ("ONOMANCER_CONFIG_DIR", dir.path().display().to_string()),
        ("DATABASE_URL", db.url.clone()),
        ("DISCORD_BOT_TOKEN", "bot-token".into()),
        ("DISCORD_APPLICATION_ID", "1234567".into()),
        ("DISCORD_API_BASE", discord.api_base()),
    ]);
    if with_claude {
        env.insert("ANTHROPIC_API_KEY", "test-key".into());
        env.insert("ANTHROPIC_BASE_URL", claude.base_url());
    }
    let settings = Settings::from_lookup(|k| env.get(k).cloned()).unwrap();
    let registry = prometheus::Registry::new();
    let queue = Queue::connect(
        &settings.redis_url,
        settings.key_space(),
        QueueConfig::default(),
        &registry,
    )
    .await
    .unwrap();
    let tenants = Arc::new(TenantRegistry::load_with_env(dir.path(), |_| None).unwrap());
    let database = Database::open(&settings.database_url).await.unwrap();
    let services =
        crate::app::Services::with(&settings, tenants, database, &queue, &registry).unwrap();
    let handler = crate::Handlers::from_services(&services)
        .digest
        .expect("a database is configured");
    assert_eq!(handler.writer.claude.is_some(), with_claude);
    assert_eq!(handler.writer.model, "claude-sonnet-4-5");
    let activity = handler.activity.clone();
    let mut options = WorkerOptions::new(format!("w-{}", uuid::Uuid::new_v4().simple()));
    options.block = Duration::from_millis(50);
    options.tenant_refresh = Duration::from_millis(50);
    let runtime = WorkerRuntime::new(queue.clone(), Arc::new(Adapter(handler)), options);
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move { runtime.run(s.cancelled_owned()).await.expect("worker runs") });
    Running {
        queue,
        stop,
        activity,
        claude,
        discord,
        _redis: redis,
        _db: db,
        _dir: dir,
    }
}

/// Enqueues the scheduler's job (twice: the second is the same job) and waits for its end.
async fn run_scheduled(r: &Running, tenant: &str, persona: &str) -> JobStatus {
    let job = digest_job(tenant, persona, None);
    let new = || NewJob {
        tenant: job.tenant.clone(),
        kind: job.kind.clone(),
        lane: job.lane,
        payload: job.payload.to_vec(),
        idempotency_key: job.idempotency_key.clone(),
        trace: None,
    };
    let first = r.queue.enqueue(new()).await.unwrap();
    let second = r.queue.enqueue(new()).await.unwrap();
    assert!(first.created && !second.created);
    assert_eq!(first.id, second.id);
    tokio::time::timeout(
        Duration::from_secs(30),
        follow_job(
            &r.queue,
            &job.tenant,
            &first.id,
            Duration::from_millis(20),
            |_| {},
        ),
    )
    .await
    .expect("the job finishes")
    .unwrap()
    .expect("status exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_digest_runs_through_the_queue_once() {
    let r = start(true).await;
    record_week(&r.activity, "acme").await;
    let status = run_scheduled(&r, "acme", "leadership").await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    assert_eq!(status.result.as_ref().unwrap()["written_by"], "claude");
    assert_eq!(r.claude.calls(), 1);
    let posted = r.discord.channel_messages(ACME_CHANNEL);
    assert_eq!(posted.len(), 1);
    assert!(posted[0].content.contains(REPLY));
    r.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_claude_only_quiet_weeks_are_digested() {
    let r = start(false).await;
    let quiet = run_scheduled(&r, "globex", "product").await;
    assert_eq!(quiet.state, JobState::Succeeded, "{quiet:?}");
    assert!(r.discord.channel_messages(GLOBEX_CHANNEL)[0]
        .content
        .contains("A quiet week for GLOBEX"));
    record_week(&r.activity, "acme").await;
    let busy = run_scheduled(&r, "acme", "product").await;
    assert_eq!(busy.state, JobState::Dead, "{busy:?}");
    assert!(
        busy.error
            .as_deref()
            .unwrap_or("")
            .contains("ANTHROPIC_API_KEY"),
        "{busy:?}"
    );
    assert!(r.discord.channel_messages(ACME_CHANNEL).is_empty());
    r.stop.cancel();
}
