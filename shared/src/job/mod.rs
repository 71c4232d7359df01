//! The job envelope: the versioned wire type every queue entry carries, the job to enqueue built
//! from its payload, and what a handler returns (success, retryable failure, terminal failure,
//! or "come back later").

mod kind;

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::{JobId, TenantId};

pub use kind::{JobKind, JobPayload, Lane};

/// The envelope version this build writes. Readers refuse (dead-letter) versions they do not know.
pub const ENVELOPE_VERSION: u8 = 1;

/// W3C trace context carried from the gateway to the worker, so one request's log lines share a
/// trace id across processes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    /// `traceparent` header value: `00-<32 hex trace id>-<16 hex span id>-01`.
    pub traceparent: String,
}

impl TraceContext {
    /// A new root trace.
    pub fn new_root() -> Self {
        let trace = uuid::Uuid::new_v4().simple().to_string();
        let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
        Self {
            traceparent: format!("00-{trace}-{span}-01"),
        }
    }

    /// The 32-hex trace id part.
    pub fn trace_id(&self) -> &str {
        self.traceparent.get(3..35).unwrap_or("")
    }
}

/// The envelope as stored in Redis, version 1. Encoded with rmp-serde as a map (named fields)
/// so fields can be added without breaking readers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Wire version; always [`ENVELOPE_VERSION`] when written by this build.
    pub v: u8,
    /// Job id, stable across retries.
    pub id: JobId,
    /// Owning tenant; every key the job touches is in this tenant's namespace.
    pub tenant: TenantId,
    /// What to do.
    pub kind: JobKind,
    /// Priority class.
    pub lane: Lane,
    /// 1 for the first run, incremented by every retry (not by rate-limit deferrals).
    pub attempt: u32,
    /// When the job was first enqueued, ms since the Unix epoch.
    pub created_ms: i64,
    /// Key that made the enqueue idempotent, if any.
    pub idempotency_key: Option<String>,
    /// Trace context from the request that created the job.
    pub trace: Option<TraceContext>,
    /// Handler-specific payload (msgpack bytes). Shared, not copied, by clones of the envelope;
    /// a claimed job's payload is a view into the entry as read from Redis.
    #[serde(with = "payload_bytes")]
    pub payload: Bytes,
    /// When an upstream limit first deferred this job, ms since the Unix epoch (`None`: never
    /// deferred). Deferrals past `queue.deferDeadlineMs` from here are dead-lettered. Absent
    /// from entries written before this field existed, and ignored by builds that predate it
    /// (named fields), so the envelope version stays 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_since_ms: Option<i64>,
}

/// Why an entry could not be turned into an [`Envelope`]. Such entries are dead-lettered.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a msgpack map with a version field.
    #[error("undecodable envelope: {0}")]
    Malformed(String),
    /// Written by a newer (or corrupt) producer.
    #[error("unknown envelope version {0} (this build reads version {ENVELOPE_VERSION})")]
    UnknownVersion(u8),
}

/// The payload as msgpack `bin`, as `serde_bytes` wrote and read the former `Vec<u8>`.
mod payload_bytes {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(payload: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(payload)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        serde_bytes::ByteBuf::deserialize(deserializer).map(|b| Bytes::from(b.into_vec()))
    }
}

/// An envelope as decoded, its payload borrowed from the entry's bytes when they allow it (the
/// same fields as [`Envelope`], which this is turned into).
#[derive(Deserialize)]
struct Wire<'a> {
    v: u8,
    id: JobId,
    tenant: TenantId,
    kind: JobKind,
    lane: Lane,
    attempt: u32,
    created_ms: i64,
    idempotency_key: Option<String>,
    trace: Option<TraceContext>,
    #[serde(borrow, with = "serde_bytes")]
    payload: Cow<'a, [u8]>,
    #[serde(default)]
    deferred_since_ms: Option<i64>,
}

impl Wire<'_> {
    fn into_envelope(self, payload: Bytes) -> Envelope {
        Envelope {
            v: self.v,
            id: self.id,
            tenant: self.tenant,
            kind: self.kind,
            lane: self.lane,
            attempt: self.attempt,
            created_ms: self.created_ms,
            idempotency_key: self.idempotency_key,
            trace: self.trace,
            payload,
            deferred_since_ms: self.deferred_since_ms,
        }
    }
}

#[derive(Deserialize)]
struct VersionProbe {
    v: u8,
}

#[derive(Deserialize)]
struct IdProbe {
    id: String,
}

impl Envelope {
    /// Encodes the envelope for the stream.
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("envelope always encodes")
    }

    /// Decodes an entry, checking the version first so an unknown version is reported as such.
    /// The payload is copied out of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let wire = Self::decode_wire(bytes)?;
        let payload = Bytes::copy_from_slice(&wire.payload);
        Ok(wire.into_envelope(payload))
    }

    /// [`Envelope::decode`] whose payload is a view into `bytes` (no copy): a worker holds a
    /// job's entry and its payload (a transform's whole document) once.
    pub fn decode_shared(bytes: &Bytes) -> Result<Self, DecodeError> {
        let wire = Self::decode_wire(bytes)?;
        let payload = match &wire.payload {
            Cow::Borrowed(p) => bytes.slice_ref(p),
            Cow::Owned(p) => Bytes::copy_from_slice(p),
        };
        Ok(wire.into_envelope(payload))
    }

    fn decode_wire(bytes: &[u8]) -> Result<Wire<'_>, DecodeError> {
        // The common case decodes once; the version is only probed to explain a failure or to
        // refuse a version this build does not know.
        match rmp_serde::from_slice::<Wire<'_>>(bytes) {
            Ok(wire) if wire.v == ENVELOPE_VERSION => Ok(wire),
            Ok(wire) => Err(DecodeError::UnknownVersion(wire.v)),
            Err(full) => match rmp_serde::from_slice::<VersionProbe>(bytes) {
                Ok(probe) if probe.v != ENVELOPE_VERSION => {
                    Err(DecodeError::UnknownVersion(probe.v))
                }
                _ => Err(DecodeError::Malformed(full.to_string())),
            },
        }
    }

    /// The job id of an entry that does not decode (an unknown version, a field of the wrong
    /// type), when its map still has a string `id`: enough to mark the job's status `dead`.
    pub fn probe_id(bytes: &[u8]) -> Option<JobId> {
        rmp_serde::from_slice::<IdProbe>(bytes)
            .ok()
            .filter(|p| !p.id.is_empty())
            .map(|p| JobId::new(p.id))
    }

    /// Decodes the payload as `P`, refusing (terminally) a job of another kind than `P`'s.
    pub fn payload_as<P: JobPayload>(&self) -> Result<P, JobError> {
        self.expect_kind(&P::KIND)?;
        rmp_serde::from_slice(&self.payload)
            .map_err(|e| JobError::terminal(format!("payload of {} is not valid: {e}", self.kind)))
    }

    /// A terminal error unless this job is of `kind` (a handler given another kind's job).
    pub fn expect_kind(&self, kind: &JobKind) -> Result<(), JobError> {
        if self.kind == *kind {
            return Ok(());
        }
        Err(JobError::terminal(format!(
            "job {} is a {} job, not {kind}: its payload is not read as one",
            self.id, self.kind
        )))
    }

    /// This job (id, tenant, lane, attempt, trace) carrying `payload` as a job of its type's
    /// kind, so a handler can hand its work to that kind's handler (a `/transform` command).
    pub fn retyped<P: JobPayload>(&self, payload: &P) -> Envelope {
        Envelope {
            kind: P::KIND,
            payload: encode_payload(payload).into(),
            ..self.clone()
        }
    }
}

fn encode_payload<T: Serialize + ?Sized>(payload: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(payload).expect("payload encodes")
}

/// A job to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// Owning tenant.
    pub tenant: TenantId,
    /// What to do.
    pub kind: JobKind,
    /// Priority class.
    pub lane: Lane,
    /// Handler payload, already msgpack-encoded.
    pub payload: Vec<u8>,
    /// The same key within the idempotency window returns the first job's id.
    pub idempotency_key: Option<String>,
    /// Trace context of the creating request.
    pub trace: Option<TraceContext>,
}

impl NewJob {
    /// The job carrying `payload`: of its type's kind, on its type's lane.
    pub fn new<P: JobPayload>(tenant: TenantId, payload: &P) -> Self {
        Self::untyped(tenant, P::KIND, P::LANE, payload)
    }

    /// A job whose payload no [`JobPayload`] type describes: what tests use to write malformed
    /// payloads and poison. Producers use [`NewJob::new`].
    pub fn untyped<T: Serialize + ?Sized>(
        tenant: TenantId,
        kind: JobKind,
        lane: Lane,
        payload: &T,
    ) -> Self {
        Self {
            tenant,
            kind,
            lane,
            payload: encode_payload(payload),
            idempotency_key: None,
            trace: None,
        }
    }

    /// Puts the job on `lane` instead of its payload's usual one.
    pub fn lane(mut self, lane: Lane) -> Self {
        self.lane = lane;
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets the trace context.
    pub fn trace(mut self, trace: TraceContext) -> Self {
        self.trace = Some(trace);
        self
    }

    /// The envelope for the first attempt.
    pub fn into_envelope(self, id: JobId, now_ms: i64) -> Envelope {
        Envelope {
            v: ENVELOPE_VERSION,
            id,
            tenant: self.tenant,
            kind: self.kind,
            lane: self.lane,
            attempt: 1,
            created_ms: now_ms,
            idempotency_key: self.idempotency_key,
            trace: self.trace,
            payload: self.payload.into(),
            deferred_since_ms: None,
        }
    }
}

/// What a successful handler reports; `result` is shown by `GET /v1/jobs/{id}`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobOutcome {
    /// Handler result (small JSON: links, counts), kept with the job status.
    pub result: Option<serde_json::Value>,
}

/// How a handler failed; the queue acts on the variant.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobError {
    /// Try again later: with exponential backoff, or after `retry_after` when the upstream said so.
    #[error("{message}")]
    Retryable {
        /// Why it failed (shown in status and the dead-letter entry).
        message: String,
        /// The upstream's requested wait, if any.
        retry_after: Option<Duration>,
    },
    /// Never retry: the job goes to the dead-letter stream with this reason.
    #[error("{message}")]
    Terminal {
        /// Why it cannot succeed.
        message: String,
    },
    /// Not a failure: a limit (rate, capacity) is reached; run again after `wait` without
    /// counting an attempt.
    #[error("deferred for {wait:?}: {reason}")]
    Deferred {
        /// How long until capacity frees.
        wait: Duration,
        /// Which limit.
        reason: String,
        /// True when the upstream itself refused the call (a 429, 529, or 503 with
        /// retry-after); false for Onomancer's own limits (a tenant's rate limit, the fleet's
        /// share of Discord's buckets, a pause other workers set). Only upstream refusals count
        /// toward `queue.deferDeadlineMs`: a tenant whose own backlog waits for its own quota
        /// must not be dead-lettered for it.
        upstream: bool,
    },
}

impl JobError {
    /// A retryable error with no upstream hint.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }

    /// A terminal error.
    pub fn terminal(message: impl Into<String>) -> Self {
        Self::Terminal {
            message: message.into(),
        }
    }

    /// A deferral by one of Onomancer's own limits: run again after `wait` without spending an
    /// attempt, however long the job has waited so far.
    pub fn deferred(wait: Duration, reason: impl Into<String>) -> Self {
        Self::Deferred {
            wait,
            reason: reason.into(),
            upstream: false,
        }
    }

    /// A deferral because the upstream refused the call (429, 529, 503 with retry-after): run
    /// again after `wait` without spending an attempt, until `queue.deferDeadlineMs` after the
    /// job's first such refusal.
    pub fn upstream_deferred(wait: Duration, reason: impl Into<String>) -> Self {
        Self::Deferred {
            wait,
            reason: reason.into(),
            upstream: true,
        }
    }

    /// True for a deferral the upstream asked for (see [`JobError::Deferred`]).
    pub fn is_upstream_deferral(&self) -> bool {
        matches!(self, Self::Deferred { upstream: true, .. })
    }

    /// The wait this error asks for: a deferral's wait or a retry's `retry_after`.
    pub fn wait(&self) -> Option<Duration> {
        match self {
            Self::Deferred { wait, .. } => Some(*wait),
            Self::Retryable { retry_after, .. } => *retry_after,
            Self::Terminal { .. } => None,
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::Retryable { message, .. } | Self::Terminal { message } => message,
            Self::Deferred { reason, .. } => reason,
        }
    }

    /// One error for a job whose parts failed separately (the personas of a transform, the
    /// parts of a post): terminal if any part is terminal; else deferred if any part was
    /// deferred (no attempt is spent while an upstream asks to wait); else retryable. The wait
    /// is the longest any part asked for, so a sibling's different failure never hides an
    /// upstream's `retry-after`. Messages are joined in order.
    pub fn combine(self, other: JobError) -> JobError {
        let wait = match (self.wait(), other.wait()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let message = if self.message() == other.message() {
            self.message().to_owned()
        } else {
            format!("{}; {}", self.message(), other.message())
        };
        match (&self, &other) {
            (Self::Terminal { .. }, _) | (_, Self::Terminal { .. }) => Self::Terminal { message },
            (Self::Deferred { .. }, _) | (_, Self::Deferred { .. }) => Self::Deferred {
                wait: wait.unwrap_or_default(),
                reason: message,
                upstream: self.is_upstream_deferral() || other.is_upstream_deferral(),
            },
            _ => Self::Retryable {
                message,
                retry_after: wait,
            },
        }
    }

    /// [`JobError::combine`] over any number of errors (`None` when there are none).
    pub fn combine_all(errors: impl IntoIterator<Item = JobError>) -> Option<JobError> {
        errors.into_iter().reduce(JobError::combine)
    }
}

#[cfg(test)]
mod tests;
