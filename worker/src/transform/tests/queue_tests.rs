//! Transforms through the real queue and worker runtime: Claude's 429 `retry-after` is honoured,
//! 529s are retried then dead-lettered, a 400 is not retried and its reason reaches the user.

use std::sync::Arc;
use std::time::{Duration, Instant};

use onomancer_shared::queue::{
    JobHandler, JobState, Queue, QueueConfig, WorkerOptions, WorkerRuntime,
};
use onomancer_shared::{Envelope, JobError, JobOutcome, TenantId};
use onomancer_testkit::claude_fake::error_body;
use onomancer_testkit::discord_fake::DiscordFake;
use tokio_util::sync::CancellationToken;

use super::support::*;
use crate::handlers::transform::TransformHandler;
use crate::transform::progress::{enqueue_transform, follow_job};
use crate::transform::{DocumentSource, Origin, TransformJob};

struct Adapter(TransformHandler);

impl JobHandler for Adapter {
    async fn handle(&self, job: Envelope) -> Result<JobOutcome, JobError> {
        self.0.handle(&job).await
    }
}

async fn start(h: &Harness, discord: &DiscordFake) -> (Queue, CancellationToken) {
    let mut config = QueueConfig {
        max_attempts: 3,
        ..Default::default()
    };
    config.retry.base = Duration::from_millis(50);
    config.retry.max = Duration::from_millis(200);
    let registry = prometheus::Registry::new();
    let queue = Queue::connect(
        &onomancer_testkit::redis_ns::redis_url(),
        h.redis.keys.clone(),
        config,
        &registry,
    )
    .await
    .unwrap();
    let handler = super::handler_tests::handler(h, discord).await;
    let mut options = WorkerOptions::new(format!("w-{}", uuid::Uuid::new_v4().simple()));
    options.block = Duration::from_millis(50);
    options.tenant_refresh = Duration::from_millis(50);
    let runtime = WorkerRuntime::new(queue.clone(), Arc::new(Adapter(handler)), options);
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move { runtime.run(s.cancelled_owned()).await.expect("worker runs") });
    (queue, stop)
}

fn api_job(text: &str) -> TransformJob {
    TransformJob {
        v: 1,
        source: DocumentSource::Text { text: text.into() },
        personas: vec!["leadership".into()],
        product: None,
        origin: Origin::Api,
        user: None,
        title: None,
    }
}

async fn run(queue: &Queue, job: &TransformJob) -> onomancer_shared::queue::JobStatus {
    let tenant = TenantId::new("thj");
    let id = enqueue_transform(queue, &tenant, job).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        follow_job(queue, &tenant, &id, Duration::from_millis(20), |_| {}),
    )
    .await
    .expect("the job finishes")
    .unwrap()
    .expect("status exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_for_retry_after_then_succeeds() {
    let h = Harness::new(&shipped_prompts()).await;
    let discord = DiscordFake::start().await;
    let (queue, stop) = start(&h, &discord).await;
    h.claude.push_failure(
        429,
        &[("retry-after", "2")],
        error_body(
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
        ),
    );
    let began = Instant::now();
    let status = run(&queue, &api_job("rate limited doc")).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    // Deferred, not retried: the 429 spent no attempt.
    assert_eq!((status.attempt, h.claude.calls()), (1, 2));
    // The backoff alone would retry after at most 200 ms: the 2 s are Claude's retry-after.
    assert!(
        began.elapsed() >= Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overloaded_defers_without_spending_attempts_then_succeeds() {
    let h = Harness::new(&shipped_prompts()).await;
    let discord = DiscordFake::start().await;
    let (queue, stop) = start(&h, &discord).await;
    for _ in 0..2 {
        h.claude
            .push_failure(529, &[], error_body("overloaded_error", "Overloaded"));
    }
    let status = run(&queue, &api_job("overloaded doc")).await;
    assert_eq!(
        (status.state, status.attempt),
        (JobState::Succeeded, 1),
        "{status:?}"
    );
    assert_eq!(h.claude.calls(), 3);
    let dead = queue
        .dlq_list(Some(&TenantId::new("thj")), 10)
        .await
        .unwrap();
    assert!(dead.is_empty());
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_not_retried_and_the_user_sees_why() {
    let h = Harness::new(&shipped_prompts()).await;
    let discord = DiscordFake::start().await;
    let (queue, stop) = start(&h, &discord).await;
    h.claude.push_failure(
        400,
        &[],
        error_body(
            "invalid_request_error",
            "max_tokens: 4096 > 2048, which is the maximum allowed",
        ),
    );
    let status = run(&queue, &api_job("bad request doc")).await;
    assert_eq!(
        (status.state, status.attempt),
        (JobState::Dead, 1),
        "{status:?}"
    );
    assert_eq!(h.claude.calls(), 1);
    let error = status.error.unwrap();
    assert!(
        error.contains("Claude rejected the request (400 invalid_request_error): max_tokens"),
        "{error}"
    );
    stop.cancel();
}
