//! Activity events: what happened in a tenant's GitHub, Linear and Discord (pull requests,
//! releases, finished builds, issue changes), stored in SQL for weekly digests. Every event has a
//! dedupe key (derived from the job that saw it), so a job that runs twice stores it once; every
//! query is filtered by tenant.

mod store;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

use crate::ids::TenantId;
use crate::job::JobError;

pub use store::ActivityStore;

/// Where an activity happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActivitySource {
    /// GitHub: pull requests, releases, builds.
    Github,
    /// Linear: issues, comments, projects.
    Linear,
    /// Discord: decisions and announcements made in channels.
    Discord,
}

impl ActivitySource {
    /// The stored name (`github`, `linear`, `discord`).
    pub fn as_str(self) -> &'static str {
        match self {
            ActivitySource::Github => "github",
            ActivitySource::Linear => "linear",
            ActivitySource::Discord => "discord",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "github" => Some(ActivitySource::Github),
            "linear" => Some(ActivitySource::Linear),
            "discord" => Some(ActivitySource::Discord),
            _ => None,
        }
    }
}

impl std::fmt::Display for ActivitySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that happened, as a digest reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityEvent {
    /// Whose activity it is: every query filters on it.
    pub tenant: TenantId,
    /// The system it happened in.
    pub source: ActivitySource,
    /// `<entity>.<action>`: `pull_request.merged`, `release.published`,
    /// `workflow_run.completed`, `issue.update`, `comment.create`, ...
    pub kind: String,
    /// One line a person recognises (`octo-org/app #42 Faster search`).
    pub title: String,
    /// Link to the thing, when there is one.
    pub url: Option<String>,
    /// Who did it (GitHub login, Linear user name), when known.
    pub actor: Option<String>,
    /// When it happened (stored to the millisecond).
    pub occurred_at: DateTime<Utc>,
    /// Source-specific facts (repository, branch, conclusion, state, changed fields): a JSON
    /// object.
    pub details: serde_json::Value,
    /// Unique per tenant: the same key is stored once (e.g. the job's idempotency key
    /// `github:<delivery>:activity`, or `job:<id>`).
    pub dedupe_key: String,
}

/// Why the activity store failed.
#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    /// The database failed (unreachable, locked, constraint other than the dedupe key).
    #[error("activity store: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A stored row could not be read back (unknown source, details not JSON).
    #[error("activity store: row {id} is not readable: {message}")]
    Corrupt {
        /// The row id.
        id: i64,
        /// What is wrong with it.
        message: String,
    },
}

impl From<ActivityError> for JobError {
    /// A database failure may pass (retry); an unreadable row will not (terminal).
    fn from(e: ActivityError) -> Self {
        match e {
            ActivityError::Sqlx(_) => JobError::retryable(e.to_string()),
            ActivityError::Corrupt { .. } => JobError::terminal(e.to_string()),
        }
    }
}
