//! `digest` jobs: a weekly (or `/digest`) summary of one tenant's activity for one persona.
//! Reads the period's events from the activity store and its recorded decisions, writes the digest with Claude from a
//! bounded activity log (`digest/input.rs`), records its usage once per job, saves one Google Doc
//! per digest when the tenant has a Workspace, and posts once to the tenant's notification
//! channel (or edits the `/digest` deferred reply when the payload carries its token).
//!
//! A period without activity gets a short "quiet week" digest without calling Claude. The text
//! Claude wrote is kept in Redis for a week under the job, so a retry (a Google or Discord
//! failure after Claude answered) posts the same text and does not pay twice.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;

use super::claude_once::ClaudeOnce;
use onomancer_shared::activity::ActivityStore;
use onomancer_shared::decisions::DecisionStore;
use onomancer_shared::integrations::discord::{DiscordPoster, PostTarget};
use onomancer_shared::integrations::google::{GoogleClient, NewDocument};
use onomancer_shared::llm::{Message, MessagesRequest, SystemPrompt};
use onomancer_shared::payloads::DigestPayload;
use onomancer_shared::tenant::{TenantContext, TenantRegistry};
use onomancer_shared::usage::ops;
use onomancer_shared::{Envelope, JobError, JobId, JobOutcome, TenantId};

pub mod input;

pub use input::{build_input, DigestInput};

/// Token budget of the activity log (the seed's ~20,000 input tokens, prompts included).
pub const INPUT_BUDGET_TOKENS: usize = 18_000;
/// Longest digest Claude may write (the seed expects ~4,000 output tokens).
pub const MAX_OUTPUT_TOKENS: u32 = 4_096;
/// Most events read for one digest; a busier period is noted as such.
pub const MAX_EVENTS: u32 = 5_000;
/// Most decisions read for one digest.
pub const MAX_DECISIONS: u32 = 200;
/// How long a written digest is kept for retries of its job.
pub const TEXT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Runs `digest` jobs. Cheap to clone.
#[derive(Clone)]
pub struct DigestHandler {
    /// Channels, Workspace folders, names.
    pub tenants: Arc<TenantRegistry>,
    /// The period's activity.
    pub activity: ActivityStore,
    /// The period's recorded decisions (`None`: digests leave decisions out).
    pub decisions: Option<DecisionStore>,
    /// Writes digests once per job (its `claude` is `None` without `ANTHROPIC_API_KEY`: only
    /// quiet weeks can be digested then); the model is `models.transform` of `defaults.json`.
    pub writer: ClaudeOnce,
    /// Folder with `digest.md` and `digest-{persona}.md`.
    pub prompts_dir: PathBuf,
    /// Posts the digest (`None`: Discord not configured; jobs fail with that reason).
    pub discord: Option<DiscordPoster>,
    /// Google clients of tenants with a Workspace.
    pub google: BTreeMap<TenantId, GoogleClient>,
}

/// What Claude (or the quiet-week rule) produced.
struct Written {
    text: String,
    /// `claude`, `retry` (kept from an earlier attempt) or `quiet` (no call).
    source: &'static str,
    input: Option<DigestInput>,
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn period_label(p: &DigestPayload) -> String {
    format!(
        "{} – {}",
        p.period_start.format("%b %d"),
        p.period_end.format("%b %d, %Y")
    )
}

/// The digest of a period nobody did anything in (no Claude call, no cost).
pub fn quiet_week_text(tenant_name: &str, p: &DigestPayload) -> String {
    format!(
        "A quiet week for {tenant_name}: no releases, pull requests, builds or Linear changes \
         were recorded between {} and {} (UTC).",
        p.period_start.format("%Y-%m-%d %H:%M"),
        p.period_end.format("%Y-%m-%d %H:%M")
    )
}

impl DigestHandler {
    /// Runs one job.
    #[tracing::instrument(name = "digest", skip_all, fields(tenant = %job.tenant, job = %job.id, attempt = job.attempt, persona))]
    pub async fn handle(&self, job: &Envelope) -> Result<JobOutcome, JobError> {
        let p: DigestPayload = job.payload_as()?;
        tracing::Span::current().record("persona", p.persona.as_str());
        if p.period_end <= p.period_start {
            return Err(JobError::terminal(format!(
                "the digest period is empty: it ends ({}) before it starts ({})",
                p.period_end, p.period_start
            )));
        }
        let tenant = self
            .tenants
            .get_tenant_context(job.tenant.as_str())
            .map_err(|e| JobError::terminal(e.to_string()))?;
        // Where it goes is checked first: an undeliverable digest is not worth paying for.
        let (poster, target) = self.target(&tenant, &p)?;
        let mut events = self
            .activity
            .between(&job.tenant, p.period_start, p.period_end, MAX_EVENTS)
            .await?;
        let mut total = if events.len() as u64 >= u64::from(MAX_EVENTS) {
            self.activity
                .count_between(&job.tenant, p.period_start, p.period_end)
                .await?
        } else {
            events.len() as u64
        };
        // What was decided: the period's recorded decisions, first in the log.
        if let Some(store) = &self.decisions {
            let decided = store
                .between(&job.tenant, p.period_start, p.period_end, MAX_DECISIONS)
                .await?;
            total += decided.len() as u64;
            events.extend(decided.iter().map(|d| input::decision_event(&d.decision)));
        }
        let written = if events.is_empty() {
            Written {
                text: quiet_week_text(&tenant.name, &p),
                source: "quiet",
                input: None,
            }
        } else {
            let input = build_input(
                &events,
                total,
                (p.period_start, p.period_end),
                INPUT_BUDGET_TOKENS,
            );
            self.write(job, &p, input).await?
        };
        let title = format!(
            "Weekly digest — {} — {}",
            title_case(p.persona.as_str()),
            period_label(&p)
        );
        let doc = self
            .save_document(&tenant, job, &p, &title, &written.text)
            .await?;
        let mut content = format!("# {title}\n\n{}\n", written.text.trim());
        if let Some(link) = &doc {
            content.push_str(&format!("\n[Google Doc]({link})\n"));
        }
        let posted = poster
            .post_job_output(&job.tenant, &job.id, &target, &content)
            .await?;
        Ok(JobOutcome {
            result: Some(json!({
                "persona": p.persona,
                "events": total,
                "included": written.input.as_ref().map(|i| i.included),
                "omitted": written.input.as_ref().map(|i| i.omitted),
                "written_by": written.source,
                "doc_link": doc,
                "message_ids": posted.message_ids,
                "newly_posted": posted.newly_posted,
            })),
        })
    }

    fn target<'a>(
        &'a self,
        tenant: &TenantContext,
        p: &DigestPayload,
    ) -> Result<(&'a DiscordPoster, PostTarget), JobError> {
        let poster = self.discord.as_ref().ok_or_else(|| {
            JobError::terminal(
                "Discord is not configured on this worker (DISCORD_BOT_TOKEN, DISCORD_APPLICATION_ID): the digest cannot be posted",
            )
        })?;
        if let Some(token) = &p.interaction_token {
            return Ok((
                poster,
                PostTarget::Interaction {
                    token: SecretString::from(token.clone()),
                },
            ));
        }
        let channel = tenant
            .config
            .discord
            .notification_channel_id
            .as_deref()
            .ok_or_else(|| {
                JobError::terminal(format!(
                    "tenant {} has no Discord channel for digests: set config.discord.notificationChannelId in its tenant file",
                    tenant.tenant_id
                ))
            })?;
        let channel_id = channel.parse::<u64>().map_err(|_| {
            JobError::terminal(format!(
                "notificationChannelId {channel:?} is not a snowflake"
            ))
        })?;
        Ok((poster, PostTarget::Channel { channel_id }))
    }

    async fn read_prompt(&self, name: &str) -> Result<String, JobError> {
        let path = self.prompts_dir.join(name);
        tokio::fs::read_to_string(&path).await.map_err(|e| {
            JobError::terminal(format!("cannot read the prompt {}: {e}", path.display()))
        })
    }

    /// Claude writes the digest (once per job: a retry reuses the kept text).
    async fn write(
        &self,
        job: &Envelope,
        p: &DigestPayload,
        input: DigestInput,
    ) -> Result<Written, JobError> {
        let log = &input.text;
        let written = self
            .writer
            .ask(job, "digest", ops::DIGEST, "the digest", TEXT_TTL, |model| async move {
                let system = self.read_prompt("digest.md").await?;
                let persona = self
                    .read_prompt(&format!("digest-{}.md", p.persona))
                    .await?;
                let ask = format!(
                    "{persona}\n\nThe week's activity log follows, between <activity> tags.\n\n<activity>\n{log}</activity>"
                );
                Ok(
                    MessagesRequest::new(&model, MAX_OUTPUT_TOKENS, vec![Message::user(ask)])
                        .system(SystemPrompt::Text(system)),
                )
            })
            .await?;
        Ok(Written {
            text: written.text,
            source: if written.reused { "retry" } else { "claude" },
            input: Some(input),
        })
    }

    /// One Google Doc per digest under `/tenants/{tenant}/Digests/{persona}/`, keyed by the job.
    async fn save_document(
        &self,
        tenant: &TenantContext,
        job: &Envelope,
        p: &DigestPayload,
        title: &str,
        text: &str,
    ) -> Result<Option<String>, JobError> {
        if tenant.config.google_workspace_id.is_none() {
            return Ok(None);
        }
        let (Some(google), Some(root)) = (
            self.google.get(&tenant.tenant_id),
            tenant.config.folder_ids.get("root"),
        ) else {
            return Ok(None);
        };
        let folder = google
            .ensure_folder_path(
                root,
                &[
                    "tenants",
                    tenant.tenant_id.as_str(),
                    "Digests",
                    p.persona.as_str(),
                ],
            )
            .await?;
        let key = doc_key(&job.id);
        let (doc, _) = google
            .save_document(&NewDocument {
                folder_id: &folder,
                title,
                key: &key,
                text,
            })
            .await?;
        Ok(Some(doc.url))
    }
}

/// The Google Doc key of a digest job.
pub fn doc_key(job: &JobId) -> String {
    format!("job:{job}:digest")
}

#[cfg(test)]
mod tests;
