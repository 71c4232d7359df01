//! Real `onomancer worker` processes: SIGKILL mid-job, SIGTERM, and 10,000 jobs through three.

use std::time::Duration;

use onomancer_shared::payloads::{NoopPayload, SleepPayload};
use onomancer_shared::queue::JobState;
use onomancer_shared::{JobId, NewJob, TenantId};

use crate::helpers::*;

fn sleep_job(ms: u64) -> NewJob {
    NewJob::new(
        TenantId::new("thj"),
        &SleepPayload {
            ms,
            ..SleepPayload::default()
        },
    )
}

async fn all_in(t: &TestQueue, ids: &[JobId], state: JobState) -> bool {
    let tenant = TenantId::new("thj");
    for id in ids {
        if !t
            .queue
            .status(&tenant, id)
            .await
            .unwrap()
            .is_some_and(|s| s.state == state)
        {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn jobs_of_a_killed_worker_are_recovered_and_complete_once() {
    let t = TestQueue::new(fast_config()).await;
    let cfg = config_dir(serde_json::json!({ "claimIdleMs": 1000, "backoffBaseMs": 100 }));
    let ids: Vec<JobId> = t
        .queue
        .enqueue_many((0..8).map(|_| sleep_job(1500)).collect())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let mut a = WorkerProcess::start(&t.redis.name, cfg.path(), "victim", 4);
    let tenant = TenantId::new("thj");
    wait_until(
        Duration::from_secs(20),
        "the victim is running jobs",
        || async {
            let mut running = 0;
            for id in &ids {
                if t.queue
                    .status(&tenant, id)
                    .await
                    .unwrap()
                    .is_some_and(|s| s.state == JobState::Running)
                {
                    running += 1;
                }
            }
            // Concurrency 4 keeps one slot for interactive work: 3 default jobs run.
            running >= 3
        },
    )
    .await;
    a.signal("KILL");
    let _ = a.child.wait();
    let _b = WorkerProcess::start(&t.redis.name, cfg.path(), "rescuer", 4);
    wait_until(Duration::from_secs(30), "every job succeeded", || {
        all_in(&t, &ids, JobState::Succeeded)
    })
    .await;
    for id in &ids {
        let s = t.status(&tenant, id).await;
        assert_eq!(
            s.completions, 1,
            "job {id} completed {} times",
            s.completions
        );
    }
}

#[tokio::test]
async fn sigterm_finishes_in_flight_jobs_then_exits() {
    let t = TestQueue::new(fast_config()).await;
    let cfg = config_dir(serde_json::json!({ "claimIdleMs": 30000 }));
    let ids: Vec<JobId> = t
        .queue
        .enqueue_many((0..2).map(|_| sleep_job(800)).collect())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let mut w = WorkerProcess::start(&t.redis.name, cfg.path(), "graceful", 4);
    wait_until(Duration::from_secs(20), "jobs running", || {
        all_in(&t, &ids, JobState::Running)
    })
    .await;
    w.signal("TERM");
    let status = w.child.wait().unwrap();
    assert!(status.success(), "worker exited with {status}");
    assert!(
        all_in(&t, &ids, JobState::Succeeded).await,
        "in-flight jobs finished before exit"
    );
}

#[tokio::test]
async fn ten_thousand_jobs_through_three_worker_processes_none_lost_none_twice() {
    let t = TestQueue::new(fast_config()).await;
    let cfg = config_dir(serde_json::json!({ "claimIdleMs": 30000 }));
    let mut ids = Vec::new();
    for _ in 0..10 {
        let batch: Vec<NewJob> = (0..1000)
            .map(|_| NewJob::new(TenantId::new("thj"), &NoopPayload {}))
            .collect();
        ids.extend(
            t.queue
                .enqueue_many(batch)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id),
        );
    }
    let mut _w: Vec<WorkerProcess> = (0..3)
        .map(|i| WorkerProcess::start(&t.redis.name, cfg.path(), &format!("w{i}"), 16))
        .collect();
    let tenant = TenantId::new("thj");
    let keys: Vec<String> = ids
        .iter()
        .map(|id| t.queue.keys().status(&tenant, id))
        .collect();
    let read_all = || async {
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.cmd("HMGET").arg(k).arg("state").arg("completions");
        }
        let v: Vec<(Option<String>, Option<u32>)> =
            pipe.query_async(&mut t.redis.conn.clone()).await.unwrap();
        v
    };
    wait_until(Duration::from_secs(60), "10,000 jobs succeeded", || async {
        read_all()
            .await
            .iter()
            .all(|(s, _)| s.as_deref() == Some("succeeded"))
    })
    .await;
    let all = read_all().await;
    assert_eq!(all.len(), 10_000);
    assert!(
        all.iter().all(|(_, c)| *c == Some(1)),
        "some job completed twice or never"
    );
    // All three workers took part, and all are still alive.
    let mut pipe = redis::pipe();
    for k in &keys {
        pipe.cmd("HGET").arg(k).arg("consumer");
    }
    let consumers: std::collections::BTreeSet<String> = pipe
        .query_async::<Vec<String>>(&mut t.redis.conn.clone())
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(consumers.len(), 3, "jobs were spread over {consumers:?}");
    for w in &mut _w {
        assert!(
            w.child.try_wait().unwrap().is_none(),
            "a worker exited early"
        );
    }
    assert!(t.queue.dlq_list(None, 1).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_worker_process_exports_queue_metrics() {
    let t = TestQueue::new(fast_config()).await;
    let cfg = config_dir(serde_json::json!({ "claimIdleMs": 30000, "maxAttempts": 1 }));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut jobs: Vec<NewJob> = (0..5)
        .map(|_| NewJob::new(TenantId::new("thj"), &NoopPayload {}))
        .collect();
    jobs.push(NewJob::new(
        TenantId::new("thj"),
        &SleepPayload {
            terminal: Some("no".into()),
            ..SleepPayload::default()
        },
    ));
    let ids: Vec<JobId> = t
        .queue
        .enqueue_many(jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let mut w = WorkerProcess::start_with(
        &t.redis.name,
        cfg.path(),
        "metered",
        2,
        &[("ONOMANCER_METRICS_ADDR", &addr.to_string())],
    );
    let tenant = TenantId::new("thj");
    wait_until(Duration::from_secs(20), "jobs finished", || async {
        let mut done = 0;
        for id in &ids {
            if t.queue
                .status(&tenant, id)
                .await
                .unwrap()
                .is_some_and(|s| matches!(s.state, JobState::Succeeded | JobState::Dead))
            {
                done += 1;
            }
        }
        done == ids.len()
    })
    .await;
    let get =
        |path: &'static str| async move { reqwest::get(format!("http://{addr}{path}")).await.ok() };
    let ready = get("/readyz").await.expect("readyz answers");
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        ready,
        serde_json::json!({"status": "ready", "redis": "ok"}),
        "the same /readyz format as the gateway's"
    );
    let body = std::sync::Mutex::new(String::new());
    wait_until(Duration::from_secs(10), "acks exported", || async {
        let text = get("/metrics").await.unwrap().text().await.unwrap();
        let done = text.contains(r#"onomancer_jobs_acked_total{kind="diag.noop",tenant="thj"} 5"#);
        *body.lock().unwrap() = text;
        done
    })
    .await;
    let body = body.into_inner().unwrap();
    for needle in [
        r#"onomancer_jobs_claimed_total{kind="diag.noop",tenant="thj"} 5"#,
        r#"onomancer_jobs_dead_lettered_total{kind="diag.sleep",tenant="thj"} 1"#,
        "onomancer_job_duration_seconds_bucket",
        r#"onomancer_queue_depth{lane="default"}"#,
    ] {
        assert!(body.contains(needle), "missing {needle} in:\n{body}");
    }
    w.signal("TERM");
    assert!(w.child.wait().unwrap().success());
}

#[tokio::test]
async fn a_restarted_worker_drains_its_own_pending_jobs_first() {
    // Claim idle of 10 minutes: only the restarted consumer itself can pick these jobs up in time.
    let t = TestQueue::new(fast_config()).await;
    let cfg = config_dir(serde_json::json!({ "claimIdleMs": 600000 }));
    let ids: Vec<JobId> = t
        .queue
        .enqueue_many((0..3).map(|_| sleep_job(1500)).collect())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let mut first = WorkerProcess::start(&t.redis.name, cfg.path(), "phoenix", 4);
    wait_until(Duration::from_secs(20), "jobs running", || {
        all_in(&t, &ids, JobState::Running)
    })
    .await;
    first.signal("KILL");
    let _ = first.child.wait();
    // Same name, as a restarted container (same host name, pid 1) would have.
    let _again = WorkerProcess::start(&t.redis.name, cfg.path(), "phoenix", 4);
    wait_until(Duration::from_secs(30), "drained and done", || {
        all_in(&t, &ids, JobState::Succeeded)
    })
    .await;
    let tenant = TenantId::new("thj");
    for id in &ids {
        let s = t.status(&tenant, id).await;
        assert_eq!(s.completions, 1);
    }
}
