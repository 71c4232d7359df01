//! The job payloads the gateway writes (msgpack, named fields, version `v`), one per job kind.
//! Workers decode them with `Envelope::payload_as`; fields are only ever added, never renamed.

use serde::{Deserialize, Serialize};

/// Payload version written by this build.
pub const PAYLOAD_VERSION: u8 = 1;

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
}

/// Where a transform's document comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DocumentSource {
    /// Text given inline (REST `text`).
    Text {
        /// The document.
        text: String,
    },
    /// A link to fetch (Google Doc, GitHub file page, any URL).
    Url {
        /// The link.
        url: String,
    },
    /// Files of a GitHub repository at a commit (documents touched by a push).
    GithubFiles {
        /// Repository `org/repo`.
        repo: String,
        /// Ref pushed (`refs/heads/main`).
        git_ref: String,
        /// Commit to read the files at.
        sha: String,
        /// Changed document paths (added or modified, matching the tenant's globs).
        paths: Vec<String>,
    },
    /// A file attached to a Discord command.
    DiscordAttachment {
        /// The attachment's CDN link.
        url: String,
        /// File name.
        filename: String,
        /// MIME type, when Discord sent it.
        content_type: Option<String>,
    },
}

/// Who asked for a transform, so results go back the same way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Origin {
    /// `POST /v1/transforms`; the result is read from `GET /v1/jobs/{id}`.
    Api,
    /// A GitHub push; results go to the repository's channel.
    GithubPush {
        /// `X-GitHub-Delivery`.
        delivery: String,
    },
    /// A Discord `/transform`; results go to the deferred reply.
    Discord {
        /// Application id (for the interaction webhook).
        application_id: String,
        /// Interaction token (valid 15 minutes).
        token: String,
        /// Channel the command ran in.
        channel_id: Option<String>,
    },
}

/// `transform`: turn one document into one version per persona.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformJob {
    /// Payload version.
    pub v: u8,
    /// The document.
    pub source: DocumentSource,
    /// Personas to write for; empty means the tenant's default personas.
    pub personas: Vec<String>,
    /// Product key, when the requester named one.
    pub product: Option<String>,
    /// Who asked.
    pub origin: Origin,
    /// The requesting user (Discord user id), for usage records.
    pub user: Option<String>,
    /// Title for posts and documents (attachment file name); derived from the source when absent.
    pub title: Option<String>,
}

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
