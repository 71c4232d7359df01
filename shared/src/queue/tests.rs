//! `enqueue_admitted` (rate check and idempotent enqueue in one call) against the real Redis,
//! each test in its own namespace.

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;

use super::*;
use crate::admission::{Admission, RateDecision, RateSpec};

/// `onomancer_testkit` links its own copy of this crate, so build this crate's types from the
/// namespace it picked; the returned guard deletes the keys on drop.
async fn queue() -> (Queue, Admission, onomancer_testkit::TestRedis) {
    let guard = onomancer_testkit::TestRedis::new().await;
    let url = onomancer_testkit::redis_ns::redis_url();
    let conn = RedisConn::connect(&url).await.expect("test redis");
    let keys = KeySpace::isolated(&guard.name);
    let queue = Queue::from_parts(
        conn.clone(),
        &url,
        keys.clone(),
        QueueConfig::default(),
        QueueMetrics::unregistered(),
    );
    (queue, Admission::new(conn, keys), guard)
}

/// One a minute: no new request is earned while a test runs, so only the burst passes.
fn spec(burst: u32) -> RateSpec {
    RateSpec {
        per_minute: 1,
        burst,
    }
}

fn job(tenant: &TenantId, key: &str) -> NewJob {
    NewJob::new(tenant.clone(), "test.admitted", Lane::Interactive, &key).idempotency_key(key)
}

async fn stream_len(q: &Queue, tenant: &TenantId) -> u64 {
    q.conn()
        .xlen(q.keys().stream(tenant, Lane::Interactive))
        .await
        .unwrap()
}

async fn status_hashes(q: &Queue, tenant: &TenantId) -> usize {
    let pattern = format!("{}q:job:{tenant}:*", q.keys().queue_prefix());
    let keys: Vec<String> = q.conn().keys(pattern).await.unwrap();
    keys.len()
}

fn enqueued_metric(q: &Queue, tenant: &TenantId) -> u64 {
    q.metrics()
        .enqueued
        .with_label_values(&[tenant.as_str(), "test.admitted"])
        .get()
}

#[test]
fn the_combined_script_wraps_both_scripts_unchanged() {
    let lua = scripts::admit_enqueue_lua();
    assert!(lua.contains(crate::admission::RATE_LUA));
    assert!(lua.contains(include_str!("lua/enqueue.lua")));
}

#[tokio::test]
async fn concurrent_requests_admit_and_enqueue_exactly_the_burst() {
    let (q, adm, _guard) = queue().await;
    let tenant = TenantId::new("acme");
    let rate = adm.rate_check(&tenant, "requests", spec(5));
    let outcomes = futures::future::join_all((0..40).map(|i| {
        let (q, rate, tenant) = (q.clone(), rate.clone(), tenant.clone());
        async move {
            let key = format!("k{i}");
            let out = q.enqueue_admitted(job(&tenant, &key), &rate).await.unwrap();
            (key, out)
        }
    }))
    .await;
    let mut admitted = Vec::new();
    for (key, out) in &outcomes {
        match out {
            AdmitOutcome::Enqueued(e) => {
                assert!(e.created, "{key}");
                admitted.push(e.id.clone());
            }
            AdmitOutcome::RateLimited { retry_after } => {
                assert!(*retry_after > Duration::ZERO, "{key}");
                let idem: bool = q
                    .conn()
                    .exists(q.keys().idempotency(&tenant, key))
                    .await
                    .unwrap();
                assert!(!idem, "a refused request leaves no idempotency key ({key})");
            }
        }
    }
    assert_eq!(admitted.len(), 5);
    assert_eq!(stream_len(&q, &tenant).await, 5);
    assert_eq!(status_hashes(&q, &tenant).await, 5);
    assert_eq!(enqueued_metric(&q, &tenant), 5);
    for id in &admitted {
        let s = q.status(&tenant, id).await.unwrap().expect("status");
        assert_eq!(s.state, JobState::Queued);
        let ttl: i64 = q.conn().ttl(q.keys().status(&tenant, id)).await.unwrap();
        assert!(ttl > 0, "status hash expires");
    }
}

#[tokio::test]
async fn a_refused_request_stores_nothing_and_names_the_wait() {
    let (q, adm, _guard) = queue().await;
    let tenant = TenantId::new("acme");
    let rate = adm.rate_check(&tenant, "requests", spec(1));
    assert!(matches!(
        q.enqueue_admitted(job(&tenant, "first"), &rate)
            .await
            .unwrap(),
        AdmitOutcome::Enqueued(Enqueued { created: true, .. })
    ));
    match q
        .enqueue_admitted(job(&tenant, "second"), &rate)
        .await
        .unwrap()
    {
        AdmitOutcome::RateLimited { retry_after } => {
            // One a minute, the first request just spent it.
            assert!(retry_after > Duration::from_secs(50), "{retry_after:?}");
            assert!(retry_after <= Duration::from_secs(60), "{retry_after:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let idem: bool = q
        .conn()
        .exists(q.keys().idempotency(&tenant, "second"))
        .await
        .unwrap();
    assert!(!idem);
    assert_eq!(stream_len(&q, &tenant).await, 1);
    assert_eq!(status_hashes(&q, &tenant).await, 1);
    assert_eq!(enqueued_metric(&q, &tenant), 1);
}

#[tokio::test]
async fn a_duplicate_creates_nothing_but_counts_against_the_rate() {
    let (q, adm, _guard) = queue().await;
    let tenant = TenantId::new("acme");
    let rate = adm.rate_check(&tenant, "requests", spec(3));
    let admit = |key: &'static str| {
        let (q, rate, tenant) = (q.clone(), rate.clone(), tenant.clone());
        async move { q.enqueue_admitted(job(&tenant, key), &rate).await.unwrap() }
    };
    let AdmitOutcome::Enqueued(first) = admit("k").await else {
        panic!("the first request is admitted");
    };
    let AdmitOutcome::Enqueued(again) = admit("k").await else {
        panic!("the redelivery is within the burst");
    };
    assert!(first.created);
    assert_eq!((again.id, again.created), (first.id, false));
    assert!(matches!(
        admit("k2").await,
        AdmitOutcome::Enqueued(Enqueued { created: true, .. })
    ));
    // The duplicate took the third slot of the burst: a fourth request is refused.
    assert!(matches!(
        admit("k3").await,
        AdmitOutcome::RateLimited { .. }
    ));
    assert_eq!(stream_len(&q, &tenant).await, 2);
    assert_eq!(status_hashes(&q, &tenant).await, 2);
    assert_eq!(enqueued_metric(&q, &tenant), 2);
}

/// What a caller can observe of one request: refused, or admitted with the job created or
/// matched to the n-th job created.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Refused,
    Created(usize),
    Duplicate(usize),
}

#[tokio::test]
async fn the_combined_and_two_call_paths_decide_alike() {
    let (q, adm, _guard) = queue().await;
    let sequence = ["a", "b", "a", "c", "b", "d", "e", "a", "f"];
    let combined = TenantId::new("one");
    let two_calls = TenantId::new("two");
    // The combined tenant's first request also creates its stream, group and ready index in the
    // same call.
    let mut seen = HashMap::<TenantId, Vec<Seen>>::new();
    for tenant in [&combined, &two_calls] {
        let rate = adm.rate_check(tenant, "requests", spec(4));
        let mut ids: Vec<JobId> = Vec::new();
        for key in sequence {
            let outcome = if tenant == &combined {
                q.enqueue_admitted(job(tenant, key), &rate).await.unwrap()
            } else {
                match adm.check_rate(tenant, "requests", spec(4)).await.unwrap() {
                    RateDecision::Limited { retry_after } => {
                        AdmitOutcome::RateLimited { retry_after }
                    }
                    RateDecision::Allowed { .. } => {
                        AdmitOutcome::Enqueued(q.enqueue(job(tenant, key)).await.unwrap())
                    }
                }
            };
            let s = match outcome {
                AdmitOutcome::RateLimited { retry_after } => {
                    assert!(retry_after > Duration::ZERO);
                    Seen::Refused
                }
                AdmitOutcome::Enqueued(e) if e.created => {
                    ids.push(e.id);
                    Seen::Created(ids.len() - 1)
                }
                AdmitOutcome::Enqueued(e) => Seen::Duplicate(
                    ids.iter()
                        .position(|id| *id == e.id)
                        .expect("a duplicate names an earlier job"),
                ),
            };
            seen.entry(tenant.clone()).or_default().push(s);
        }
    }
    use Seen::*;
    let expected = vec![
        Created(0),
        Created(1),
        Duplicate(0),
        Created(2),
        Refused,
        Refused,
        Refused,
        Refused,
        Refused,
    ];
    assert_eq!(seen[&combined], expected);
    assert_eq!(seen[&two_calls], expected);
    for tenant in [&combined, &two_calls] {
        assert_eq!(stream_len(&q, tenant).await, 3);
        assert_eq!(status_hashes(&q, tenant).await, 3);
        assert_eq!(enqueued_metric(&q, tenant), 3);
    }
}
