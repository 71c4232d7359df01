//! Paid Claude work through real worker processes, some SIGKILLed mid-run, against a Claude
//! fake that answers slowly and injects 429/529: every job ends succeeded or dead with its
//! reason (none lost), and every call Claude billed has its usage row, at the exact cost, except
//! calls that were open (being generated, or answered and not yet stored) in a worker at the
//! moment it was killed: a crash between the call and the store costs at most that call.
//!
//! The workers start at the same moment on a new SQLite file (issue 9, point 7).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use onomancer_shared::db::Database;
use onomancer_shared::queue::JobState;
use onomancer_shared::tenant::TenantRegistry;
use onomancer_shared::transform_job::{DocumentSource, Origin, TransformJob};
use onomancer_shared::usage::cost_micros;
use onomancer_shared::{JobId, NewJob, TenantId};
use onomancer_testkit::claude_fake::{ClaudeFake, Fault, FaultMix};

use crate::helpers::*;

const JOBS: usize = 20;
const KILLS: usize = 3;

fn transform_job(i: usize) -> NewJob {
    let mut text = format!("# Service {i} PRD\n\n");
    let mut n = 0;
    while text.len() < 6_000 {
        n += 1;
        text.push_str(&format!(
            "## Requirement {n}\n\nService {i} answers within {} ms for {} users.\n\n",
            100 + n,
            1_000 * n
        ));
    }
    let job = TransformJob {
        v: 1,
        source: DocumentSource::Text { text },
        personas: Vec::new(),
        product: None,
        origin: Origin::Api,
        user: Some("paid-work-test".into()),
        title: Some(format!("Service {i}")),
    };
    NewJob::new(TenantId::new("thj"), &job)
}

/// The repository's config with fast queue timings and a Claude rate limit that never bites.
fn config() -> tempfile::TempDir {
    let cfg = config_dir(serde_json::json!({
        "claimIdleMs": 1000, "backoffBaseMs": 100, "backoffMaxMs": 1000, "maxAttempts": 10
    }));
    let path = cfg.path().join("defaults.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["rateLimits"]["claude"] = serde_json::json!({"requests": 100000, "perSeconds": 60});
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    cfg
}

fn worker(t: &TestQueue, cfg: &Path, name: &str, claude: &ClaudeFake) -> WorkerProcess {
    WorkerProcess::start_with(
        &t.redis.name,
        cfg,
        name,
        4,
        &[
            ("ANTHROPIC_API_KEY", "test-key"),
            ("ANTHROPIC_BASE_URL", &claude.base_url()),
        ],
    )
}

/// Usage rows: idempotency key -> cost.
async fn billed(db: &Database) -> BTreeMap<String, i64> {
    let Database::Sqlite(pool) = db else {
        unreachable!("the workers use SQLite")
    };
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT idempotency_key, cost_micros FROM usage_records")
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter().collect()
}

/// Message ids the fake billed or will bill that have no usage row now.
async fn open_calls(claude: &ClaudeFake, db: &Database) -> BTreeSet<String> {
    let rows = billed(db).await;
    let mut open = claude.in_flight();
    for call in claude.answered() {
        if !rows.contains_key(&format!("claude:{}", call.id)) {
            open.insert(call.id);
        }
    }
    open
}

/// Waits until the fake has received no new request for 100 ms: what a stopped worker had
/// already written to its sockets has arrived.
async fn requests_settle(claude: &ClaudeFake) {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut seen = claude.calls();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = claude.calls();
        if now == seen || Instant::now() > deadline {
            return;
        }
        seen = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_lose_no_job_and_every_stored_paid_call_is_billed_exactly() {
    let t = TestQueue::new(fast_config()).await;
    let cfg = config();
    let claude = ClaudeFake::start().await;
    // Answers take a while, so kills land while calls are being paid for.
    claude.set_answer_delay(Duration::from_millis(250));
    claude.inject(Some(
        FaultMix::new(99)
            .with(Fault::RateLimited { retry_after: None }, 0.05)
            .with(Fault::Overloaded, 0.05),
    ));
    let ids: Vec<JobId> = t
        .queue
        .enqueue_many((0..JOBS).map(transform_job).collect())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    // Three workers at the same moment on a new SQLite file.
    let mut workers: Vec<WorkerProcess> = (0..3)
        .map(|i| worker(&t, cfg.path(), &format!("paid-{i}"), &claude))
        .collect();
    let db_url = format!("sqlite://{}/worker.db", cfg.path().display());
    let tenant = TenantId::new("thj");

    let mut open_at_kills: BTreeSet<String> = BTreeSet::new();
    for kill in 0..KILLS {
        let target = claude.answered_calls() + 8;
        tokio::time::timeout(Duration::from_secs(30), claude.wait_answered(target))
            .await
            .expect("the workers make progress");
        wait_until(Duration::from_secs(10), "a call in flight", || async {
            !claude.in_flight().is_empty()
        })
        .await;
        let mut victim = workers.remove(0);
        victim.signal("STOP");
        requests_settle(&claude).await;
        let db = Database::connect(&db_url).await.unwrap();
        open_at_kills.extend(open_calls(&claude, &db).await);
        db.close().await;
        victim.signal("KILL");
        let _ = victim.child.wait();
        workers.push(worker(&t, cfg.path(), &format!("paid-r{kill}"), &claude));
    }

    // A killed worker's single-flight locks block the jobs' new owners for one lease (10 s).
    wait_until(
        Duration::from_secs(60),
        "every job succeeded or dead",
        || async {
            for id in &ids {
                let s = t.status(&tenant, id).await;
                if !matches!(s.state, JobState::Succeeded | JobState::Dead) {
                    return false;
                }
            }
            true
        },
    )
    .await;
    let mut states = Vec::new();
    for id in &ids {
        states.push(t.status(&tenant, id).await);
    }
    // (How many times each job ran is issue 9 point 1's promise, tested with the queue.)
    for s in states.iter().filter(|s| s.state == JobState::Dead) {
        let reason = s.error.as_deref().unwrap_or("");
        assert!(!reason.is_empty(), "job {} dead without its reason", s.id);
        eprintln!("job {} dead: {reason}", s.id);
    }
    drop(workers);
    wait_until(Duration::from_secs(10), "generations finished", || async {
        claude.in_flight().is_empty()
    })
    .await;

    let db = Database::connect(&db_url).await.unwrap();
    let rows = billed(&db).await;
    db.close().await;
    let answered = claude.answered();
    let prices = onomancer_worker::transform::wiring::models_and_prices(
        TenantRegistry::load(cfg.path()).unwrap().defaults(),
    )
    .1;
    let by_key: BTreeMap<String, i64> = answered
        .iter()
        .map(|c| {
            let price = prices.get(&c.model).expect("priced model");
            (format!("claude:{}", c.id), cost_micros(&c.tokens, price))
        })
        .collect();
    // Every row is an answered call at its exact cost.
    for (key, cost) in &rows {
        assert_eq!(by_key.get(key), Some(cost), "row {key}");
    }
    let missing: BTreeSet<String> = answered
        .iter()
        .filter(|c| !rows.contains_key(&format!("claude:{}", c.id)))
        .map(|c| c.id.clone())
        .collect();
    assert!(
        missing.is_subset(&open_at_kills),
        "paid calls without a row that were not open at a kill: {:?}",
        missing.difference(&open_at_kills).collect::<Vec<_>>()
    );
    assert!(rows.len() + open_at_kills.len() >= answered.len());
    let succeeded = states
        .iter()
        .filter(|s| s.state == JobState::Succeeded)
        .count();
    assert!(succeeded >= JOBS / 2, "{succeeded} of {JOBS} succeeded");
    eprintln!(
        "paid work: {} answered calls ({} needed by {} succeeded jobs), {} usage rows, {} lost to {} kills (open at the kills: {}), faults {:?}",
        answered.len(),
        4 * succeeded,
        succeeded,
        rows.len(),
        missing.len(),
        KILLS,
        open_at_kills.len(),
        claude.faults()
    );
}
