//! What a job is: its [`Lane`] (priority class), its [`JobKind`] (what the worker dispatches on)
//! and the [`JobPayload`] trait that ties a payload type to both, so a job's kind, lane and
//! payload are chosen together, once, by the payload's type.

use std::borrow::Cow;

use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

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

/// What a job does; the worker dispatches on it. On the wire (the envelope's `kind`, the status
/// hash, metrics labels) a kind is its name, e.g. `github.build_status`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// `transform`: writes one document for one or more personas.
    Transform,
    /// `github.build_status`: a GitHub build status event (workflow_run, check_suite, status) to
    /// notify about.
    BuildStatus,
    /// `github.activity`: a GitHub activity event (pull_request, release, push) kept for digests.
    GithubActivity,
    /// `linear.activity`: a Linear change (Issue, Comment, Project) kept for digests and notified.
    LinearActivity,
    /// `discord.command`: a Discord slash command answered by editing the deferred reply.
    DiscordCommand,
    /// `digest`: a weekly per-persona digest.
    Digest,
    /// `diag.noop`: does nothing and succeeds (benchmarks, smoke tests).
    Noop,
    /// `diag.sleep`: sleeps for `ms` milliseconds then succeeds (operational checks of long jobs).
    Sleep,
    /// A name this build does not know, kept as written: poison from a newer or broken producer
    /// (the worker's dispatch dead-letters it under its name, never drops it), or a kind private
    /// to a test's own handler. Never the name of a known kind: [`JobKind::parse`] maps those to
    /// their own arm.
    Unknown(Cow<'static, str>),
}

impl JobKind {
    /// Every kind this build knows.
    pub const KNOWN: [JobKind; 8] = [
        JobKind::Transform,
        JobKind::BuildStatus,
        JobKind::GithubActivity,
        JobKind::LinearActivity,
        JobKind::DiscordCommand,
        JobKind::Digest,
        JobKind::Noop,
        JobKind::Sleep,
    ];

    /// The kind's name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            JobKind::Transform => "transform",
            JobKind::BuildStatus => "github.build_status",
            JobKind::GithubActivity => "github.activity",
            JobKind::LinearActivity => "linear.activity",
            JobKind::DiscordCommand => "discord.command",
            JobKind::Digest => "digest",
            JobKind::Noop => "diag.noop",
            JobKind::Sleep => "diag.sleep",
            JobKind::Unknown(name) => name,
        }
    }

    /// The kind of a name: its own arm when this build knows it, else [`JobKind::Unknown`].
    pub fn parse(name: &str) -> JobKind {
        match name {
            "transform" => JobKind::Transform,
            "github.build_status" => JobKind::BuildStatus,
            "github.activity" => JobKind::GithubActivity,
            "linear.activity" => JobKind::LinearActivity,
            "discord.command" => JobKind::DiscordCommand,
            "digest" => JobKind::Digest,
            "diag.noop" => JobKind::Noop,
            "diag.sleep" => JobKind::Sleep,
            other => JobKind::Unknown(Cow::Owned(other.to_owned())),
        }
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A msgpack string, as the former `JobKind(String)` wrote it: envelopes stay byte-identical.
impl Serialize for JobKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = JobKind;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a job kind name")
            }
            // A known kind is read without allocating; only an unknown name is copied.
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<JobKind, E> {
                Ok(JobKind::parse(name))
            }
        }
        deserializer.deserialize_str(Name)
    }
}

/// A job payload: its type names the job's kind and its usual lane, so a job is built from a
/// payload alone ([`crate::NewJob::new`]) and read back only as the type its kind names
/// ([`crate::Envelope::payload_as`]). Encoded as msgpack with named fields; fields are only
/// added (with a default), never renamed.
pub trait JobPayload: Serialize + DeserializeOwned {
    /// The kind of every job carrying this payload.
    const KIND: JobKind;
    /// The lane such a job is enqueued on unless its producer says otherwise
    /// ([`crate::NewJob::lane`]).
    const LANE: Lane;
}
