//! The job envelope: the versioned wire type every queue entry carries, and what a handler
//! returns (success, retryable failure, terminal failure, or "come back later").

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::ids::{JobId, TenantId};

/// The envelope version this build writes. Readers refuse (dead-letter) versions they do not know.
pub const ENVELOPE_VERSION: u8 = 1;

/// Priority class of a job. Workers always drain `Interactive` first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    /// A person is waiting in Discord (deferred interaction reply).
    Interactive,
    /// Webhook-driven work (build status, activity, transforms from pushes).
    Default,
    /// Background work nobody waits on (weekly digests, re-indexing).
    Bulk,
}

impl Lane {
    /// All lanes, highest priority first.
    pub const ALL: [Lane; 3] = [Lane::Interactive, Lane::Default, Lane::Bulk];

    /// The lane's name in keys, metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Interactive => "interactive",
            Lane::Default => "default",
            Lane::Bulk => "bulk",
        }
    }

    /// Parses a lane name.
    pub fn parse(s: &str) -> Option<Lane> {
        Lane::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job does; the worker dispatches on it. Unknown kinds are dead-lettered.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobKind(String);

impl JobKind {
    /// Writes one document for one or more personas.
    pub const TRANSFORM: &'static str = "transform";
    /// A GitHub build status event (workflow_run, check_suite, status) to notify about.
    pub const BUILD_STATUS: &'static str = "github.build_status";
    /// A GitHub activity event (pull_request, release, push) kept for digests.
    pub const GITHUB_ACTIVITY: &'static str = "github.activity";
    /// A Linear change (Issue, Comment, Project) kept for digests and notified.
    pub const LINEAR_ACTIVITY: &'static str = "linear.activity";
    /// A Discord slash command answered by editing the deferred reply.
    pub const DISCORD_COMMAND: &'static str = "discord.command";
    /// A weekly per-persona digest.
    pub const DIGEST: &'static str = "digest";
    /// Does nothing and succeeds (benchmarks, smoke tests).
    pub const NOOP: &'static str = "diag.noop";
    /// Sleeps for `ms` milliseconds then succeeds (operational checks of long jobs).
    pub const SLEEP: &'static str = "diag.sleep";

    /// A kind by name.
    pub fn new(kind: impl Into<String>) -> Self {
        Self(kind.into())
    }

    /// The kind's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

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

    /// Decodes the payload as the handler's type.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        rmp_serde::from_slice(&self.payload)
            .map_err(|e| JobError::terminal(format!("payload of {} is not valid: {e}", self.kind)))
    }
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
    /// A job with a serializable payload.
    pub fn new<T: Serialize>(tenant: TenantId, kind: &str, lane: Lane, payload: &T) -> Self {
        Self {
            tenant,
            kind: JobKind::new(kind),
            lane,
            payload: rmp_serde::to_vec_named(payload).expect("payload encodes"),
            idempotency_key: None,
            trace: None,
        }
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
