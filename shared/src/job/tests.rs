//! Envelope encoding (versions, backward compatibility) and how job errors combine.

use super::*;

fn sample() -> Envelope {
    NewJob::new(
        TenantId::new("thj"),
        JobKind::NOOP,
        Lane::Default,
        &serde_json::json!({"a": 1}),
    )
    .idempotency_key("k")
    .trace(TraceContext::new_root())
    .into_envelope(JobId::generate(), 1)
}

#[test]
fn envelope_round_trips() {
    let e = sample();
    assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
}

#[test]
fn unknown_version_is_named() {
    let mut e = sample();
    e.v = 9;
    let err = Envelope::decode(&e.encode()).unwrap_err();
    assert!(matches!(err, DecodeError::UnknownVersion(9)), "{err}");
}

#[test]
fn the_id_of_an_unknown_version_is_still_read() {
    let mut e = sample();
    e.v = 9;
    assert_eq!(Envelope::probe_id(&e.encode()), Some(e.id));
    assert_eq!(Envelope::probe_id(b"\xc1garbage"), None);
}

#[test]
fn garbage_is_malformed() {
    assert!(matches!(
        Envelope::decode(b"\xc1garbage"),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn envelopes_without_the_deferral_field_still_decode() {
    // What a build before `deferred_since_ms` wrote: the same named map without the field.
    #[derive(Serialize)]
    struct V1Before<'a> {
        v: u8,
        id: &'a JobId,
        tenant: &'a TenantId,
        kind: &'a JobKind,
        lane: Lane,
        attempt: u32,
        created_ms: i64,
        idempotency_key: Option<String>,
        trace: Option<TraceContext>,
        #[serde(with = "serde_bytes")]
        payload: &'a [u8],
    }
    let e = sample();
    let old = rmp_serde::to_vec_named(&V1Before {
        v: 1,
        id: &e.id,
        tenant: &e.tenant,
        kind: &e.kind,
        lane: e.lane,
        attempt: e.attempt,
        created_ms: e.created_ms,
        idempotency_key: e.idempotency_key.clone(),
        trace: e.trace.clone(),
        payload: &e.payload,
    })
    .unwrap();
    assert_eq!(Envelope::decode(&old).unwrap(), e);
    assert_eq!(
        old,
        e.encode(),
        "a never-deferred job encodes exactly as before"
    );

    // And a deferred job's envelope is still readable by a build that ignores the field.
    let mut deferred = e.clone();
    deferred.deferred_since_ms = Some(1_700_000_000_000);
    let back = Envelope::decode(&deferred.encode()).unwrap();
    assert_eq!(back.deferred_since_ms, Some(1_700_000_000_000));
    #[derive(Deserialize)]
    struct OldReader {
        v: u8,
        attempt: u32,
    }
    let old_view: OldReader = rmp_serde::from_slice(&deferred.encode()).unwrap();
    assert_eq!((old_view.v, old_view.attempt), (1, e.attempt));
}

#[test]
fn combined_errors_keep_the_longest_wait_and_the_deferral() {
    let s = Duration::from_secs;
    let server = JobError::retryable("Claude had a server error (500)");
    let limited = JobError::upstream_deferred(s(30), "Claude rate limit");
    let combined = server.clone().combine(limited.clone());
    assert_eq!(
        combined,
        JobError::Deferred {
            wait: s(30),
            reason: "Claude had a server error (500); Claude rate limit".into(),
            upstream: true,
        }
    );
    // A sibling's refusal by the upstream keeps the combined deferral on the deadline's clock;
    // two waits for our own limits stay off it.
    let own = JobError::deferred(s(5), "claude rate limit of tenant acme");
    assert!(own.clone().combine(limited.clone()).is_upstream_deferral());
    assert!(!own.clone().combine(own.clone()).is_upstream_deferral());
    // Order does not matter for the nature and the wait.
    assert_eq!(limited.clone().combine(server.clone()).wait(), Some(s(30)));
    // A retry-after on a retryable sibling still wins when it is longer.
    let hinted = JobError::Retryable {
        message: "503".into(),
        retry_after: Some(s(90)),
    };
    assert_eq!(limited.clone().combine(hinted.clone()).wait(), Some(s(90)));
    assert!(matches!(
        server.clone().combine(hinted),
        JobError::Retryable { retry_after: Some(d), .. } if d == s(90)
    ));
    // Terminal wins: no wait can make it succeed.
    assert!(matches!(
        JobError::combine_all([limited, JobError::terminal("bad request"), server]),
        Some(JobError::Terminal { .. })
    ));
    assert_eq!(JobError::combine_all([]), None);
}

#[test]
fn trace_id_is_extracted() {
    let t = TraceContext::new_root();
    assert_eq!(t.trace_id().len(), 32);
}
