//! The job payloads, one type per job kind, each naming its kind and lane ([`JobPayload`]):
//! the gateway, the scheduler, the CLI and the worker's follow-up jobs build jobs from them
//! (`NewJob::new`), and the worker decodes them with `Envelope::payload_as` into the same types,
//! so producers and handlers cannot drift. Msgpack with named fields; fields are only ever added
//! (with a default), never renamed. The `transform` payload is in [`crate::transform_job`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::Persona;
use crate::job::{JobKind, JobPayload, Lane};
use crate::transform_job::TransformJob;

/// Payload version written by this build.
pub const PAYLOAD_VERSION: u8 = 1;

/// Longest pull request, issue or comment text a job carries (characters): enough for every
/// decision line, and a bound on what one webhook puts in the stream.
pub const MAX_BODY_CHARS: usize = 16_000;

/// `text` without surrounding whitespace, cut to [`MAX_BODY_CHARS`]; `None` when empty.
pub fn bounded_body(text: Option<String>) -> Option<String> {
    let text = text?;
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    Some(match t.char_indices().nth(MAX_BODY_CHARS) {
        Some((i, _)) => t[..i].to_owned(),
        None => t.to_owned(),
    })
}

/// `github.build_status`: a CI outcome (workflow run, check suite or commit status).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildStatusJob {
    /// Payload version.
    pub v: u8,
    /// `X-GitHub-Delivery`.
    pub delivery: String,
    /// `workflow_run`, `check_suite` or `status`.
    pub event: String,
    /// `requested`, `in_progress`, `completed` (`status` events have none).
    pub action: Option<String>,
    /// Repository `org/repo`.
    pub repo: String,
    /// Workflow name, check-suite app name, or status context.
    pub name: String,
    /// Branch, when GitHub names one.
    pub branch: Option<String>,
    /// Commit the build ran on.
    pub sha: String,
    /// `queued`, `in_progress`, `completed`, or a status `state` (pending, success, failure, error).
    pub status: Option<String>,
    /// `success`, `failure`, `cancelled`, `timed_out`, ... once completed.
    pub conclusion: Option<String>,
    /// Link to the run or the status target.
    pub url: Option<String>,
}

impl JobPayload for BuildStatusJob {
    const KIND: JobKind = JobKind::BuildStatus;
    const LANE: Lane = Lane::Default;
}

/// `github.activity`: a pull request, release or push, for notifications and digests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GithubActivityJob {
    /// Payload version.
    pub v: u8,
    /// `X-GitHub-Delivery`.
    pub delivery: String,
    /// `pull_request`, `release` or `push`.
    pub event: String,
    /// The event's action (`opened`, `closed`, `published`, ...; none for pushes).
    pub action: Option<String>,
    /// Repository `org/repo`.
    pub repo: String,
    /// Who did it (GitHub login or pusher name).
    pub actor: Option<String>,
    /// What happened, per event.
    pub detail: ActivityDetail,
}

impl JobPayload for GithubActivityJob {
    const KIND: JobKind = JobKind::GithubActivity;
    const LANE: Lane = Lane::Default;
}

/// Event-specific facts of an activity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ActivityDetail {
    /// A pull request changed.
    PullRequest {
        /// PR number.
        number: u64,
        /// PR title.
        title: String,
        /// Web link.
        url: String,
        /// Whether a `closed` PR was merged.
        merged: bool,
        /// Source branch.
        head: Option<String>,
        /// Target branch.
        base: Option<String>,
        /// The description, cut to [`MAX_BODY_CHARS`] (decision lines are read from it).
        #[serde(default)]
        body: Option<String>,
        /// Label names (`decision` marks a decision).
        #[serde(default)]
        labels: Vec<String>,
    },
    /// A release changed.
    Release {
        /// Tag.
        tag: String,
        /// Release title (may be empty).
        name: Option<String>,
        /// Web link.
        url: String,
        /// Pre-release flag.
        prerelease: bool,
        /// Draft flag.
        draft: bool,
    },
    /// Commits were pushed (or a ref created or deleted).
    Push {
        /// Full ref (`refs/heads/main`).
        git_ref: String,
        /// Commit before the push.
        before: String,
        /// Commit after the push (all zeros when the ref was deleted).
        after: String,
        /// Number of commits in the push.
        commits: u32,
        /// Compare link.
        compare: Option<String>,
        /// First line of the head commit's message.
        head_message: Option<String>,
        /// Whether the ref was deleted.
        deleted: bool,
    },
}

/// `linear.activity`: an Issue, Comment or Project change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearActivityJob {
    /// Payload version.
    pub v: u8,
    /// `Linear-Delivery`.
    pub delivery: String,
    /// `create`, `update` or `remove`.
    pub action: String,
    /// `Issue`, `Comment` or `Project`.
    pub entity: String,
    /// The entity's id.
    pub id: Option<String>,
    /// Human identifier (`ENG-123`) for issues.
    pub identifier: Option<String>,
    /// Issue or project title (or comment body's first line).
    pub title: Option<String>,
    /// Linear team key (`ENG`), used to route to a channel.
    pub team: Option<String>,
    /// Workflow state name (`In Progress`).
    pub state: Option<String>,
    /// Link to the entity.
    pub url: Option<String>,
    /// Who did it.
    pub actor: Option<String>,
    /// Names of the fields that changed (`updatedFrom` keys) on updates.
    pub changed: Vec<String>,
    /// `createdAt` of the event.
    pub created_at: Option<String>,
    /// Comment body, or issue/project description, cut to [`MAX_BODY_CHARS`] (decision lines
    /// are read from it).
    #[serde(default)]
    pub body: Option<String>,
    /// Label names of an issue or project (`decision` marks a decision).
    #[serde(default)]
    pub labels: Vec<String>,
}

impl JobPayload for LinearActivityJob {
    const KIND: JobKind = JobKind::LinearActivity;
    const LANE: Lane = Lane::Default;
}

/// The `command` of a *Record decision* message command (message command names may hold spaces
/// and capitals; jobs and role config use this key).
pub const RECORD_DECISION: &str = "record-decision";

/// `discord.command`: a slash command the worker answers by editing the deferred reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiscordCommandJob {
    /// Payload version.
    pub v: u8,
    /// Interaction id.
    pub interaction_id: String,
    /// Application id (for `PATCH /webhooks/{app}/{token}/messages/@original`).
    pub application_id: String,
    /// Interaction token (valid 15 minutes).
    pub token: String,
    /// Command name (`transform`, `digest`, `decisions`, `usage`, `status`).
    pub command: String,
    /// Options by name, as JSON values (strings, numbers, booleans; attachments resolved).
    pub options: std::collections::BTreeMap<String, serde_json::Value>,
    /// Guild the command ran in.
    pub guild_id: String,
    /// Channel the command ran in.
    pub channel_id: Option<String>,
    /// Who ran it.
    pub user_id: Option<String>,
    /// Set when the gateway already consumed transform quota for this command.
    pub quota_consumed: bool,
    /// The transform to run, for `/transform` (source resolved from the link or attachment).
    pub transform: Option<TransformJob>,
}

impl JobPayload for DiscordCommandJob {
    const KIND: JobKind = JobKind::DiscordCommand;
    const LANE: Lane = Lane::Interactive;
}

impl DiscordCommandJob {
    /// A string option, trimmed; `None` when absent, not a string, or blank.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// `digest`: one persona's digest of a tenant's activity over a period, written weekly by the
/// scheduler (bulk lane) and on demand by `/digest` (default lane).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DigestPayload {
    /// Audience.
    pub persona: Persona,
    /// Start of the period covered (inclusive; the previous fire for the scheduler).
    pub period_start: DateTime<Utc>,
    /// End of the period (exclusive; the fire for the scheduler).
    pub period_end: DateTime<Utc>,
    /// `/digest`'s interaction token: the digest then edits that deferred reply instead of
    /// posting to the notification channel. Set it on one job only (a one-persona `/digest`):
    /// every job given the token would edit the same `@original` message, and the token expires
    /// 15 minutes after the command. Absent from the scheduler's jobs (and decoded as `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interaction_token: Option<String>,
}

impl JobPayload for DigestPayload {
    const KIND: JobKind = JobKind::Digest;
    const LANE: Lane = Lane::Bulk;
}

/// `diag.noop`: does nothing (benchmarks, smoke tests). The worker never reads its payload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NoopPayload {}

impl JobPayload for NoopPayload {
    const KIND: JobKind = JobKind::Noop;
    const LANE: Lane = Lane::Default;
}

/// `diag.sleep`: operational checks of long jobs, claim extension, retries and shutdown.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SleepPayload {
    /// How long to sleep, ms.
    pub ms: u64,
    /// Fail this many first attempts with a retryable error (exercises the retry path).
    #[serde(default)]
    pub fail_attempts: u32,
    /// Fail terminally with this message.
    #[serde(default)]
    pub terminal: Option<String>,
}

impl JobPayload for SleepPayload {
    const KIND: JobKind = JobKind::Sleep;
    const LANE: Lane = Lane::Default;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobId, NewJob, TenantId};

    #[test]
    fn a_command_job_reads_back_as_written_and_options_are_trimmed() {
        let job = DiscordCommandJob {
            v: PAYLOAD_VERSION,
            interaction_id: "1".into(),
            application_id: "2".into(),
            token: "t".into(),
            command: RECORD_DECISION.into(),
            options: [
                ("query".to_owned(), serde_json::json!("  pricing ")),
                ("blank".to_owned(), serde_json::json!("   ")),
                ("n".to_owned(), serde_json::json!(3)),
            ]
            .into(),
            guild_id: "g".into(),
            channel_id: None,
            user_id: Some("u".into()),
            quota_consumed: false,
            transform: None,
        };
        let env = NewJob::new(TenantId::new("acme"), &job).into_envelope(JobId::generate(), 0);
        let back: DiscordCommandJob = env.payload_as().unwrap();
        assert_eq!(back, job);
        assert_eq!(back.option("query"), Some("pricing"));
        assert_eq!(back.option("blank"), None);
        assert_eq!(back.option("n"), None);
        assert_eq!(back.option("missing"), None);
    }

    #[test]
    fn bodies_are_trimmed_cut_and_blank_ones_dropped() {
        assert_eq!(bounded_body(Some("  \n ".into())), None);
        assert_eq!(bounded_body(None), None);
        assert_eq!(bounded_body(Some(" a ".into())).as_deref(), Some("a"));
        let long = "é".repeat(MAX_BODY_CHARS + 10);
        assert_eq!(
            bounded_body(Some(long)).unwrap().chars().count(),
            MAX_BODY_CHARS
        );
    }
}
