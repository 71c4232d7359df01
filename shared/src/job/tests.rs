//! Envelope encoding (versions, backward compatibility), job kinds and kind-checked payloads, and
//! how job errors combine.

use super::*;
use crate::payloads::{DigestPayload, NoopPayload, SleepPayload};
use crate::Persona;

fn sample() -> Envelope {
    NewJob::untyped(
        TenantId::new("thj"),
        JobKind::Noop,
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
fn kinds_keep_their_wire_names_and_unknown_names_are_kept() {
    let names = [
        "transform",
        "github.build_status",
        "github.activity",
        "linear.activity",
        "discord.command",
        "digest",
        "diag.noop",
        "diag.sleep",
    ];
    for (kind, name) in JobKind::KNOWN.iter().zip(names) {
        assert_eq!(kind.as_str(), name);
        assert_eq!(JobKind::parse(name), *kind);
        // Encoded exactly as the former `JobKind(String)` (a msgpack str).
        assert_eq!(
            rmp_serde::to_vec_named(kind).unwrap(),
            rmp_serde::to_vec_named(name).unwrap()
        );
        let back: JobKind = rmp_serde::from_slice(&rmp_serde::to_vec_named(name).unwrap()).unwrap();
        assert_eq!(back, *kind);
    }
    let poison = JobKind::parse("billing.refund");
    assert_eq!(poison, JobKind::Unknown("billing.refund".into()));
    let mut e = sample();
    e.kind = poison.clone();
    assert_eq!(Envelope::decode(&e.encode()).unwrap().kind, poison);
}

#[test]
fn an_envelope_is_byte_compatible_with_the_string_kind_it_replaced() {
    // What a build before the `JobKind` enum wrote: the kind as a plain string field.
    #[derive(Serialize)]
    struct Before<'a> {
        v: u8,
        id: &'a JobId,
        tenant: &'a TenantId,
        kind: &'a str,
        lane: Lane,
        attempt: u32,
        created_ms: i64,
        idempotency_key: Option<String>,
        trace: Option<TraceContext>,
        #[serde(with = "serde_bytes")]
        payload: &'a [u8],
    }
    let e = NewJob::new(
        TenantId::new("thj"),
        &SleepPayload {
            ms: 5,
            ..Default::default()
        },
    )
    .into_envelope(JobId::generate(), 7);
    let before = rmp_serde::to_vec_named(&Before {
        v: 1,
        id: &e.id,
        tenant: &e.tenant,
        kind: "diag.sleep",
        lane: Lane::Default,
        attempt: 1,
        created_ms: 7,
        idempotency_key: None,
        trace: None,
        payload: &e.payload,
    })
    .unwrap();
    assert_eq!(before, e.encode());
    assert_eq!(Envelope::decode(&before).unwrap(), e);
}

#[test]
fn a_job_is_built_from_its_payload_and_read_back_only_as_its_kind() {
    let digest = DigestPayload {
        persona: Persona::new("product"),
        period_start: chrono::DateTime::from_timestamp(0, 0).unwrap(),
        period_end: chrono::DateTime::from_timestamp(604_800, 0).unwrap(),
        interaction_token: None,
    };
    let job = NewJob::new(TenantId::new("thj"), &digest);
    assert_eq!((&job.kind, job.lane), (&JobKind::Digest, Lane::Bulk));
    assert_eq!(
        NewJob::new(TenantId::new("thj"), &digest)
            .lane(Lane::Default)
            .lane,
        Lane::Default
    );
    let env = job.into_envelope(JobId::generate(), 0);
    assert_eq!(env.payload_as::<DigestPayload>().unwrap(), digest);

    let err = env.payload_as::<SleepPayload>().unwrap_err();
    assert_eq!(
        err,
        JobError::terminal(format!(
            "job {} is a digest job, not diag.sleep: its payload is not read as one",
            env.id
        ))
    );
    // Even a payload that would decode as the other type is refused: `{}` is a valid noop.
    let noop = NewJob::untyped(
        TenantId::new("thj"),
        JobKind::Digest,
        Lane::Bulk,
        &NoopPayload {},
    )
    .into_envelope(JobId::generate(), 0);
    assert!(matches!(
        noop.payload_as::<NoopPayload>(),
        Err(JobError::Terminal { .. })
    ));
    // A payload of the right kind that does not decode is terminal too, and says so.
    let bad = NewJob::untyped(TenantId::new("thj"), JobKind::Digest, Lane::Bulk, &"nope")
        .into_envelope(JobId::generate(), 0);
    assert!(matches!(
        bad.payload_as::<DigestPayload>(),
        Err(JobError::Terminal { message }) if message.starts_with("payload of digest is not valid")
    ));
}

#[test]
fn a_retyped_job_keeps_its_identity_and_takes_the_payloads_kind() {
    let env = sample();
    let sleep = SleepPayload {
        ms: 1,
        ..Default::default()
    };
    let retyped = env.retyped(&sleep);
    assert_eq!(retyped.kind, JobKind::Sleep);
    assert_eq!(
        (&retyped.id, &retyped.tenant, retyped.lane, retyped.attempt),
        (&env.id, &env.tenant, env.lane, env.attempt)
    );
    assert_eq!(retyped.payload_as::<SleepPayload>().unwrap(), sleep);
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
fn the_trace_id_is_the_traceparents_second_field() {
    let given = TraceContext {
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
    };
    assert_eq!(given.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");

    // A new root is a well-formed traceparent whose trace id is its own, fresh each time.
    let (a, b) = (TraceContext::new_root(), TraceContext::new_root());
    let fields: Vec<&str> = a.traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{}", a.traceparent);
    assert_eq!((fields[0], fields[3]), ("00", "01"));
    assert_eq!(fields[1], a.trace_id());
    assert_eq!(fields[2].len(), 16);
    assert!(a.trace_id().chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a.trace_id(), b.trace_id());

    // A malformed value yields no trace id rather than a wrong one.
    let short = TraceContext {
        traceparent: "00-abc".into(),
    };
    assert_eq!(short.trace_id(), "");
}
