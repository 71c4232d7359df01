//! Losing Redis (a restart) and shutting down past the grace period: nothing is lost.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use onomancer_shared::queue::{JobState, Queue, QueueMetrics, WorkerOptions, WorkerRuntime};
use onomancer_shared::{JobId, KeySpace, Lane, RedisConn, TenantId};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

#[tokio::test]
async fn a_redis_restart_loses_nothing_and_readiness_follows_it() {
    let port = free_ports(1)[0];
    let redis = PrivateRedis::start(port, tempfile::tempdir().unwrap());
    let url = redis.url();
    wait_until(Duration::from_secs(10), "private redis", || answers(&url)).await;
    let conn = RedisConn::connect(&url).await.unwrap();
    let queue = Queue::from_parts(
        conn,
        &url,
        KeySpace::production(),
        fast_config(),
        QueueMetrics::unregistered(),
    );
    let tenant = TenantId::new("thj");
    let first: Vec<JobId> = queue
        .enqueue_many(
            (0..20)
                .map(|_| scripted("thj", Lane::Default, &Script::default()))
                .collect(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let h = Arc::new(ScriptedHandler::default());
    let mut options = WorkerOptions::new("survivor");
    options.block = Duration::from_millis(50);
    let runtime = WorkerRuntime::new(queue.clone(), h.clone(), options);
    let handle = runtime.handle();
    let stop = CancellationToken::new();
    let task = tokio::spawn(runtime.run(stop.clone().cancelled_owned()));
    wait_until(Duration::from_secs(10), "first jobs done", || async {
        h.completed.lock().unwrap().len() == 20
    })
    .await;
    assert!(handle.ready.load(Ordering::Relaxed));

    // Redis goes away: the worker reports not ready and keeps trying.
    let (port, dir) = redis.stop();
    wait_until(Duration::from_secs(15), "worker notices", || async {
        !handle.ready.load(Ordering::Relaxed)
    })
    .await;
    assert!(queue.ping().await.is_err());

    // Redis comes back with its data: the worker reconnects and runs new work.
    let redis = PrivateRedis::start(port, dir);
    wait_until(Duration::from_secs(10), "redis back", || answers(&url)).await;
    let second: Vec<JobId> = loop {
        // The first enqueue after the restart may meet the old, dead connection.
        match queue
            .enqueue_many(
                (0..20)
                    .map(|_| scripted("thj", Lane::Default, &Script::default()))
                    .collect(),
            )
            .await
        {
            Ok(v) => break v.into_iter().map(|e| e.id).collect(),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    wait_until(Duration::from_secs(20), "second jobs done", || async {
        h.completed.lock().unwrap().len() == 40
    })
    .await;
    wait_until(Duration::from_secs(5), "ready again", || async {
        handle.ready.load(Ordering::Relaxed)
    })
    .await;
    for id in first.iter().chain(&second) {
        let s = queue
            .status(&tenant, id)
            .await
            .unwrap()
            .expect("status kept across the restart");
        assert_eq!((s.state, s.completions), (JobState::Succeeded, 1));
    }
    stop.cancel();
    task.await.unwrap().unwrap();
    drop(redis);
}

#[tokio::test]
async fn jobs_still_running_at_the_deadline_are_handed_back_and_finished_elsewhere() {
    // A long claim-idle time, so only the hand-back can explain a quick restart elsewhere.
    let mut config = fast_config();
    config.claim_idle = Duration::from_secs(60);
    let t = TestQueue::new(config).await;
    let tenant = TenantId::new("thj");
    let slow = t
        .queue
        .enqueue(scripted(
            "thj",
            Lane::Default,
            &Script {
                sleep_ms: 30_000,
                ..Script::default()
            },
        ))
        .await
        .unwrap();
    let h = Arc::new(ScriptedHandler::default());
    let mut options = WorkerOptions::new("leaving");
    options.block = Duration::from_millis(50);
    options.shutdown_grace = Duration::from_millis(200);
    let runtime = WorkerRuntime::new(t.queue.clone(), h.clone(), options);
    let stop = CancellationToken::new();
    let task = tokio::spawn(runtime.run(stop.clone().cancelled_owned()));
    wait_until(Duration::from_secs(10), "slow job started", || async {
        !h.started.lock().unwrap().is_empty()
    })
    .await;
    stop.cancel();
    task.await.unwrap().unwrap();
    let s = t.status(&tenant, &slow.id).await;
    assert_eq!(
        s.state,
        JobState::Queued,
        "handed back, not left pending for the idle timeout"
    );
    assert_eq!(s.completions, 0);
    // Another worker starts it at once, not after the claim-idle time.
    let h2 = Arc::new(ScriptedHandler::default());
    let (stop2, task2) = spawn_worker(&t.queue, h2.clone(), "next", 1);
    wait_until(
        Duration::from_secs(5),
        "restarted elsewhere long before the claim-idle time",
        || async { !h2.started.lock().unwrap().is_empty() },
    )
    .await;
    stop2.cancel();
    let _ = task2.await;
}
