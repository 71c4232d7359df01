//! How a Discord call can fail, and what the job should do about it (wait for Discord without
//! spending an attempt, retry with backoff, or stop with a message the user understands).

use std::time::Duration;

use serde::Deserialize;

use crate::job::JobError;

/// Why a Discord call failed. Messages never contain tokens.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// 429: wait `retry_after` (the job is deferred, no attempt spent).
    #[error("Discord rate limit{}: retry after {retry_after:?}", scope.as_deref().map(|s| format!(" ({s})")).unwrap_or_default())]
    RateLimited {
        /// From the body's `retry_after`, else `X-RateLimit-Reset-After`, else `Retry-After`.
        retry_after: Duration,
        /// The bot-wide limit rather than one route's (`"global": true`, `X-RateLimit-Global`,
        /// or scope `global`).
        global: bool,
        /// `X-RateLimit-Scope`: `user` (this bot on this route), `global`, or `shared` (the
        /// resource's limit, shared with others).
        scope: Option<String>,
    },
    /// Not sent: the fleet-wide guard (a pause, or our share of Discord's limits) asked to wait.
    #[error("Discord held back for every worker ({why}): retry after {wait:?}")]
    Throttled {
        /// Until the call may go.
        wait: Duration,
        /// Which limit: `global`, `channel`, `paused: ..` or `channel paused: ..`.
        why: String,
    },
    /// 401, 403 or 404: the request can never succeed as is.
    #[error("Discord answered {status} ({detail}): {hint}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Discord's message and JSON error code.
        detail: String,
        /// What it most likely means.
        hint: &'static str,
    },
    /// Another 4xx (e.g. 400 invalid form body).
    #[error("Discord rejected the request with {status}: {detail}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Discord's message and JSON error code.
        detail: String,
    },
    /// 5xx.
    #[error("Discord server error {status}{}", retry_after.map(|w| format!(": retry after {w:?}")).unwrap_or_default())]
    Server {
        /// HTTP status.
        status: u16,
        /// `Retry-After` (a 503 during an outage may send one).
        retry_after: Option<Duration>,
    },
    /// Connection failure or timeout; the message may or may not have been created.
    #[error("Discord unreachable: {0}")]
    Transport(String),
    /// A 2xx whose body is not a message.
    #[error("Discord answered with an unexpected body: {0}")]
    BadResponse(String),
    /// Building the request failed (bad base URL, bad token characters).
    #[error("cannot build the Discord request: {0}")]
    Request(String),
    /// Another run of the same job is posting this part right now.
    #[error("part {part} is being posted by another run of this job")]
    Busy {
        /// The part.
        part: usize,
        /// When its lease expires.
        wait: Duration,
    },
    /// Nothing to post.
    #[error("the output to post is empty")]
    EmptyContent,
    /// The idempotency marker could not be read.
    #[error("idempotency marker unavailable: {0}")]
    Redis(String),
}

impl DiscordError {
    /// True when Discord answered with an error status, so no message was created.
    pub(super) fn nothing_was_created(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Throttled { .. }
                | Self::Refused { .. }
                | Self::Rejected { .. }
                | Self::Server { .. }
        )
    }
}

impl From<DiscordError> for JobError {
    fn from(e: DiscordError) -> Self {
        let message = e.to_string();
        match e {
            // Discord asks to slow down: wait, spend no attempt (toward the deferral deadline).
            DiscordError::RateLimited {
                retry_after: wait, ..
            }
            | DiscordError::Server {
                retry_after: Some(wait),
                ..
            } => JobError::upstream_deferred(wait, message),
            // Our own share of Discord's limits, or another run is mid-post: wait, no deadline.
            DiscordError::Throttled { wait, .. } | DiscordError::Busy { wait, .. } => {
                JobError::deferred(wait, message)
            }
            DiscordError::Server {
                retry_after: None, ..
            }
            | DiscordError::Transport(_)
            | DiscordError::Redis(_) => JobError::retryable(message),
            DiscordError::Refused { .. }
            | DiscordError::Rejected { .. }
            | DiscordError::BadResponse(_)
            | DiscordError::Request(_)
            | DiscordError::EmptyContent => JobError::terminal(message),
        }
    }
}

#[derive(Deserialize, Default)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub(super) message: String,
    #[serde(default)]
    pub(super) code: Option<i64>,
    #[serde(default)]
    pub(super) retry_after: Option<f64>,
    #[serde(default)]
    pub(super) global: Option<bool>,
}
