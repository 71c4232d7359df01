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

/// A test job's payload: its idempotency key.
#[derive(serde::Serialize, serde::Deserialize)]
struct Admitted(String);

impl crate::job::JobPayload for Admitted {
    const KIND: JobKind = JobKind::Unknown(std::borrow::Cow::Borrowed("test.admitted"));
    const LANE: Lane = Lane::Interactive;
}

fn job(tenant: &TenantId, key: &str) -> NewJob {
    NewJob::new(tenant.clone(), &Admitted(key.to_owned())).idempotency_key(key)
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

/// Enqueues `payload`'s job and reads it back from its lane's stream: the kind and lane its type
/// names are the ones stored (in the envelope and the status hash), and the payload reads back
/// as its own type. Returns the kind, so the caller can check every kind is covered.
async fn round_trip<P>(q: &Queue, tenant: &TenantId, payload: P) -> JobKind
where
    P: crate::job::JobPayload + PartialEq + std::fmt::Debug,
{
    let enqueued = q
        .enqueue(NewJob::new(tenant.clone(), &payload))
        .await
        .unwrap();
    let entries: redis::streams::StreamRangeReply = q
        .conn()
        .xrange_all(q.keys().stream(tenant, P::LANE))
        .await
        .unwrap();
    let entry = entries
        .ids
        .iter()
        .find(|e| e.get::<String>("i").as_deref() == Some(enqueued.id.as_str()))
        .unwrap_or_else(|| panic!("{} is on the {} lane", P::KIND, P::LANE));
    let bytes: Vec<u8> = entry.get("e").expect("the entry carries its envelope");
    let env = crate::job::Envelope::decode(&bytes).unwrap();
    assert_eq!((&env.kind, env.lane), (&P::KIND, P::LANE));
    assert_eq!(env.payload_as::<P>().unwrap(), payload);
    let status = q.status(tenant, &enqueued.id).await.unwrap().unwrap();
    assert_eq!(
        (status.kind.as_str(), status.lane),
        (P::KIND.as_str(), P::LANE)
    );
    P::KIND
}

#[tokio::test]
async fn every_payload_type_keeps_its_kind_and_lane_through_the_queue() {
    use crate::payloads::*;
    use crate::transform_job::{DocumentSource, Origin, TransformJob};

    let (q, _adm, _guard) = queue().await;
    let tenant = TenantId::new("acme");
    let t = &tenant;
    let at = |s| chrono::DateTime::from_timestamp(s, 0).unwrap();
    let kinds = [
        round_trip(
            &q,
            t,
            TransformJob {
                v: PAYLOAD_VERSION,
                source: DocumentSource::Text {
                    text: "# PRD".into(),
                },
                personas: vec!["product".into()],
                product: None,
                origin: Origin::Api,
                user: None,
                title: None,
            },
        )
        .await,
        round_trip(
            &q,
            t,
            BuildStatusJob {
                v: PAYLOAD_VERSION,
                delivery: "d1".into(),
                event: "status".into(),
                action: None,
                repo: "acme/app".into(),
                name: "ci".into(),
                branch: None,
                sha: "abc".into(),
                status: Some("success".into()),
                conclusion: None,
                url: None,
            },
        )
        .await,
        round_trip(
            &q,
            t,
            GithubActivityJob {
                v: PAYLOAD_VERSION,
                delivery: "d2".into(),
                event: "release".into(),
                action: Some("published".into()),
                repo: "acme/app".into(),
                actor: None,
                detail: ActivityDetail::Release {
                    tag: "v1".into(),
                    name: None,
                    url: "https://example.com".into(),
                    prerelease: false,
                    draft: false,
                },
            },
        )
        .await,
        round_trip(
            &q,
            t,
            LinearActivityJob {
                v: PAYLOAD_VERSION,
                delivery: "d3".into(),
                action: "create".into(),
                entity: "Issue".into(),
                id: None,
                identifier: Some("ENG-1".into()),
                title: None,
                team: None,
                state: None,
                url: None,
                actor: None,
                changed: Vec::new(),
                created_at: None,
                body: None,
                labels: Vec::new(),
            },
        )
        .await,
        round_trip(
            &q,
            t,
            DiscordCommandJob {
                v: PAYLOAD_VERSION,
                interaction_id: "1".into(),
                application_id: "2".into(),
                token: "t".into(),
                command: "usage".into(),
                options: Default::default(),
                guild_id: "g".into(),
                channel_id: None,
                user_id: None,
                quota_consumed: false,
                transform: None,
            },
        )
        .await,
        round_trip(
            &q,
            t,
            DigestPayload {
                persona: crate::Persona::new("product"),
                period_start: at(0),
                period_end: at(604_800),
                interaction_token: None,
            },
        )
        .await,
        round_trip(&q, t, NoopPayload {}).await,
        round_trip(
            &q,
            t,
            SleepPayload {
                ms: 3,
                ..SleepPayload::default()
            },
        )
        .await,
    ];
    assert_eq!(kinds, JobKind::KNOWN, "every known kind has a payload type");
}
