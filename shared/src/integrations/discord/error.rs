//! How a Discord call can fail, and what the job should do about it (retry after Discord's wait,
//! retry with backoff, or stop with a message the user understands).

use std::time::Duration;

use serde::Deserialize;

use crate::job::JobError;

/// Why a Discord call failed. Messages never contain tokens.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// 429: wait `retry_after`.
    #[error("Discord rate limit{}: retry after {retry_after:?}", if *global { " (global)" } else { "" })]
    RateLimited {
        /// From the body's `retry_after`, else `X-RateLimit-Reset-After`, else `Retry-After`.
        retry_after: Duration,
        /// The bot-wide limit rather than one route's.
        global: bool,
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
    #[error("Discord server error {status}")]
    Server {
        /// HTTP status.
        status: u16,
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
            DiscordError::RateLimited { retry_after, .. } => JobError::Retryable {
                message,
                retry_after: Some(retry_after),
            },
            DiscordError::Busy { wait, .. } => JobError::Retryable {
                message,
                retry_after: Some(wait),
            },
            DiscordError::Server { .. } | DiscordError::Transport(_) | DiscordError::Redis(_) => {
                JobError::retryable(message)
            }
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
