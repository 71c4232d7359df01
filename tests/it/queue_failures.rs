//! Retries with backoff and retry-after, terminal errors, exhausted attempts, poison entries, the
//! dead-letter stream and replay.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use onomancer_shared::job::Envelope;
use onomancer_shared::queue::JobState;
use onomancer_shared::{JobId, Lane, NewJob, TenantId};
use redis::AsyncCommands;

use crate::helpers::*;

async fn wait_state(t: &TestQueue, tenant: &TenantId, id: &JobId, state: JobState) {
    wait_until(
        Duration::from_secs(15),
        &format!("job {id} {state:?}"),
        || async {
            t.queue
                .status(tenant, id)
                .await
                .unwrap()
                .is_some_and(|s| s.state == state)
        },
    )
    .await;
}

#[tokio::test]
async fn retries_back_off_exponentially_then_succeed() {
    let t = TestQueue::new(fast_config()).await;
    let tenant = TenantId::new("thj");
    let e = t
        .queue
        .enqueue(scripted(
            "thj",
            Lane::Default,
            &Script {
                fail_until_attempt: 3,
                ..Script::default()
            },
        ))
        .await
        .unwrap();
    let h = Arc::new(ScriptedHandler::default());
    let (stop, task) = spawn_worker(&t.queue, h.clone(), "w", 2);
    wait_state(&t, &tenant, &e.id, JobState::Succeeded).await;
    stop.cancel();
    task.await.unwrap();
    let runs = h.started.lock().unwrap().clone();
    assert_eq!(
        runs.iter().map(|r| r.3).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    // Base 100 ms with equal jitter: gap n lies in [50·2^(n-1), 100·2^(n-1)] ms plus scheduling.
    for (n, w) in runs.windows(2).enumerate() {
        let gap = w[1].2 - w[0].2;
        let ceiling = Duration::from_millis(100 << n);
        assert!(
            gap >= ceiling / 2,
            "gap {n} was {gap:?}, below {:?}",
            ceiling / 2
        );
        assert!(
            gap <= ceiling + Duration::from_millis(400),
            "gap {n} was {gap:?}, far above {ceiling:?}"
        );
    }
    let s = t.status(&tenant, &e.id).await;
    assert_eq!((s.attempt, s.completions), (4, 1));
}

#[tokio::test]
async fn retry_after_from_the_handler_sets_the_wait() {
    let t = TestQueue::new(fast_config()).await;
    let tenant = TenantId::new("thj");
    let script = Script {
        fail_until_attempt: 1,
        retry_after_ms: Some(700),
        ..Script::default()
    };
    let e = t
        .queue
        .enqueue(scripted("thj", Lane::Default, &script))
        .await
        .unwrap();
    let h = Arc::new(ScriptedHandler::default());
    let (stop, task) = spawn_worker(&t.queue, h.clone(), "w", 2);
    wait_state(&t, &tenant, &e.id, JobState::Retrying).await;
    let s = t.status(&tenant, &e.id).await;
    let wait = s.next_run_ms.unwrap() - s.updated_ms;
    // The upstream's wait is a floor; the spread adds up to the wait itself (full jitter over
    // [wait, 2 x wait], see `queue::spread`).
    assert!(
        (695..=1420).contains(&wait),
        "scheduled {wait} ms after the failure, expected 700 to 1400"
    );
    assert!(s.error.unwrap().contains("fails on purpose"));
    wait_state(&t, &tenant, &e.id, JobState::Succeeded).await;
    let runs = h.started.lock().unwrap().clone();
    assert!(runs[1].2 - runs[0].2 >= Duration::from_millis(700));
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn terminal_errors_and_exhausted_attempts_go_to_the_dead_letter_stream_and_replay() {
    let mut config = fast_config();
    config.max_attempts = 3;
    let t = TestQueue::new(config).await;
    let tenant = TenantId::new("thj");
    let terminal = t
        .queue
        .enqueue(scripted(
            "thj",
            Lane::Default,
            &Script {
                terminal: Some("document is empty".into()),
                ..Script::default()
            },
        ))
        .await
        .unwrap();
    let exhausted = t
        .queue
        .enqueue(scripted(
            "thj",
            Lane::Default,
            &Script {
                fail_until_attempt: 99,
                ..Script::default()
            },
        ))
        .await
        .unwrap();
    let h = Arc::new(ScriptedHandler::default());
    let (stop, task) = spawn_worker(&t.queue, h.clone(), "w", 2);
    wait_state(&t, &tenant, &terminal.id, JobState::Dead).await;
    wait_state(&t, &tenant, &exhausted.id, JobState::Dead).await;
    let dead = t.queue.dlq_list(Some(&tenant), 10).await.unwrap();
    let find = |id: &JobId| {
        dead.iter()
            .find(|d| d.job_id == id.as_str())
            .unwrap()
            .clone()
    };
    let d1 = find(&terminal.id);
    assert_eq!((d1.reason.as_str(), d1.attempts), ("document is empty", 1));
    let d2 = find(&exhausted.id);
    assert_eq!(d2.attempts, 3);
    assert!(
        d2.reason.contains("gave up after 3 attempts"),
        "{}",
        d2.reason
    );
    assert_eq!(
        Envelope::decode(&d2.envelope).unwrap().id,
        exhausted.id,
        "original payload kept"
    );
    assert_eq!(
        h.started
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.0 == terminal.id)
            .count(),
        1,
        "terminal: no retry"
    );

    // Replay by job id: back in its lane with a fresh attempt budget, and it runs.
    assert!(t.queue.dlq_replay(terminal.id.as_str()).await.unwrap());
    assert!(
        !t.queue.dlq_replay(terminal.id.as_str()).await.unwrap(),
        "replayed once"
    );
    wait_until(Duration::from_secs(10), "replayed job ran", || async {
        h.started
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.0 == terminal.id)
            .count()
            == 2
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn poison_entries_are_dead_lettered_without_blocking_the_worker() {
    let t = TestQueue::new(fast_config()).await;
    let tenant = TenantId::new("thj");
    // Make sure the stream and group exist, then write two entries no worker can read.
    let good = t
        .queue
        .enqueue(scripted("thj", Lane::Default, &Script::default()))
        .await
        .unwrap();
    let stream = t.queue.keys().stream(&tenant, Lane::Default);
    let mut c = t.redis.conn.clone();
    let _: String = c
        .xadd(&stream, "*", &[("e", &b"\xc1 not msgpack"[..])])
        .await
        .unwrap();
    let mut future =
        NewJob::new(tenant.clone(), &Script::default()).into_envelope(JobId::generate(), 0);
    future.v = 7;
    let _: String = c
        .xadd(&stream, "*", &[("e", future.encode())])
        .await
        .unwrap();
    let after = t
        .queue
        .enqueue(scripted("thj", Lane::Default, &Script::default()))
        .await
        .unwrap();

    let h = Arc::new(ScriptedHandler::default());
    let (stop, task) = spawn_worker(&t.queue, h.clone(), "w", 2);
    wait_state(&t, &tenant, &after.id, JobState::Succeeded).await;
    wait_state(&t, &tenant, &good.id, JobState::Succeeded).await;
    wait_until(Duration::from_secs(5), "two dead letters", || async {
        t.queue.dlq_list(None, 10).await.unwrap().len() == 2
    })
    .await;
    let dead = t.queue.dlq_list(None, 10).await.unwrap();
    assert!(
        dead[0]
            .reason
            .starts_with("poison entry: undecodable envelope"),
        "{}",
        dead[0].reason
    );
    assert!(
        dead[1].reason.contains("unknown envelope version 7"),
        "{}",
        dead[1].reason
    );
    // An undecodable entry cannot be replayed; it stays with its reason.
    let (replayed, left) = t.queue.dlq_replay_all().await.unwrap();
    assert_eq!(replayed, 0);
    assert_eq!(left, 2);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn replay_all_brings_every_dead_letter_back() {
    let t = TestQueue::new(fast_config()).await;
    let tenant = TenantId::new("thj");
    let h = Arc::new(ScriptedHandler::default());
    h.fail_all.store(true, Ordering::SeqCst);
    let ids: Vec<JobId> = t
        .queue
        .enqueue_many(
            (0..5)
                .map(|_| scripted("thj", Lane::Default, &Script::default()))
                .collect(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let (stop, task) = spawn_worker(&t.queue, h.clone(), "w", 2);
    for id in &ids {
        wait_state(&t, &tenant, id, JobState::Dead).await;
    }
    h.fail_all.store(false, Ordering::SeqCst);
    assert_eq!(t.queue.dlq_replay_all().await.unwrap(), (5, 0));
    for id in &ids {
        wait_state(&t, &tenant, id, JobState::Succeeded).await;
    }
    assert!(t.queue.dlq_list(None, 10).await.unwrap().is_empty());
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn an_entry_of_an_unknown_envelope_version_is_dead_lettered_and_its_status_says_dead() {
    let t = TestQueue::new(fast_config()).await;
    let tenant = TenantId::new("thj");
    // A newer producer's job: status written as enqueue writes it, envelope version 7, and no
    // job-id field on the entry (only the envelope names the job).
    let mut future =
        NewJob::new(tenant.clone(), &Script::default()).into_envelope(JobId::generate(), 0);
    future.v = 7;
    let stream = t.queue.keys().stream(&tenant, Lane::Default);
    let status = t.queue.keys().status(&tenant, &future.id);
    let mut c = t.redis.conn.clone();
    let _: () = c
        .hset_multiple(
            &status,
            &[
                ("state", "queued"),
                ("attempt", "1"),
                ("tenant", "thj"),
                ("kind", "test.scripted"),
                ("lane", "default"),
            ],
        )
        .await
        .unwrap();
    let _: String = c
        .xadd(&stream, "*", &[("e", future.encode())])
        .await
        .unwrap();
    // A job of this build after it, which also lists the tenant as ready.
    let after = t
        .queue
        .enqueue(scripted("thj", Lane::Default, &Script::default()))
        .await
        .unwrap();
    let h = Arc::new(ScriptedHandler::default());
    let (stop, task) = spawn_worker(&t.queue, h.clone(), "w", 2);
    wait_state(&t, &tenant, &after.id, JobState::Succeeded).await;
    wait_state(&t, &tenant, &future.id, JobState::Dead).await;
    let s = t.status(&tenant, &future.id).await;
    assert!(
        s.error
            .as_deref()
            .is_some_and(|e| e.contains("unknown envelope version 7")),
        "{s:?}"
    );
    let dead = t.queue.dlq_list(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].job_id, future.id.as_str());
    stop.cancel();
    task.await.unwrap();
}
