//! Fairness between tenants, lane priority, and per-tenant upstream rate limits shared by workers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use onomancer_shared::queue::{
    JobState, Queue, QueueMetrics, RateLimit, RateLimiter, WorkerOptions, WorkerRuntime,
};
use onomancer_shared::{Lane, TenantId};

use crate::helpers::*;

#[tokio::test]
async fn a_noisy_tenant_does_not_delay_a_quiet_one() {
    let t = TestQueue::new(fast_config()).await;
    let noisy = TenantId::new("noisy");
    let quiet = TenantId::new("quiet");
    // 10,000 queued jobs of 5 ms each: a FIFO would make the quiet job wait ~12 s at concurrency 4.
    let backlog: Vec<_> = (0..10_000)
        .map(|_| {
            scripted(
                "noisy",
                Lane::Default,
                &Script {
                    sleep_ms: 5,
                    ..Script::default()
                },
            )
        })
        .collect();
    for chunk in backlog.chunks(1000) {
        t.queue.enqueue_many(chunk.to_vec()).await.unwrap();
    }
    let h = Arc::new(ScriptedHandler::default());
    let (stop, task) = spawn_worker(&t.queue, h.clone(), "w", 4);
    wait_until(Duration::from_secs(10), "backlog started", || async {
        h.completed.lock().unwrap().len() > 50
    })
    .await;
    let enqueued_at = Instant::now();
    let e = t
        .queue
        .enqueue(scripted("quiet", Lane::Default, &Script::default()))
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), "quiet job done", || async {
        t.queue
            .status(&quiet, &e.id)
            .await
            .unwrap()
            .is_some_and(|s| s.state == JobState::Succeeded)
    })
    .await;
    let started = h
        .started
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.0 == e.id)
        .unwrap()
        .2;
    let delay = started - enqueued_at;
    let noisy_done = h.completed.lock().unwrap().len();
    stop.cancel();
    task.await.unwrap();
    assert!(
        delay < Duration::from_secs(1),
        "quiet tenant waited {delay:?} behind {noisy}'s backlog"
    );
    assert!(
        noisy_done < 10_000,
        "the backlog was still there when the quiet job ran"
    );
}

#[tokio::test]
async fn interactive_jobs_go_first() {
    let t = TestQueue::new(fast_config()).await;
    let tenant = TenantId::new("thj");
    t.queue
        .enqueue_many(
            (0..200)
                .map(|_| {
                    scripted(
                        "thj",
                        Lane::Bulk,
                        &Script {
                            sleep_ms: 2,
                            ..Script::default()
                        },
                    )
                })
                .collect(),
        )
        .await
        .unwrap();
    let h = Arc::new(ScriptedHandler::default());
    let (stop, task) = spawn_worker(&t.queue, h.clone(), "w", 2);
    wait_until(Duration::from_secs(10), "bulk started", || async {
        h.completed.lock().unwrap().len() > 10
    })
    .await;
    let e = t
        .queue
        .enqueue(scripted("thj", Lane::Interactive, &Script::default()))
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), "interactive done", || async {
        t.queue
            .status(&tenant, &e.id)
            .await
            .unwrap()
            .is_some_and(|s| s.state == JobState::Succeeded)
    })
    .await;
    let bulk_done = h.completed.lock().unwrap().len();
    stop.cancel();
    task.await.unwrap();
    assert!(
        bulk_done < 150,
        "interactive job waited for {bulk_done} bulk jobs"
    );
}

#[tokio::test]
async fn a_rate_limit_shared_by_three_workers_is_never_exceeded_and_fails_nothing() {
    // The seed's 50 requests/min, scaled in time: 5 requests per 1 s window, 20 jobs, 3 workers.
    let limit = RateLimit::new(5, Duration::from_secs(1));
    let t = TestQueue::new(fast_config()).await;
    let tenant = TenantId::new("thj");
    let ids: Vec<_> = t
        .queue
        .enqueue_many(
            (0..20)
                .map(|_| {
                    scripted(
                        "thj",
                        Lane::Default,
                        &Script {
                            limit_service: Some("claude".into()),
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
    let mut workers = Vec::new();
    let mut handlers = Vec::new();
    for i in 0..3 {
        // Each worker has its own connection, as separate processes would.
        let conn = onomancer_shared::RedisConn::connect(&onomancer_testkit::redis_ns::redis_url())
            .await
            .unwrap();
        let q = Queue::from_parts(
            conn,
            &onomancer_testkit::redis_ns::redis_url(),
            t.queue.keys().clone(),
            t.queue.config().clone(),
            QueueMetrics::unregistered(),
        );
        let limiter = RateLimiter::new(q.clone(), BTreeMap::from([("claude".to_owned(), limit)]));
        let h = Arc::new(ScriptedHandler {
            limiter: Some(limiter),
            ..ScriptedHandler::default()
        });
        workers.push(spawn_worker(&q, h.clone(), &format!("w{i}"), 4));
        handlers.push(h);
    }
    for id in &ids {
        wait_until(Duration::from_secs(20), "all jobs succeed", || async {
            t.queue
                .status(&tenant, id)
                .await
                .unwrap()
                .is_some_and(|s| s.state == JobState::Succeeded)
        })
        .await;
    }
    for (stop, task) in workers {
        stop.cancel();
        task.await.unwrap();
    }
    let mut grants: Vec<Instant> = handlers
        .iter()
        .flat_map(|h| {
            h.started
                .lock()
                .unwrap()
                .iter()
                .map(|r| r.2)
                .collect::<Vec<_>>()
        })
        .collect();
    grants.sort();
    assert_eq!(
        grants.len(),
        20,
        "each job called the upstream exactly once; none failed"
    );
    // In any window a little shorter than 1 s (local timestamps trail the server's grant time),
    // at most 5 calls.
    for (i, g) in grants.iter().enumerate() {
        let in_window = grants[i..]
            .iter()
            .take_while(|x| **x - *g < Duration::from_millis(950))
            .count();
        assert!(
            in_window <= 5,
            "{in_window} calls within one window starting at call {i}"
        );
    }
    assert!(
        grants[19] - grants[0] >= Duration::from_secs(3),
        "20 calls at 5/s take at least 3 s"
    );
    for id in &ids {
        assert_eq!(
            t.status(&tenant, id).await.attempt,
            1,
            "deferral is not an attempt"
        );
    }
}

#[tokio::test]
async fn interactive_and_default_work_start_in_reserved_slots_while_bulk_fills_the_rest() {
    // Concurrency 4 with the default shares: 1 slot kept for interactive, 1 for default.
    let t = TestQueue::new(fast_config()).await;
    let tenant = TenantId::new("thj");
    let long_bulk = Script {
        sleep_ms: 60_000,
        ..Script::default()
    };
    t.queue
        .enqueue_many(
            (0..20)
                .map(|_| scripted("thj", Lane::Bulk, &long_bulk))
                .collect(),
        )
        .await
        .unwrap();
    let h = Arc::new(ScriptedHandler::default());
    let mut options = WorkerOptions::new("w");
    options.concurrency = 4;
    options.block = Duration::from_millis(50);
    // The long bulk jobs are handed back at the end instead of being waited for.
    options.shutdown_grace = Duration::from_millis(100);
    let runtime = WorkerRuntime::new(t.queue.clone(), h.clone(), options);
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(runtime.run(stop.clone().cancelled_owned()));
    wait_until(
        Duration::from_secs(10),
        "bulk fills its 2 slots",
        || async { h.started.lock().unwrap().len() == 2 },
    )
    .await;
    let person = t
        .queue
        .enqueue(scripted("thj", Lane::Interactive, &Script::default()))
        .await
        .unwrap();
    let webhook = t
        .queue
        .enqueue(scripted("thj", Lane::Default, &Script::default()))
        .await
        .unwrap();
    for id in [&person.id, &webhook.id] {
        wait_until(
            Duration::from_secs(10),
            "reserved-slot job done",
            || async {
                t.queue
                    .status(&tenant, id)
                    .await
                    .unwrap()
                    .is_some_and(|s| s.state == JobState::Succeeded)
            },
        )
        .await;
    }
    let started = h.started.lock().unwrap().clone();
    let bulk_started = started
        .iter()
        .filter(|r| r.0 != person.id && r.0 != webhook.id)
        .count();
    let bulk_done = h
        .completed
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.0 != person.id && r.0 != webhook.id)
        .count();
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(
        (bulk_started, bulk_done),
        (2, 0),
        "bulk never took a reserved slot, and nothing waited for a bulk job to end"
    );
}
