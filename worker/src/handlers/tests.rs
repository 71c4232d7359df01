//! The worker's dispatch through the real queue and worker runtime: a job of a kind this build
//! does not know is dead-lettered under its own name with its status set, never dropped, and the
//! worker goes on with the next job.

use std::sync::Arc;
use std::time::Duration;

use onomancer_shared::payloads::NoopPayload;
use onomancer_shared::queue::{
    JobState, Queue, QueueConfig, QueueMetrics, WorkerOptions, WorkerRuntime,
};
use onomancer_shared::{JobId, Lane, NewJob, TenantId};
use onomancer_testkit::TestRedis;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::transform::progress::follow_job;

async fn finished(
    queue: &Queue,
    tenant: &TenantId,
    id: &JobId,
) -> onomancer_shared::queue::JobStatus {
    tokio::time::timeout(
        Duration::from_secs(30),
        follow_job(queue, tenant, id, Duration::from_millis(20), |_| {}),
    )
    .await
    .expect("the job finishes")
    .unwrap()
    .expect("status exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_an_unknown_kind_is_dead_lettered_under_its_name_with_its_status_set() {
    let redis = TestRedis::new().await;
    let queue = Queue::from_parts(
        redis.conn.clone(),
        &onomancer_testkit::redis_ns::redis_url(),
        redis.keys.clone(),
        QueueConfig::default(),
        QueueMetrics::unregistered(),
    );
    let tenant = TenantId::new("thj");
    let poison = queue
        .enqueue(NewJob::untyped(
            tenant.clone(),
            JobKind::parse("billing.refund"),
            Lane::Default,
            &NoopPayload {},
        ))
        .await
        .unwrap();
    let noop = queue
        .enqueue(NewJob::new(tenant.clone(), &NoopPayload {}))
        .await
        .unwrap();

    let mut options = WorkerOptions::new(format!("w-{}", uuid::Uuid::new_v4().simple()));
    options.block = Duration::from_millis(50);
    options.tenant_refresh = Duration::from_millis(50);
    let runtime = WorkerRuntime::new(
        queue.clone(),
        Arc::new(Handlers::diagnostics_only()),
        options,
    );
    let stop = CancellationToken::new();
    let s = stop.clone();
    let task = tokio::spawn(async move { runtime.run(s.cancelled_owned()).await });

    let dead = finished(&queue, &tenant, &poison.id).await;
    assert_eq!(dead.state, JobState::Dead, "{dead:?}");
    assert_eq!(dead.kind, "billing.refund");
    assert_eq!(
        finished(&queue, &tenant, &noop.id).await.state,
        JobState::Succeeded
    );
    stop.cancel();
    task.await.unwrap().unwrap();

    let letters = queue.dlq_list(Some(&tenant), 10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(
        (letter.job_id.as_str(), letter.kind.as_str()),
        (poison.id.as_str(), "billing.refund")
    );
    assert_eq!(letter.reason, r#"unknown job kind "billing.refund""#);
    // The entry keeps the job as written, so a build that knows the kind can replay it.
    let kept = onomancer_shared::Envelope::decode(&letter.envelope).unwrap();
    assert_eq!(kept.kind, JobKind::parse("billing.refund"));
}
