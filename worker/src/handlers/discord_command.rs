//! `discord.command` jobs: the worker half of a slash command the gateway deferred. Each command
//! ends by editing the deferred reply (`@original`, then follow-ups for long answers), once per
//! job however often it runs.
//!
//! - `/usage`: tokens, calls, cost and prompt-cache hit rate this month, and the quota left.
//! - `/status [job]`: one job's state, or the server's queue depth per lane.
//! - `/decisions query`: the recorded decisions matching the query, answered with citations
//!   (`decisions.rs`).
//! - *Record decision* (`record-decision`, a message command): records the target message as a
//!   decision, once per message.
//! - `/digest [persona]`: enqueues digest jobs (posted to the notification channel).
//! - `/transform`: delegated to the transform handler with the same job id, so the deferred reply
//!   is edited with the results; a terminal failure is shown to the user and its transformation
//!   is given back to the quota.
//!
//! The payload is the gateway's `DiscordCommandJob` (`onomancer_shared::payloads`).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use onomancer_shared::admission::{Admission, TransformQuota};
use onomancer_shared::integrations::discord::{DiscordPoster, PostTarget};
use onomancer_shared::payloads::DigestPayload;
use onomancer_shared::queue::{Queue, GROUP};
use onomancer_shared::tenant::{TenantContext, TenantRegistry};
use onomancer_shared::usage::{format_dollars, UsageStore};
use onomancer_shared::{Envelope, JobError, JobId, JobOutcome, Lane, NewJob, Persona};
use secrecy::SecretString;
use serde_json::json;

use super::decisions::{message_decision, DecisionSearch, TargetMessage};
use super::transform::TransformHandler;
use onomancer_shared::payloads::DiscordCommandJob as CommandJob;
pub use onomancer_shared::payloads::RECORD_DECISION;

const NO_DECISION_STORE: &str =
    "Decisions are not available on this worker: it has no database (DATABASE_URL).";

/// Runs Discord command jobs. Cheap to clone.
#[derive(Clone)]
pub struct DiscordCommandHandler {
    /// Tenant settings (quotas, personas).
    pub tenants: Arc<TenantRegistry>,
    /// Job status and depth for `/status`, enqueueing for `/digest`.
    pub queue: Queue,
    /// Quota counters for `/usage`, refunds for failed transforms.
    pub admission: Admission,
    /// Usage records for `/usage` (`None`: no database; the reply says so).
    pub usage: Option<UsageStore>,
    /// Edits the deferred reply.
    pub discord: DiscordPoster,
    /// Runs `/transform` (`None`: this worker cannot transform; the reply says so).
    pub transform: Option<TransformHandler>,
    /// Answers `/decisions` and records *Record decision* (`None`: no database here; the reply
    /// says so).
    pub decisions: Option<DecisionSearch>,
}

fn month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now)
}

fn limit_text(used: u64, limit: Option<u64>, resets_at: DateTime<Utc>) -> String {
    match limit {
        Some(l) => format!(
            "{used}/{l} used, {} left (resets {})",
            l.saturating_sub(used),
            resets_at.format("%Y-%m-%d %H:%M UTC")
        ),
        None => format!("{used} used (unlimited)"),
    }
}

impl DiscordCommandHandler {
    /// Runs one job.
    #[tracing::instrument(name = "discord_command", skip_all, fields(tenant = %job.tenant, job = %job.id, attempt = job.attempt, command))]
    pub async fn handle(&self, job: &Envelope) -> Result<JobOutcome, JobError> {
        let cmd: CommandJob = job.payload_as()?;
        tracing::Span::current().record("command", cmd.command.as_str());
        let tenant = self
            .tenants
            .get_tenant_context(job.tenant.as_str())
            .map_err(|e| JobError::terminal(e.to_string()))?;
        let reply = match cmd.command.as_str() {
            "transform" => return self.transform(job, &tenant, &cmd).await,
            "usage" => self.usage_text(&tenant).await?,
            "status" => self.status_text(&tenant, cmd.option("job")).await?,
            "decisions" => match &self.decisions {
                Some(d) => d.reply(job, cmd.option("query").unwrap_or("")).await?,
                None => NO_DECISION_STORE.to_owned(),
            },
            RECORD_DECISION => self.record_decision(job, &cmd).await?,
            "digest" => self.enqueue_digest(&tenant, &cmd).await?,
            other => format!("`/{other}` is not a command this worker knows."),
        };
        self.reply(job, &cmd, &reply).await?;
        Ok(JobOutcome {
            result: Some(json!({"command": cmd.command, "replied": true})),
        })
    }

    async fn reply(&self, job: &Envelope, cmd: &CommandJob, content: &str) -> Result<(), JobError> {
        let target = PostTarget::Interaction {
            token: SecretString::from(cmd.token.clone()),
        };
        self.discord
            .post_job_output(&job.tenant, &job.id, &target, content)
            .await?;
        Ok(())
    }

    async fn usage_text(&self, tenant: &TenantContext) -> Result<String, JobError> {
        let now = Utc::now();
        let quota = TransformQuota {
            per_day: tenant.quotas.transformations_per_day.map(u64::from),
            per_month: tenant.quotas.transformations_per_month.map(u64::from),
        };
        let q = self
            .admission
            .quota_usage(&tenant.tenant_id, quota, now)
            .await
            .map_err(|e| JobError::retryable(e.to_string()))?;
        let from = month_start(now);
        let mut text = format!(
            "**Usage for {}** since {}\n",
            tenant.name,
            from.format("%Y-%m-%d")
        );
        match &self.usage {
            Some(store) => {
                let s = store
                    .summary(&tenant.tenant_id, from, now)
                    .await
                    .map_err(|e| JobError::retryable(e.to_string()))?;
                let t = s.tokens;
                let total_input = t.total_input();
                let hit = if total_input == 0 {
                    "n/a".to_owned()
                } else {
                    format!("{:.0}%", 100.0 * t.cache_read as f64 / total_input as f64)
                };
                text.push_str(&format!(
                    "Transforms: {} · API calls: {}\nTokens: {} input, {} output, {} cache writes, {} cache reads (prompt-cache hit rate {hit})\nEstimated cost: ${}\n",
                    s.transforms, s.api_calls, t.input, t.output, t.cache_creation, t.cache_read,
                    format_dollars(s.estimated_cost_micros)
                ));
            }
            None => text.push_str(
                "Token and cost figures are unavailable: this worker has no usage database.\n",
            ),
        }
        text.push_str(&format!(
            "Quota ({} tier): today {}; this month {}",
            tenant.tier,
            limit_text(q.day.used, q.day.limit, q.day.resets_at),
            limit_text(q.month.used, q.month.limit, q.month.resets_at)
        ));
        Ok(text)
    }

    async fn status_text(
        &self,
        tenant: &TenantContext,
        job: Option<&str>,
    ) -> Result<String, JobError> {
        let unavailable =
            |e: onomancer_shared::queue::QueueError| JobError::retryable(e.to_string());
        if let Some(raw) = job {
            let Ok(id) = JobId::parse(raw) else {
                return Ok(format!("`{raw}` is not a job id."));
            };
            return Ok(match self.queue.status(&tenant.tenant_id, &id).await.map_err(unavailable)? {
                None => format!("No job `{id}` for this server (unknown, or older than the status retention)."),
                Some(s) => {
                    let mut t = format!(
                        "Job `{}` ({}): **{}**, attempt {}",
                        s.id,
                        s.kind,
                        serde_json::to_value(s.state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                        s.attempt
                    );
                    if let Some(e) = s.error {
                        t.push_str(&format!("\nLast error: {e}"));
                    }
                    t
                }
            });
        }
        let mut conn = self.queue.conn();
        let mut lines = vec![format!("**Queue for {}**", tenant.name)];
        for lane in Lane::ALL {
            let stream = self.queue.keys().stream(&tenant.tenant_id, lane);
            let groups: Vec<BTreeMap<String, redis::Value>> = match redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(&stream)
                .query_async(&mut conn)
                .await
            {
                Ok(g) => g,
                Err(e) if e.code().is_some() => Vec::new(),
                Err(e) => return Err(JobError::retryable(e.to_string())),
            };
            let field = |name: &str| {
                groups
                    .iter()
                    .find(|g| {
                        g.get("name")
                            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
                            .as_deref()
                            == Some(GROUP)
                    })
                    .and_then(|g| g.get(name))
                    .and_then(|v| redis::from_redis_value_ref::<u64>(v).ok())
                    .unwrap_or(0)
            };
            lines.push(format!(
                "{}: {} waiting, {} running",
                lane,
                field("lag"),
                field("pending")
            ));
        }
        Ok(lines.join("\n"))
    }

    async fn record_decision(&self, job: &Envelope, cmd: &CommandJob) -> Result<String, JobError> {
        let Some(search) = &self.decisions else {
            return Ok(NO_DECISION_STORE.to_owned());
        };
        let message: TargetMessage = match cmd.options.get("message") {
            Some(m) => serde_json::from_value(m.clone()).map_err(|e| {
                JobError::terminal(format!(
                    "record-decision: the target message does not decode: {e}"
                ))
            })?,
            None => return Err(JobError::terminal("record-decision: no target message")),
        };
        let Some(decision) = message_decision(&job.tenant, &cmd.guild_id, &message, Utc::now())
        else {
            return Ok("That message has no text to record as a decision.".to_owned());
        };
        search.store.record(&decision).await?;
        let quote: String = decision
            .text
            .lines()
            .take(3)
            .map(|l| format!("> {l}\n"))
            .collect();
        Ok(format!(
            "📌 Recorded as a decision{}:\n{quote}Find it with `/decisions`.",
            decision
                .author
                .as_deref()
                .map(|a| format!(" (by {a})"))
                .unwrap_or_default()
        ))
    }

    async fn enqueue_digest(
        &self,
        tenant: &TenantContext,
        cmd: &CommandJob,
    ) -> Result<String, JobError> {
        let personas = match cmd.option("persona") {
            Some(p) => vec![Persona::parse(p).map_err(|e| JobError::terminal(e.to_string()))?],
            None => tenant.config.default_personas.clone(),
        };
        let now = Utc::now();
        let jobs: Vec<NewJob> = personas
            .iter()
            .map(|p| {
                let payload = DigestPayload {
                    persona: p.clone(),
                    period_start: now - chrono::Duration::days(7),
                    period_end: now,
                    interaction_token: None,
                };
                NewJob::new(tenant.tenant_id.clone(), &payload)
                    .lane(Lane::Default)
                    .idempotency_key(format!("discord:{}:digest:{p}", cmd.interaction_id))
            })
            .collect();
        self.queue
            .enqueue_many(jobs)
            .await
            .map_err(|e| JobError::retryable(e.to_string()))?;
        let names: Vec<&str> = personas.iter().map(Persona::as_str).collect();
        let where_to = match &tenant.config.discord.notification_channel_id {
            Some(c) => format!(" and will be posted in <#{c}>"),
            None => String::new(),
        };
        Ok(format!(
            "Digest of the last 7 days queued for {}{where_to}.",
            names.join(", ")
        ))
    }

    async fn transform(
        &self,
        job: &Envelope,
        tenant: &TenantContext,
        cmd: &CommandJob,
    ) -> Result<JobOutcome, JobError> {
        let (Some(handler), Some(payload)) = (&self.transform, &cmd.transform) else {
            let why = if cmd.transform.is_none() {
                "The command carried no document to transform."
            } else {
                "Transforms are not available on this deployment (no Claude client is configured)."
            };
            self.refund(job, tenant, cmd).await;
            self.reply(job, cmd, why).await?;
            return Err(JobError::terminal(why));
        };
        match handler.handle(&job.retyped(payload)).await {
            Err(JobError::Terminal { message }) => {
                self.refund(job, tenant, cmd).await;
                self.reply(job, cmd, &format!("The transform failed: {message}"))
                    .await?;
                Err(JobError::Terminal { message })
            }
            other => other,
        }
    }

    /// Gives back the transformation the gateway counted for a transform that will never run.
    async fn refund(&self, job: &Envelope, tenant: &TenantContext, cmd: &CommandJob) {
        if !cmd.quota_consumed {
            return;
        }
        let at = Utc
            .timestamp_millis_opt(job.created_ms)
            .single()
            .unwrap_or_else(Utc::now);
        if let Err(e) = self
            .admission
            .refund_transforms(&tenant.tenant_id, 1, at)
            .await
        {
            tracing::warn!(error = %e, "could not refund the transformation of a failed /transform");
        }
    }
}

#[cfg(test)]
mod tests;
