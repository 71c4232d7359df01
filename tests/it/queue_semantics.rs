//! Enqueue, status, idempotency, claim extension and trimming safety.

use std::sync::Arc;
use std::time::Duration;

use onomancer_shared::queue::{JobState, GROUP};
use onomancer_shared::{JobId, Lane, TenantId};
use redis::AsyncCommands;

use crate::helpers::*;

#[tokio::test]
async fn a_job_runs_once_and_its_status_follows_it() {
    let t = TestQueue::new(fast_config()).await;
    let tenant = TenantId::new("thj");
    let e = t
        .queue
        .enqueue(scripted("thj", Lane::Default, &Script::default()))
        .await
        .unwrap();
    assert!(e.created);
    assert_eq!(t.status(&tenant, &e.id).await.state, JobState::Queued);
    let h = Arc::new(ScriptedHandler::default());
    let (stop, task) = spawn_worker(&t.queue, h.clone(), "w1", 4);
    wait_until(Duration::from_secs(10), "job succeeded", || async {
        t.queue
            .status(&tenant, &e.id)
            .await
            .unwrap()
            .is_some_and(|s| s.state == JobState::Succeeded)
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    let s = t.status(&tenant, &e.id).await;
    assert_eq!((s.attempt, s.completions), (1, 1));
    assert_eq!(s.result, Some(serde_json::json!({"ok": true})));
    // The status expires (TTL set) and nothing is left pending.
    let ttl: i64 = t
        .redis
        .conn
        .clone()
        .ttl(t.queue.keys().status(&tenant, &e.id))
        .await
        .unwrap();
    assert!(ttl > 0);
    let (pending, ..): (u64, Option<String>, Option<String>, redis::Value) = redis::cmd("XPENDING")
        .arg(t.queue.keys().stream(&tenant, Lane::Default))
        .arg(GROUP)
        .query_async(&mut t.redis.conn.clone())
        .await
        .unwrap();
    assert_eq!(pending, 0);
}

#[tokio::test]
async fn the_same_idempotency_key_creates_one_job() {
    let t = TestQueue::new(fast_config()).await;
    let job = || {
        scripted("thj", Lane::Default, &Script::default()).idempotency_key("github:abc:activity")
    };
    let first = t.queue.enqueue(job()).await.unwrap();
    let again = t.queue.enqueue(job()).await.unwrap();
    assert!(first.created);
    assert!(!again.created);
    assert_eq!(first.id, again.id);
    // 50 concurrent requests with one new key: exactly one creates.
    let results = futures::future::join_all((0..50).map(|_| {
        let q = t.queue.clone();
        async move {
            q.enqueue(scripted("thj", Lane::Default, &Script::default()).idempotency_key("race"))
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.created).count(), 1);
    assert!(results.iter().all(|r| r.id == results[0].id));
    let len: u64 = t
        .redis
        .conn
        .clone()
        .xlen(t.queue.keys().stream(&TenantId::new("thj"), Lane::Default))
        .await
        .unwrap();
    assert_eq!(len, 2, "two distinct keys, two entries");
    // A batch mixing keyed and unkeyed jobs keeps the order of its answers.
    let batch = t
        .queue
        .enqueue_many(vec![job(), scripted("thj", Lane::Bulk, &Script::default())])
        .await
        .unwrap();
    assert_eq!(batch[0].id, first.id);
    assert!(!batch[0].created && batch[1].created);
}

#[tokio::test]
async fn a_long_job_keeps_its_claim_and_is_never_stolen() {
    // Claim idle 1 s; the job runs 3.5 s while a second worker keeps reclaiming.
    let t = TestQueue::new(fast_config()).await;
    let tenant = TenantId::new("thj");
    let script = Script {
        sleep_ms: 3500,
        ..Script::default()
    };
    let e = t
        .queue
        .enqueue(scripted("thj", Lane::Default, &script))
        .await
        .unwrap();
    let h1 = Arc::new(ScriptedHandler::default());
    let (s1, t1) = spawn_worker(&t.queue, h1.clone(), "owner", 1);
    wait_until(Duration::from_secs(5), "job started", || async {
        !h1.started.lock().unwrap().is_empty()
    })
    .await;
    let h2 = Arc::new(ScriptedHandler::default());
    let (s2, t2) = spawn_worker(&t.queue, h2.clone(), "thief", 1);
    wait_until(Duration::from_secs(10), "job succeeded", || async {
        t.queue
            .status(&tenant, &e.id)
            .await
            .unwrap()
            .is_some_and(|s| s.state == JobState::Succeeded)
    })
    .await;
    s1.cancel();
    s2.cancel();
    t1.await.unwrap();
    t2.await.unwrap();
    assert!(
        h2.started.lock().unwrap().is_empty(),
        "the second worker never ran the live job"
    );
    assert_eq!(t.status(&tenant, &e.id).await.completions, 1);
}

#[tokio::test]
async fn trimming_never_removes_an_unacknowledged_entry() {
    let t = TestQueue::new(fast_config()).await;
    let tenant = TenantId::new("thj");
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(
            t.queue
                .enqueue(scripted("thj", Lane::Default, &Script::default()))
                .await
                .unwrap(),
        );
    }
    let stream = t.queue.keys().stream(&tenant, Lane::Default);
    let mut c = t.redis.conn.clone();
    // A consumer takes 6 entries and acknowledges the 1st, 2nd, 3rd and 5th; the 4th and 6th
    // stay pending; 4 are never delivered.
    let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg("manual")
        .arg("COUNT")
        .arg(6)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut c)
        .await
        .unwrap();
    let got: Vec<String> = read.keys[0].ids.iter().map(|e| e.id.clone()).collect();
    let _: u64 = redis::cmd("XACK")
        .arg(&stream)
        .arg(GROUP)
        .arg(&[&got[0], &got[1], &got[2], &got[4]])
        .query_async(&mut c)
        .await
        .unwrap();
    let removed = t.queue.trim_acknowledged().await.unwrap();
    assert_eq!(
        removed, 3,
        "only the acknowledged head before the oldest pending entry goes"
    );
    let left: redis::streams::StreamRangeReply = c.xrange_all(&stream).await.unwrap();
    let left: Vec<String> = left.ids.into_iter().map(|e| e.id).collect();
    assert!(
        left.contains(&got[3]) && left.contains(&got[5]),
        "pending entries kept"
    );
    assert_eq!(
        left.len(),
        7,
        "pending, acknowledged-after-pending and undelivered entries kept"
    );
    // Acknowledge everything delivered; trimming then keeps the undelivered ones.
    let _: u64 = redis::cmd("XACK")
        .arg(&stream)
        .arg(GROUP)
        .arg(&[&got[3], &got[5]])
        .query_async(&mut c)
        .await
        .unwrap();
    t.queue.trim_acknowledged().await.unwrap();
    let left: redis::streams::StreamRangeReply = c.xrange_all(&stream).await.unwrap();
    assert_eq!(
        left.ids.len(),
        5,
        "the last delivered entry and the 4 undelivered ones remain"
    );
    // And the undelivered ones still run.
    let h = Arc::new(ScriptedHandler::default());
    let (stop, task) = spawn_worker(&t.queue, h.clone(), "w", 4);
    wait_until(
        Duration::from_secs(10),
        "4 undelivered jobs run",
        || async { h.completed.lock().unwrap().len() == 4 },
    )
    .await;
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_late_running_mark_never_overwrites_how_it_ended() {
    // Marks are written by the worker's writer, after the job started: a job that fails or
    // succeeds at once must still end with the status of its end, never "running".
    let t = TestQueue::new(fast_config()).await;
    let handler = Arc::new(ScriptedHandler::default());
    let (stop, worker) = spawn_worker(&t.queue, handler.clone(), "w", 200);
    let failing = Script {
        terminal: Some("fails at once".into()),
        ..Script::default()
    };
    let mut jobs = Vec::new();
    for i in 0..600 {
        let script = if i % 2 == 0 {
            &failing
        } else {
            &Script::default()
        };
        jobs.push(scripted("thj", Lane::Default, script));
    }
    let ids: Vec<JobId> = t
        .queue
        .enqueue_many(jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    wait_until(Duration::from_secs(30), "every job ends", || async {
        statuses(&t.queue, &ids)
            .await
            .iter()
            .filter(|s| matches!(s.state, JobState::Succeeded | JobState::Dead))
            .count()
            == ids.len()
    })
    .await;
    // Whatever the writer still had queued is written by now: stop the worker, then look again.
    stop.cancel();
    worker.await.unwrap();
    let after = statuses(&t.queue, &ids).await;
    for (i, s) in after.iter().enumerate() {
        let want = if i % 2 == 0 {
            JobState::Dead
        } else {
            JobState::Succeeded
        };
        assert_eq!(
            s.state, want,
            "job {i} ended as {want:?}, then read {:?}",
            s.state
        );
    }
    assert_eq!(after.len(), ids.len());
}
