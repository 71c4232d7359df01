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
use serde::Deserialize;

use onomancer_shared::activity::ActivitySource;
use onomancer_shared::decisions::{search_terms, Decision, DecisionStore, StoredDecision};
use onomancer_shared::llm::{Message, MessagesRequest, SystemPrompt};
use onomancer_shared::usage::ops;
use onomancer_shared::{Envelope, JobError, TenantId};

use super::claude_once::ClaudeOnce;

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
    /// Writes answers once per job (its `claude` is `None` without `ANTHROPIC_API_KEY`:
    /// matches are listed instead).
    pub writer: ClaudeOnce,
    /// Folder with `decisions.md`.
    pub prompts_dir: PathBuf,
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
        // Listed as they are (no Claude call): each source line and an excerpt.
        let listed = |excerpt_chars: usize| {
            found
                .iter()
                .zip(&sources)
                .map(|(d, line)| format!("{line}\n> {}", excerpt(&d.decision.text, excerpt_chars)))
                .collect::<Vec<_>>()
                .join("\n")
        };
        if search_terms(query).is_empty() {
            return Ok(format!("**Latest decisions**\n{}", listed(200)));
        }
        if self.writer.claude.is_none() {
            return Ok(format!(
                "**Decisions matching \"{query}\"** (no summary: this worker has no Claude key)\n{}",
                listed(300)
            ));
        }
        let answer = self.answer(job, query, &found).await?;
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
        query: &str,
        found: &[StoredDecision],
    ) -> Result<String, JobError> {
        let written = self
            .writer
            .ask(
                job,
                "decisions",
                ops::QUERY,
                "the answer",
                ANSWER_TTL,
                |model| async move {
                    let path = self.prompts_dir.join("decisions.md");
                    let system = tokio::fs::read_to_string(&path).await.map_err(|e| {
                        JobError::terminal(format!(
                            "cannot read the prompt {}: {e}",
                            path.display()
                        ))
                    })?;
                    Ok(MessagesRequest::new(
                        &model,
                        MAX_OUTPUT_TOKENS,
                        vec![Message::user(prompt_input(query, found))],
                    )
                    .system(SystemPrompt::Text(system)))
                },
            )
            .await?;
        Ok(written.text)
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
mod tests;
