//! `/decisions query`: the tenant's recorded decisions best matching the query, answered by
//! Claude with numbered citations and a source list; and *Record decision*, the Discord message
//! command that records a message as a decision.
//!
//! Only matching decisions go to Claude (at most [`MAX_MATCHES`], each cut to
//! [`PROMPT_TEXT_CHARS`]), so an answer costs about the seed's decision search (~2,000 input and
//! ~500 output tokens). No match, or no Claude key, answers without a call: the matches are
//! listed as they are. The answer is kept in Redis under the job for a day, so a retry (Discord
//! failed after Claude answered) posts the same text without paying twice; its usage is recorded
//! once per job (operation `query`).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::Deserialize;

use onomancer_shared::activity::ActivitySource;
use onomancer_shared::decisions::{search_terms, Decision, DecisionStore, StoredDecision};
use onomancer_shared::llm::{
    ClaudeClient, ClaudeConfig, Message, MessagesRequest, Prices, SystemPrompt,
};
use onomancer_shared::queue::{Queue, RateLimiter};
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::TenantRegistry;
use onomancer_shared::usage::{ops, UsageRecord, UsageStore};
use onomancer_shared::{Envelope, JobError, KeySpace, RedisConn, TenantId};

use crate::transform::wiring::{models_and_prices, rate_limiter};

/// Most decisions one answer cites.
pub const MAX_MATCHES: usize = 8;
/// Longest decision text put in the prompt (characters).
pub const PROMPT_TEXT_CHARS: usize = 1_200;
/// Longest answer Claude may write (the seed expects ~500 output tokens).
pub const MAX_OUTPUT_TOKENS: u32 = 700;
/// How long an answer is kept for retries of its job.
pub const ANSWER_TTL: Duration = Duration::from_secs(24 * 3600);

/// Searches decisions and answers with Claude. Cheap to clone.
#[derive(Clone)]
pub struct DecisionSearch {
    /// The tenant's decisions.
    pub store: DecisionStore,
    /// Writes answers (`None`: no `ANTHROPIC_API_KEY`; matches are listed instead).
    pub claude: Option<ClaudeClient>,
    /// Shared per-tenant Claude rate limit (`None` in tests).
    pub limiter: Option<RateLimiter>,
    /// Usage records (operation `query`, one per job).
    pub usage: UsageStore,
    /// Model prices for the usage cost.
    pub prices: Prices,
    /// The model (`models.transform` in `defaults.json`).
    pub model: String,
    /// Folder with `decisions.md`.
    pub prompts_dir: PathBuf,
    /// Where answers wait for retries of their job.
    pub redis: RedisConn,
    /// Key namespace of `redis`.
    pub keys: KeySpace,
}

fn source_name(s: ActivitySource) -> &'static str {
    match s {
        ActivitySource::Github => "GitHub",
        ActivitySource::Linear => "Linear",
        ActivitySource::Discord => "Discord",
    }
}

fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", text[..i].trim_end()),
        None => text.to_owned(),
    }
}

/// `[n] 2026-11-02 · Linear · [title](<url>) — author`: one line of the source list.
fn source_line(n: usize, d: &Decision) -> String {
    let title = match &d.url {
        Some(u) => format!("[{}](<{u}>)", d.title.replace(['[', ']'], "")),
        None => d.title.clone(),
    };
    let by = d
        .author
        .as_deref()
        .map(|a| format!(" — {a}"))
        .unwrap_or_default();
    format!(
        "[{n}] {} · {} · {title}{by}",
        d.decided_at.format("%Y-%m-%d"),
        source_name(d.source)
    )
}

/// The numbered decisions as Claude reads them.
pub fn prompt_input(query: &str, found: &[StoredDecision]) -> String {
    let mut s = format!("Question: {query}\n\n<decisions>\n");
    for (i, d) in found.iter().enumerate() {
        let d = &d.decision;
        s.push_str(&format!(
            "[{}] {} · {} · {}{}\n{}\n\n",
            i + 1,
            d.decided_at.format("%Y-%m-%d"),
            source_name(d.source),
            d.title,
            d.author
                .as_deref()
                .map(|a| format!(" (by {a})"))
                .unwrap_or_default(),
            excerpt(&d.text, PROMPT_TEXT_CHARS)
        ));
    }
    s.push_str("</decisions>");
    s
}

/// Where decisions come from, for replies that found none.
pub const HOW_TO_RECORD: &str = "Decisions are recorded from Linear comments with a line starting \
`Decision:`, Linear issues and merged GitHub pull requests labelled `decision` (or with such a \
line), and Discord messages recorded with *Apps → Record decision*.";

impl DecisionSearch {
    /// Decision search on `db` with the process's settings: Claude when `ANTHROPIC_API_KEY` is
    /// set, the shared rate limiter, the transform model and its price.
    pub fn from_settings(
        settings: &Settings,
        tenants: &TenantRegistry,
        queue: &Queue,
        usage: &UsageStore,
    ) -> anyhow::Result<Self> {
        let db = usage.database().clone();
        let (models, prices) = models_and_prices(tenants.defaults());
        let claude = match settings.anthropic_api_key {
            Some(_) => Some(ClaudeClient::new(ClaudeConfig::from_settings(settings)?)?),
            None => None,
        };
        Ok(Self {
            store: DecisionStore::new(db),
            claude,
            limiter: Some(rate_limiter(queue, tenants)),
            usage: usage.clone(),
            prices,
            model: models.transform,
            prompts_dir: settings.config_dir.join("prompts"),
            redis: queue.conn(),
            keys: queue.keys().clone(),
        })
    }

    fn answer_key(&self, job: &Envelope) -> String {
        self.keys
            .data(&job.tenant, format_args!("decisions:answer:{}", job.id))
    }

    /// The reply to `/decisions query` for `job`'s tenant.
    pub async fn reply(&self, job: &Envelope, query: &str) -> Result<String, JobError> {
        let query = query.trim();
        let found = self.store.search(&job.tenant, query, MAX_MATCHES).await?;
        if found.is_empty() {
            return Ok(if query.is_empty() {
                format!("No decision has been recorded for this server yet. {HOW_TO_RECORD}")
            } else {
                format!("No recorded decision matches \"{query}\". {HOW_TO_RECORD}")
            });
        }
        let sources: Vec<String> = found
            .iter()
            .enumerate()
            .map(|(i, d)| source_line(i + 1, &d.decision))
            .collect();
        if search_terms(query).is_empty() {
            return Ok(format!(
                "**Latest decisions**\n{}",
                found
                    .iter()
                    .enumerate()
                    .map(|(i, d)| format!("{}\n> {}", sources[i], excerpt(&d.decision.text, 200)))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
        let Some(claude) = &self.claude else {
            return Ok(format!(
                "**Decisions matching \"{query}\"** (no summary: this worker has no Claude key)\n{}",
                found
                    .iter()
                    .enumerate()
                    .map(|(i, d)| format!("{}\n> {}", sources[i], excerpt(&d.decision.text, 300)))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        };
        let answer = self.answer(job, claude, query, &found).await?;
        Ok(format!(
            "**Decisions on \"{query}\"**\n{}\n\n**Sources**\n{}",
            answer.trim(),
            sources.join("\n")
        ))
    }

    /// Claude's answer (once per job: a retry reuses the kept text).
    async fn answer(
        &self,
        job: &Envelope,
        claude: &ClaudeClient,
        query: &str,
        found: &[StoredDecision],
    ) -> Result<String, JobError> {
        let key = self.answer_key(job);
        let mut conn = self.redis.clone();
        let kept: Option<String> = conn
            .get(&key)
            .await
            .map_err(|e| JobError::retryable(format!("Redis: {e}")))?;
        if let Some(text) = kept {
            return Ok(text);
        }
        let path = self.prompts_dir.join("decisions.md");
        let system = tokio::fs::read_to_string(&path).await.map_err(|e| {
            JobError::terminal(format!("cannot read the prompt {}: {e}", path.display()))
        })?;
        if let Some(limiter) = &self.limiter {
            limiter.acquire(&job.tenant, "claude").await?;
        }
        let request = MessagesRequest::new(
            &self.model,
            MAX_OUTPUT_TOKENS,
            vec![Message::user(prompt_input(query, found))],
        )
        .system(SystemPrompt::Text(system));
        let message = claude.messages(&request).await?.message;
        let record = UsageRecord::claude_call(
            job.tenant.clone(),
            ops::QUERY,
            &message.model,
            message.usage.tokens(),
            &self.prices,
            UsageRecord::job_key(&job.id, "decisions"),
        )
        .job(job.id.clone());
        if let Err(e) = self.usage.record(&record).await {
            // The answer is paid for; failing now would pay again on the retry.
            tracing::error!(error = %e, "could not record usage of a decision search");
        }
        let text = message.text();
        let _: () = conn
            .set_ex(&key, &text, ANSWER_TTL.as_secs())
            .await
            .map_err(|e| JobError::retryable(format!("Redis: {e}")))?;
        Ok(text)
    }
}

/// The message a *Record decision* command targets (the gateway's `options.message`).
#[derive(Debug, Deserialize)]
pub struct TargetMessage {
    /// Message id.
    pub id: String,
    /// Its channel.
    pub channel_id: String,
    /// Its text.
    #[serde(default)]
    pub content: String,
    /// Who wrote it (display name or user name).
    pub author: Option<String>,
    /// When it was sent (RFC 3339).
    pub timestamp: Option<String>,
}

/// The decision a *Record decision* command records: the message's text, linked to the message.
pub fn message_decision(
    tenant: &TenantId,
    guild_id: &str,
    m: &TargetMessage,
    now: DateTime<Utc>,
) -> Option<Decision> {
    let text = m.content.trim();
    if text.is_empty() {
        return None;
    }
    let first = text.lines().next().unwrap_or(text);
    Some(
        Decision {
            tenant: tenant.clone(),
            source: ActivitySource::Discord,
            title: excerpt(first, 100),
            text: text.to_owned(),
            url: Some(format!(
                "https://discord.com/channels/{guild_id}/{}/{}",
                m.channel_id, m.id
            )),
            author: m.author.clone(),
            decided_at: m
                .timestamp
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map_or(now, |t| t.with_timezone(&Utc)),
            dedupe_key: format!("discord:message:{}", m.id),
        }
        .bounded(),
    )
}

#[cfg(test)]
#[path = "decisions_tests.rs"]
mod tests;
