//! Deferrals in the queue (real Redis, an in-process worker): a job an upstream keeps limiting
//! is run again no earlier than asked, spends no attempt however often it is deferred, and is
//! dead-lettered with a clear reason only once `queue.deferDeadlineMs` has passed since its
//! first deferral by the upstream (waits for Onomancer's own limits never count); an upstream's
//! wait survives a sibling's different failure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use onomancer_shared::queue::{JobHandler, JobState};
use onomancer_shared::{Envelope, JobError, JobId, JobOutcome, Lane, NewJob, TenantId};

use crate::helpers::*;

/// What a job asks of [`Limited`].
#[derive(serde::Serialize, serde::Deserialize)]
struct Plan {
    /// Runs deferred before one succeeds (`u32::MAX`: never succeeds).
    deferrals: u32,
    /// The wait each deferral names.
    wait_ms: u64,
    /// Fail like a multi-part job: one part deferred, one part a plain retryable error.
    with_failed_sibling: bool,
    /// Deferred by Onomancer's own limit (a tenant's rate limit) rather than by the upstream.
    own_limit: bool,
}

impl onomancer_shared::JobPayload for Plan {
    const KIND: onomancer_shared::JobKind =
        onomancer_shared::JobKind::Unknown(std::borrow::Cow::Borrowed("test.limited"));
    const LANE: Lane = Lane::Default;
}

/// One run: when it started, when it ended, its attempt.
type Run = (Instant, Instant, u32);

/// Defers each job as its plan says; records when every run started and ended.
#[derive(Default)]
struct Limited {
    runs: Mutex<HashMap<JobId, Vec<Run>>>,
}

impl JobHandler for Limited {
    async fn handle(&self, job: Envelope) -> Result<JobOutcome, JobError> {
        let started = Instant::now();
        let plan: Plan = job.payload_as()?;
        let n = self.runs.lock().unwrap().get(&job.id).map_or(0, Vec::len) as u32;
        let result = if n < plan.deferrals {
            let wait = Duration::from_millis(plan.wait_ms);
            let limited = if plan.own_limit {
                JobError::deferred(wait, "claude rate limit of tenant thj")
            } else {
                JobError::upstream_deferred(wait, "upstream rate limit (429)")
            };
            Err(if plan.with_failed_sibling {
                JobError::retryable("sibling failed: server error (500)").combine(limited)
            } else {
                limited
            })
        } else {
            Ok(JobOutcome::default())
        };
        self.runs
            .lock()
            .unwrap()
            .entry(job.id.clone())
            .or_default()
            .push((started, Instant::now(), job.attempt));
        result
    }
}

fn limited_job(plan: &Plan) -> NewJob {
    NewJob::new(TenantId::new("thj"), plan)
}

async fn settled(t: &TestQueue, id: &JobId) -> onomancer_shared::queue::JobStatus {
    let tenant = TenantId::new("thj");
    wait_until(Duration::from_secs(20), "the job settles", || async {
        t.queue
            .status(&tenant, id)
            .await
            .unwrap()
            .is_some_and(|s| matches!(s.state, JobState::Succeeded | JobState::Dead))
    })
    .await;
    t.status(&tenant, id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_deferred_more_often_than_its_attempts_finishes_on_its_first_attempt_never_early() {
    let mut config = fast_config();
    config.max_attempts = 2;
    let t = TestQueue::new(config).await;
    let handler = Arc::new(Limited::default());
    let (stop, worker) = spawn_worker(&t.queue, handler.clone(), "w", 4);
    let plan = Plan {
        deferrals: 6,
        wait_ms: 80,
        with_failed_sibling: false,
        own_limit: false,
    };
    let id = t.queue.enqueue(limited_job(&plan)).await.unwrap().id;

    let status = settled(&t, &id).await;
    stop.cancel();
    worker.await.unwrap();

    assert_eq!((status.state, status.attempt), (JobState::Succeeded, 1));
    let runs = handler.runs.lock().unwrap()[&id].clone();
    assert_eq!(runs.len(), 7, "six deferrals, then the run that succeeded");
    assert!(runs.iter().all(|(_, _, attempt)| *attempt == 1));
    for pair in runs.windows(2) {
        let gap = pair[1].0 - pair[0].1;
        assert!(gap >= Duration::from_millis(80), "came back early: {gap:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_deferred_past_its_deadline_is_dead_lettered_with_the_reason() {
    let mut config = fast_config();
    config.defer_deadline = Duration::from_millis(600);
    let t = TestQueue::new(config).await;
    let handler = Arc::new(Limited::default());
    let (stop, worker) = spawn_worker(&t.queue, handler.clone(), "w", 4);
    let plan = Plan {
        deferrals: u32::MAX,
        wait_ms: 50,
        with_failed_sibling: false,
        own_limit: false,
    };
    let id = t.queue.enqueue(limited_job(&plan)).await.unwrap().id;

    let status = settled(&t, &id).await;
    stop.cancel();
    worker.await.unwrap();

    assert_eq!((status.state, status.attempt), (JobState::Dead, 1));
    let runs = handler.runs.lock().unwrap()[&id].clone();
    let first_deferral = runs[0].1;
    let last_run = runs.last().unwrap().1;
    assert!(
        last_run - first_deferral >= Duration::from_millis(600),
        "kept deferring until the deadline"
    );
    let dead = t
        .queue
        .dlq_list(Some(&TenantId::new("thj")), 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    let reason = status.error.unwrap_or_default();
    assert!(
        reason.starts_with("deferred by upstream limits for ")
            && reason.ends_with(
                "past the deadline of 0.6s (queue.deferDeadlineMs); last: upstream rate limit (429)"
            ),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstreams_wait_survives_a_siblings_different_failure_and_spends_no_attempt() {
    let mut config = fast_config();
    // A plain retry would come back within 100 ms and spend the only attempt.
    config.max_attempts = 1;
    let t = TestQueue::new(config).await;
    let handler = Arc::new(Limited::default());
    let (stop, worker) = spawn_worker(&t.queue, handler.clone(), "w", 4);
    let plan = Plan {
        deferrals: 2,
        wait_ms: 400,
        with_failed_sibling: true,
        own_limit: false,
    };
    let id = t.queue.enqueue(limited_job(&plan)).await.unwrap().id;

    let status = settled(&t, &id).await;
    stop.cancel();
    worker.await.unwrap();

    assert_eq!((status.state, status.attempt), (JobState::Succeeded, 1));
    let runs = handler.runs.lock().unwrap()[&id].clone();
    assert_eq!(runs.len(), 3);
    for pair in runs.windows(2) {
        assert!(pair[1].0 - pair[0].1 >= Duration::from_millis(400));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waiting_on_its_tenants_own_limit_past_the_deadline_still_runs() {
    let mut config = fast_config();
    config.defer_deadline = Duration::from_millis(300);
    config.max_attempts = 1;
    let t = TestQueue::new(config).await;
    let handler = Arc::new(Limited::default());
    let (stop, worker) = spawn_worker(&t.queue, handler.clone(), "w", 4);
    // Ten waits of 60 ms (spread up to twice that): well past the 300 ms deadline.
    let plan = Plan {
        deferrals: 10,
        wait_ms: 60,
        with_failed_sibling: false,
        own_limit: true,
    };
    let id = t.queue.enqueue(limited_job(&plan)).await.unwrap().id;

    let status = settled(&t, &id).await;
    stop.cancel();
    worker.await.unwrap();

    assert_eq!((status.state, status.attempt), (JobState::Succeeded, 1));
    let runs = handler.runs.lock().unwrap()[&id].clone();
    assert_eq!(runs.len(), 11, "ten waits for its own quota, then the run");
    assert!(
        runs.last().unwrap().0 - runs[0].1 >= Duration::from_millis(600),
        "it waited past the deadline and was not dead-lettered"
    );
}
