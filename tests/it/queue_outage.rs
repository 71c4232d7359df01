//! Redis going away and coming back, on a private server (the machine's Redis is never stopped):
//! work resumes within a second of Redis answering, and an outage longer than the claim-idle
//! time does not make live workers look dead (their running jobs are not run again).

use std::sync::Arc;
use std::time::{Duration, Instant};

use onomancer_shared::queue::{JobState, WorkerOptions, WorkerRuntime};
use onomancer_shared::{JobId, Lane, TenantId};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

/// Stops `redis` for `down`, starts it again on the same port and data, and returns it with the
/// moment it answered again.
async fn outage(redis: PrivateRedis, down: Duration) -> (PrivateRedis, Instant) {
    let (port, dir) = redis.stop();
    // The outage itself is the scenario: Redis stays away this long.
    tokio::time::sleep(down).await;
    let redis = PrivateRedis::start(port, dir);
    let url = redis.url();
    wait_until(Duration::from_secs(10), "redis back", || answers(&url)).await;
    (redis, Instant::now())
}

#[tokio::test]
async fn after_a_redis_outage_work_resumes_within_a_second_of_redis_answering() {
    let port = free_ports(1)[0];
    let redis = PrivateRedis::start(port, tempfile::tempdir().unwrap());
    let url = redis.url();
    wait_until(Duration::from_secs(10), "private redis", || answers(&url)).await;
    let queue = queue_at(&url, fast_config()).await;
    let h = Arc::new(ScriptedHandler::default());
    let mut options = WorkerOptions::new("resumer");
    options.block = Duration::from_millis(50);
    let runtime = WorkerRuntime::new(queue.clone(), h.clone(), options);
    let stop = CancellationToken::new();
    let task = tokio::spawn(runtime.run(stop.clone().cancelled_owned()));
    queue
        .enqueue(scripted("thj", Lane::Default, &Script::default()))
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), "first job done", || async {
        h.completed.lock().unwrap().len() == 1
    })
    .await;

    // Down for 4 s: long enough for a growing reconnect wait to have reached seconds.
    let (redis, answering) = outage(redis, Duration::from_secs(4)).await;
    let job = loop {
        // The test's own first call may meet the old, dead connection.
        match queue
            .enqueue(scripted("thj", Lane::Default, &Script::default()))
            .await
        {
            Ok(e) => break e,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    wait_until(
        Duration::from_secs(10),
        "the job after the outage ran",
        || async { h.completed.lock().unwrap().len() == 2 },
    )
    .await;
    let started = h
        .started
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.0 == job.id)
        .expect("started")
        .2;
    let resumed_after = started - answering;
    stop.cancel();
    task.await.unwrap().unwrap();
    drop(redis);
    assert!(
        resumed_after < Duration::from_secs(1),
        "the worker resumed {resumed_after:?} after Redis answered again"
    );
}

#[tokio::test]
async fn a_redis_outage_longer_than_claim_idle_does_not_make_live_workers_dead() {
    let port = free_ports(1)[0];
    let redis = PrivateRedis::start(port, tempfile::tempdir().unwrap());
    let url = redis.url();
    wait_until(Duration::from_secs(10), "private redis", || answers(&url)).await;
    let mut config = fast_config();
    config.claim_idle = Duration::from_millis(600);
    let queue = queue_at(&url, config.clone()).await;
    let ids: Vec<JobId> = queue
        .enqueue_many(
            (0..6)
                .map(|_| {
                    scripted(
                        "thj",
                        Lane::Default,
                        &Script {
                            sleep_ms: 4000,
                            ..Script::default()
                        },
                    )
                })
                .collect(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    // Two workers with connections of their own, as two processes would have; 3 default slots each.
    let mut workers = Vec::new();
    for name in ["a", "b"] {
        let q = queue_at(&url, config.clone()).await;
        let h = Arc::new(ScriptedHandler::default());
        workers.push(spawn_worker(&q, h, name, 4));
    }
    let tenant = TenantId::new("thj");
    let all_in = |state: JobState| {
        let (queue, ids, tenant) = (queue.clone(), ids.clone(), tenant.clone());
        async move {
            for id in &ids {
                match queue.status(&tenant, id).await {
                    Ok(Some(s)) if s.state == state => {}
                    _ => return false,
                }
            }
            true
        }
    };
    wait_until(Duration::from_secs(10), "all 6 running", || {
        all_in(JobState::Running)
    })
    .await;
    // Down for 2 s, over three times the claim-idle time, while every job is still running.
    let (redis, _) = outage(redis, Duration::from_secs(2)).await;
    wait_until(Duration::from_secs(20), "all 6 succeeded", || {
        all_in(JobState::Succeeded)
    })
    .await;
    for (stop, task) in workers {
        stop.cancel();
        task.await.unwrap();
    }
    for s in statuses(&queue, &ids).await {
        assert_eq!(
            (s.completions, s.deliveries),
            (1, 1),
            "job {} ran again after the outage",
            s.id
        );
    }
    drop(redis);
}
