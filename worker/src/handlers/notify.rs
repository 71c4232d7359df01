//! `github.build_status`, `github.activity` and `linear.activity` jobs: a concise Discord message
//! in the channel mapped to the repository (GitHub) or team (Linear), falling back to the
//! tenant's notification channel. Events nobody needs pinged about (a queued build, a push) are
//! acknowledged without a message; the job result says why.
//!
//! The payloads are the gateway's (`onomancer_shared::payloads`).

use std::sync::Arc;

use onomancer_shared::integrations::discord::{DiscordPoster, PostTarget};
use onomancer_shared::tenant::{TenantContext, TenantRegistry};
use onomancer_shared::{Envelope, JobError, JobKind, JobOutcome};
use serde_json::json;

// The gateway's payloads, decoded into the same types it writes.
use onomancer_shared::payloads::{
    ActivityDetail, BuildStatusJob as BuildStatus, GithubActivityJob as GithubActivity,
    LinearActivityJob as LinearActivity,
};

/// Runs notification jobs. Cheap to clone.
#[derive(Clone)]
pub struct NotifyHandler {
    /// Channel routing per tenant.
    pub tenants: Arc<TenantRegistry>,
    /// Posts messages (each once per job, with a job-derived nonce).
    pub discord: DiscordPoster,
}

/// What to post, and where (`None`: nothing to post, with the reason).
pub(crate) enum Notice {
    Post {
        channel: Option<String>,
        content: String,
    },
    Skip(&'static str),
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

fn link(text: &str, url: Option<&str>) -> String {
    match url {
        Some(u) => format!("[{text}](<{u}>)"),
        None => text.to_owned(),
    }
}

fn github_channel(tenant: &TenantContext, repo: &str) -> Option<String> {
    tenant
        .config
        .github
        .channel_for(repo)
        .map(str::to_owned)
        .or_else(|| tenant.config.discord.notification_channel_id.clone())
}

fn build_notice(tenant: &TenantContext, b: BuildStatus) -> Notice {
    let outcome = match b.event.as_str() {
        "status" => match b.status.as_deref() {
            Some(s @ ("success" | "failure" | "error")) => s.to_owned(),
            _ => return Notice::Skip("commit status not final"),
        },
        _ if b.action.as_deref() != Some("completed") => {
            return Notice::Skip("build not completed")
        }
        _ => b.conclusion.clone().unwrap_or_else(|| "completed".into()),
    };
    let icon = match outcome.as_str() {
        "success" => "✅",
        "failure" | "error" | "timed_out" | "startup_failure" => "❌",
        "cancelled" | "skipped" | "stale" | "neutral" => "⚪",
        _ => "⚠️",
    };
    let branch = b
        .branch
        .as_deref()
        .map(|br| format!(" on `{br}`"))
        .unwrap_or_default();
    Notice::Post {
        channel: github_channel(tenant, &b.repo),
        content: format!(
            "{icon} **{}** {}: {}{branch} (`{}`) {outcome}",
            b.repo,
            b.event.replace('_', " "),
            link(&b.name, b.url.as_deref()),
            short(&b.sha),
        ),
    }
}

fn activity_notice(tenant: &TenantContext, a: GithubActivity) -> Notice {
    let by = a
        .actor
        .as_deref()
        .map(|x| format!(" by {x}"))
        .unwrap_or_default();
    let action = a.action.as_deref().unwrap_or("");
    let content = match a.detail {
        ActivityDetail::PullRequest {
            number,
            title,
            url,
            merged,
            ..
        } => {
            let verb = match (action, merged) {
                ("closed", true) => "merged",
                ("opened" | "reopened" | "ready_for_review", _) => action,
                ("closed", false) => "closed",
                _ => return Notice::Skip("pull request change not notified"),
            };
            format!(
                "🔀 **{}** PR #{number} {verb}{by}: {}",
                a.repo,
                link(&title, Some(&url))
            )
        }
        ActivityDetail::Release {
            tag,
            name,
            url,
            prerelease,
            draft,
        } => {
            if draft || !matches!(action, "published" | "released") {
                return Notice::Skip("release not published");
            }
            let kind = if prerelease { "Pre-release" } else { "Release" };
            let title = name.map(|n| format!("{tag}: {n}")).unwrap_or(tag);
            format!("🚀 **{}** {kind} {}{by}", a.repo, link(&title, Some(&url)))
        }
        ActivityDetail::Push { .. } => return Notice::Skip("pushes are not notified"),
    };
    Notice::Post {
        channel: github_channel(tenant, &a.repo),
        content,
    }
}

fn linear_notice(tenant: &TenantContext, l: LinearActivity) -> Notice {
    let noteworthy = match (l.entity.as_str(), l.action.as_str()) {
        ("Issue", "create" | "remove") | ("Comment", "create") | ("Project", "create") => true,
        ("Issue", "update") => l
            .changed
            .iter()
            .any(|c| c == "stateId" || c == "assigneeId"),
        ("Project", "update") => l.changed.iter().any(|c| c == "state" || c == "statusId"),
        _ => false,
    };
    if !noteworthy {
        return Notice::Skip("Linear change not notified");
    }
    let what = match (&l.identifier, &l.title) {
        (Some(id), Some(t)) => format!("{id} {t}"),
        (Some(id), None) => id.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => l.entity.clone(),
    };
    let verb = match (l.entity.as_str(), l.action.as_str()) {
        ("Comment", _) => "new comment on".to_owned(),
        (_, "create") => "created".to_owned(),
        (_, "remove") => "removed".to_owned(),
        _ => match &l.state {
            Some(s) => format!("moved to **{s}**:"),
            None => "updated".to_owned(),
        },
    };
    let by = l
        .actor
        .as_deref()
        .map(|x| format!(" by {x}"))
        .unwrap_or_default();
    let channel = l
        .team
        .as_deref()
        .and_then(|t| tenant.config.linear.channels.get(t).cloned())
        .or_else(|| tenant.config.discord.notification_channel_id.clone());
    Notice::Post {
        channel,
        content: format!(
            "📋 {} {verb} {}{by}",
            l.entity,
            link(&what, l.url.as_deref())
        ),
    }
}

/// The notice for a job (pure; tested without Discord).
pub(crate) fn notice_for(tenant: &TenantContext, job: &Envelope) -> Result<Notice, JobError> {
    Ok(match &job.kind {
        JobKind::BuildStatus => build_notice(tenant, job.payload_as()?),
        JobKind::GithubActivity => activity_notice(tenant, job.payload_as()?),
        JobKind::LinearActivity => linear_notice(tenant, job.payload_as()?),
        other => {
            return Err(JobError::terminal(format!(
                "{other} is not a notification job"
            )))
        }
    })
}

impl NotifyHandler {
    /// Runs one job.
    #[tracing::instrument(name = "notify", skip_all, fields(tenant = %job.tenant, job = %job.id, kind = %job.kind, attempt = job.attempt))]
    pub async fn handle(&self, job: &Envelope) -> Result<JobOutcome, JobError> {
        let tenant = self
            .tenants
            .get_tenant_context(job.tenant.as_str())
            .map_err(|e| JobError::terminal(e.to_string()))?;
        let (channel, content) = match notice_for(&tenant, job)? {
            Notice::Skip(reason) => {
                return Ok(JobOutcome {
                    result: Some(json!({"notified": false, "reason": reason})),
                })
            }
            Notice::Post { channel: None, .. } => {
                return Ok(JobOutcome {
                    result: Some(
                        json!({"notified": false, "reason": "no Discord channel is mapped for this repository or team, and no notificationChannelId is set"}),
                    ),
                })
            }
            Notice::Post {
                channel: Some(c),
                content,
            } => (c, content),
        };
        let channel_id: u64 = channel.parse().map_err(|_| {
            JobError::terminal(format!("channel id {channel:?} is not a snowflake"))
        })?;
        let posted = self
            .discord
            .post_job_output(
                &job.tenant,
                &job.id,
                &PostTarget::Channel { channel_id },
                &content,
            )
            .await?;
        Ok(JobOutcome {
            result: Some(json!({
                "notified": true,
                "channel_id": channel,
                "message_ids": posted.message_ids,
                "already_posted": posted.already_posted > 0,
            })),
        })
    }
}

// Activity for weekly digests (owned by the digest work): the same payloads, stored.
mod activity;
pub use activity::record_activity;

// Decisions for `/decisions`: the same payloads, when a decision is marked in them.
mod decisions;
pub use decisions::record_decision;
#[cfg(test)]
pub(crate) use decisions::{change_of as decision_change_of, Change as DecisionChange};

#[cfg(test)]
pub(crate) mod tests;
