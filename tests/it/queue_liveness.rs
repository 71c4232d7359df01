//! Liveness per worker, with real `onomancer worker` processes: a job longer than the claim-idle
//! time runs once whatever the number of workers, a worker holds only what it runs (so one that
//! joins a claimed backlog gets its share at once), and a killed worker's jobs are recovered.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use onomancer_shared::queue::{JobState, Queue, GROUP};
use onomancer_shared::{JobId, Lane, TenantId};

use crate::helpers::*;

/// `XPENDING key group`: count, smallest and greatest id, and (consumer, count) pairs.
type PendingSummary = (u64, Option<String>, Option<String>, Vec<(String, String)>);

/// Entries of the `thj` default-lane stream each consumer holds (claimed, not acknowledged).
async fn held(queue: &Queue) -> BTreeMap<String, u64> {
    let stream = queue.keys().stream(&TenantId::new("thj"), Lane::Default);
    let (_, _, _, consumers): PendingSummary = redis::cmd("XPENDING")
        .arg(&stream)
        .arg(GROUP)
        .query_async(&mut queue.conn())
        .await
        .unwrap();
    consumers
        .into_iter()
        .map(|(c, n)| (c, n.parse().unwrap()))
        .collect()
}

async fn all_succeeded(queue: &Queue, ids: &[JobId]) -> bool {
    let s = statuses(queue, ids).await;
    s.len() == ids.len() && s.iter().all(|s| s.state == JobState::Succeeded)
}

/// `jobs` sleeps of 1.5 s (claim-idle 0.4 s) through `workers` worker processes of concurrency
/// 4 (3 default slots): every job completes once, on its first delivery.
async fn long_jobs_run_once_with(workers: usize, jobs: usize) {
    let t = TestQueue::new(fast_config()).await;
    let cfg = config_dir(serde_json::json!({ "claimIdleMs": 400 }));
    let ids = enqueue_sleeps(&t.queue, jobs, 1500).await;
    let _w: Vec<WorkerProcess> = (0..workers)
        .map(|i| WorkerProcess::start(&t.redis.name, cfg.path(), &format!("w{i}"), 4))
        .collect();
    wait_until(Duration::from_secs(25), "every job succeeded", || {
        all_succeeded(&t.queue, &ids)
    })
    .await;
    for s in statuses(&t.queue, &ids).await {
        assert_eq!(
            (s.completions, s.deliveries),
            (1, 1),
            "job {} completed {} times in {} deliveries",
            s.id,
            s.completions,
            s.deliveries
        );
    }
}

#[tokio::test]
async fn jobs_longer_than_claim_idle_run_exactly_once_with_one_worker() {
    long_jobs_run_once_with(1, 6).await;
}

#[tokio::test]
async fn jobs_longer_than_claim_idle_run_exactly_once_with_two_workers() {
    long_jobs_run_once_with(2, 8).await;
}

#[tokio::test]
async fn jobs_longer_than_claim_idle_run_exactly_once_with_four_workers_some_idle() {
    long_jobs_run_once_with(4, 8).await;
}

#[tokio::test]
async fn a_worker_joining_a_claimed_backlog_gets_a_fair_share_within_a_second() {
    let t = TestQueue::new(fast_config()).await;
    let cfg = config_dir(serde_json::json!({ "claimIdleMs": 30000 }));
    enqueue_sleeps(&t.queue, 30, 2000).await;
    let _first = WorkerProcess::start(&t.redis.name, cfg.path(), "first", 4);
    wait_until(
        Duration::from_secs(20),
        "the first worker runs 3",
        || async { held(&t.queue).await.get("first") == Some(&3) },
    )
    .await;
    // It holds what it runs and nothing more: the rest of the backlog is free for others.
    assert_eq!(held(&t.queue).await, BTreeMap::from([("first".into(), 3)]));
    let _second = WorkerProcess::start(&t.redis.name, cfg.path(), "second", 4);
    let consumers = t.queue.keys().consumers();
    wait_until(
        Duration::from_secs(20),
        "the second worker is live",
        || async {
            let score: Option<f64> =
                redis::AsyncCommands::zscore(&mut t.queue.conn(), &consumers, "second")
                    .await
                    .unwrap();
            score.is_some()
        },
    )
    .await;
    let live_at = Instant::now();
    wait_until(
        Duration::from_secs(1),
        "the second worker has its share (3 jobs) within a second of going live",
        || async { held(&t.queue).await.get("second") == Some(&3) },
    )
    .await;
    let share_after = live_at.elapsed();
    assert_eq!(
        held(&t.queue).await.get("first"),
        Some(&3),
        "nobody took the first worker's running jobs"
    );
    assert!(share_after < Duration::from_secs(1));
}

#[tokio::test]
async fn a_killed_workers_jobs_are_recovered_and_a_live_workers_are_never_taken() {
    let t = TestQueue::new(fast_config()).await;
    let cfg = config_dir(serde_json::json!({ "claimIdleMs": 500 }));
    let ids = enqueue_sleeps(&t.queue, 6, 2500).await;
    let mut victim = WorkerProcess::start(&t.redis.name, cfg.path(), "victim", 4);
    let _survivor = WorkerProcess::start(&t.redis.name, cfg.path(), "survivor", 4);
    wait_until(Duration::from_secs(20), "both run 3 jobs", || async {
        let h = held(&t.queue).await;
        h.get("victim") == Some(&3) && h.get("survivor") == Some(&3)
    })
    .await;
    let tenant = TenantId::new("thj");
    let mut victims = Vec::new();
    for id in &ids {
        let consumer: Option<String> = redis::AsyncCommands::hget(
            &mut t.queue.conn(),
            t.queue.keys().status(&tenant, id),
            "consumer",
        )
        .await
        .unwrap();
        if consumer.as_deref() == Some("victim") {
            victims.push(id.clone());
        }
    }
    assert_eq!(victims.len(), 3);
    victim.signal("KILL");
    let _ = victim.child.wait();
    wait_until(Duration::from_secs(25), "every job succeeded", || {
        all_succeeded(&t.queue, &ids)
    })
    .await;
    for s in statuses(&t.queue, &ids).await {
        let expected = if victims.contains(&s.id) { 2 } else { 1 };
        assert_eq!(
            (s.completions, s.deliveries),
            (1, expected),
            "job {}: a killed worker's job is delivered again, a live one's never",
            s.id
        );
    }
}

#[tokio::test]
async fn a_worker_that_lost_its_consumer_name_leaves_the_new_holders_lease_when_it_stops() {
    let t = TestQueue::new(fast_config()).await;
    let name = t.queue.keys().consumer_lease("lease-loser");
    let (stop, task) = spawn_worker(
        &t.queue,
        std::sync::Arc::new(ScriptedHandler::default()),
        "lease-loser",
        1,
    );
    wait_until(
        Duration::from_secs(5),
        "the worker holds its name",
        || async {
            redis::AsyncCommands::exists::<_, bool>(&mut t.redis.conn.clone(), &name)
                .await
                .unwrap()
        },
    )
    .await;

    // The worker stalls past its name lease and another process takes the name; then it stops.
    let _: () = redis::AsyncCommands::set(&mut t.redis.conn.clone(), &name, "other-process")
        .await
        .unwrap();
    stop.cancel();
    task.await.unwrap();

    let holder: Option<String> = redis::AsyncCommands::get(&mut t.redis.conn.clone(), &name)
        .await
        .unwrap();
    assert_eq!(holder.as_deref(), Some("other-process"));
}
