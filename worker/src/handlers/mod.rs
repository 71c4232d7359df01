//! Job dispatch: one module per job kind. An unknown kind is a terminal error (dead-lettered with
//! its name), never a crash or a retry loop. A kind whose clients are not configured on this worker
//! (no Claude key, no Discord token) fails terminally with a message saying which setting is missing.

pub mod claude_once;
pub mod decisions;
pub mod diag;
pub mod digest;
pub mod discord_command;
pub mod notify;
pub mod transform;

use onomancer_shared::queue::JobHandler;
use onomancer_shared::{Envelope, JobError, JobKind, JobOutcome};

pub use digest::DigestHandler;
pub use discord_command::DiscordCommandHandler;
pub use notify::NotifyHandler;
pub use transform::TransformHandler;

/// Every handler this worker runs, with the clients they need.
#[derive(Clone, Default)]
pub struct Handlers {
    /// `transform` jobs (`None`: Claude not configured here).
    pub transform: Option<TransformHandler>,
    /// Build status and activity notifications (`None`: Discord not configured here).
    pub notify: Option<NotifyHandler>,
    /// Slash commands answered by editing the deferred reply (`None`: Discord not configured).
    pub discord_command: Option<DiscordCommandHandler>,
    /// Weekly per-persona digests (`None`: no database here).
    pub digest: Option<DigestHandler>,
    /// Where GitHub and Linear activity is kept for digests (`None`: no database here).
    pub activity: Option<onomancer_shared::activity::ActivityStore>,
    /// Where decisions marked in GitHub and Linear are kept for `/decisions` (`None`: no
    /// database here).
    pub decisions: Option<onomancer_shared::decisions::DecisionStore>,
}

impl Handlers {
    /// Handlers with no external clients (diagnostic kinds only).
    pub fn diagnostics_only() -> Self {
        Self::default()
    }
}

fn missing(kind: &JobKind, what: &str) -> JobError {
    JobError::terminal(format!(
        "this worker cannot run {kind} jobs: {what} (replay the job from the dead-letter stream once it is set)"
    ))
}

impl JobHandler for Handlers {
    async fn handle(&self, job: Envelope) -> Result<JobOutcome, JobError> {
        match &job.kind {
            JobKind::Noop | JobKind::Sleep => diag::run(&job).await,
            JobKind::Transform => match &self.transform {
                Some(h) => h.handle(&job).await,
                None => Err(missing(&job.kind, "ANTHROPIC_API_KEY is not set")),
            },
            JobKind::BuildStatus | JobKind::GithubActivity | JobKind::LinearActivity => {
                // Kept for digests and decision search first (idempotent by the delivery), then
                // notified.
                if let Some(store) = &self.activity {
                    notify::record_activity(store, &job).await?;
                }
                if let Some(store) = &self.decisions {
                    notify::record_decision(store, &job).await?;
                }
                match &self.notify {
                    Some(h) => h.handle(&job).await,
                    None => Err(missing(
                        &job.kind,
                        "DISCORD_BOT_TOKEN / DISCORD_APPLICATION_ID are not set",
                    )),
                }
            }
            JobKind::Digest => match &self.digest {
                Some(h) => h.handle(&job).await,
                None => Err(missing(&job.kind, "no database is configured")),
            },
            JobKind::DiscordCommand => match &self.discord_command {
                Some(h) => h.handle(&job).await,
                None => Err(missing(
                    &job.kind,
                    "DISCORD_BOT_TOKEN / DISCORD_APPLICATION_ID are not set",
                )),
            },
            JobKind::Unknown(name) => Err(JobError::terminal(format!("unknown job kind {name:?}"))),
        }
    }
}

#[cfg(test)]
mod tests;
