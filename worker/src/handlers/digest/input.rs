//! The bounded text a digest is written from: the period's activity grouped by what matters
//! most (decisions recorded, releases, merged work, Linear projects and issues, then opened pull
//! requests, comments and build failures), one short line each, builds also counted per workflow. When the lines do
//! not fit the token budget the least important ones are left out, and a note says how many of
//! which kind, so the model never guesses what is missing.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use onomancer_shared::activity::{ActivityEvent, ActivitySource};
use onomancer_shared::decisions::Decision;

/// Longest title kept on a line (characters); longer ones end with `…`.
const TITLE_MAX_CHARS: usize = 200;

/// Sections in order of importance: when the budget is short, later sections lose lines first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Decisions,
    Releases,
    Merged,
    Projects,
    Issues,
    PullRequests,
    Comments,
    BuildFailures,
    Other,
}

impl Section {
    fn heading(self) -> &'static str {
        match self {
            Section::Decisions => "Decisions recorded",
            Section::Releases => "Releases published",
            Section::Merged => "Pull requests merged",
            Section::Projects => "Linear projects",
            Section::Issues => "Linear issues",
            Section::PullRequests => "Pull requests opened or closed without merging",
            Section::Comments => "Linear comments",
            Section::BuildFailures => "Failed builds",
            Section::Other => "Other activity",
        }
    }

    /// What an omitted line of this section is called in the note.
    fn noun(self) -> &'static str {
        match self {
            Section::Decisions => "decisions",
            Section::Releases => "releases",
            Section::Merged => "merged pull requests",
            Section::Projects => "project changes",
            Section::Issues => "issue changes",
            Section::PullRequests => "other pull request events",
            Section::Comments => "comments",
            Section::BuildFailures => "build failures",
            Section::Other => "other events",
        }
    }
}

fn is_build(e: &ActivityEvent) -> bool {
    e.source == ActivitySource::Github
        && ["workflow_run.", "check_suite.", "status."]
            .iter()
            .any(|p| e.kind.starts_with(p))
}

fn build_succeeded(e: &ActivityEvent) -> bool {
    matches!(
        e.details.get("conclusion").and_then(|c| c.as_str()),
        Some("success" | "neutral" | "skipped")
    )
}

/// The kind of the events [`decision_event`] makes.
pub const DECISION_KIND: &str = "decision.recorded";

/// A recorded decision as a line of the activity log (its own section, first).
pub fn decision_event(d: &Decision) -> ActivityEvent {
    ActivityEvent {
        tenant: d.tenant.clone(),
        source: d.source,
        kind: DECISION_KIND.to_owned(),
        title: format!("{}: {}", d.title, d.text),
        url: d.url.clone(),
        actor: d.author.clone(),
        occurred_at: d.decided_at,
        details: serde_json::Value::Null,
        dedupe_key: d.dedupe_key.clone(),
    }
}

fn section_of(e: &ActivityEvent) -> Option<Section> {
    let k = e.kind.as_str();
    if k == DECISION_KIND {
        return Some(Section::Decisions);
    }
    Some(match e.source {
        ActivitySource::Github if k.starts_with("release.") => Section::Releases,
        ActivitySource::Github if k == "pull_request.merged" => Section::Merged,
        ActivitySource::Github if k.starts_with("pull_request.") => Section::PullRequests,
        ActivitySource::Github if is_build(e) => {
            if build_succeeded(e) {
                return None; // counted in the build summary only
            }
            Section::BuildFailures
        }
        ActivitySource::Linear if k.starts_with("project.") => Section::Projects,
        ActivitySource::Linear if k.starts_with("issue.") => Section::Issues,
        ActivitySource::Linear if k.starts_with("comment.") => Section::Comments,
        _ => Section::Other,
    })
}

/// Longest decision kept on a line (title and text, characters).
const DECISION_MAX_CHARS: usize = 500;

fn clip(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

fn line(e: &ActivityEvent) -> String {
    let mut out = format!("- {} ", e.occurred_at.format("%a %b %d"));
    let verb = e.kind.rsplit('.').next().unwrap_or("");
    if e.kind == DECISION_KIND {
        let _ = write!(out, "[{}] ", e.source);
        out.push_str(&clip(&e.title, DECISION_MAX_CHARS));
        if let Some(actor) = &e.actor {
            let _ = write!(out, " by {actor}");
        }
        if let Some(url) = &e.url {
            let _ = write!(out, " <{url}>");
        }
        out.push('\n');
        return out;
    }
    match e.source {
        ActivitySource::Linear => {
            let _ = write!(out, "[{verb}] ");
        }
        ActivitySource::Github if e.kind.starts_with("pull_request.") && verb != "merged" => {
            let _ = write!(out, "[{verb}] ");
        }
        _ => {}
    }
    out.push_str(&clip(&e.title, TITLE_MAX_CHARS));
    if let Some(state) = e.details.get("state").and_then(|s| s.as_str()) {
        let _ = write!(out, " (now {state})");
    }
    if let Some(actor) = &e.actor {
        let _ = write!(out, " by {actor}");
    }
    if let Some(url) = &e.url {
        let _ = write!(out, " <{url}>");
    }
    out.push('\n');
    out
}

/// Runs and outcomes per (repository, workflow): a few lines however many builds ran.
fn build_summary(events: &[ActivityEvent]) -> String {
    let mut runs: BTreeMap<(String, String), BTreeMap<String, u32>> = BTreeMap::new();
    for e in events.iter().filter(|e| is_build(e)) {
        let field = |k: &str| {
            e.details
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("?")
                .to_owned()
        };
        *runs
            .entry((field("repo"), field("name")))
            .or_default()
            .entry(field("conclusion"))
            .or_default() += 1;
    }
    let mut out = String::new();
    for ((repo, name), outcomes) in runs {
        let total: u32 = outcomes.values().sum();
        let parts: Vec<String> = outcomes.iter().map(|(o, n)| format!("{n} {o}")).collect();
        let _ = writeln!(out, "- {repo} {name}: {total} runs ({})", parts.join(", "));
    }
    out
}

/// The digest's input text and what was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestInput {
    /// The activity log handed to Claude.
    pub text: String,
    /// Events shown as their own line.
    pub included: usize,
    /// Events left out to fit the budget (builds that succeeded are counted, not omitted).
    pub omitted: usize,
}

/// Rough token count (4 characters a token), used only for the budget.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// Builds the activity log of a period from its events (any order), within `budget_tokens`.
/// `total` is how many events the period has (more than `events.len()` when the read was capped).
pub fn build_input(
    events: &[ActivityEvent],
    total: u64,
    period: (DateTime<Utc>, DateTime<Utc>),
    budget_tokens: usize,
) -> DigestInput {
    let mut header = format!(
        "Period: {} to {} (UTC). {} events recorded.\n",
        period.0.format("%Y-%m-%d %H:%M"),
        period.1.format("%Y-%m-%d %H:%M"),
        total
    );
    let builds = build_summary(events);
    if !builds.is_empty() {
        header.push_str("\n## Builds (runs per workflow)\n");
        header.push_str(&builds);
    }
    // Most important first, oldest first within a section.
    let mut candidates: Vec<(Section, &ActivityEvent, String)> = events
        .iter()
        .filter_map(|e| section_of(e).map(|s| (s, e, line(e))))
        .collect();
    candidates.sort_by_key(|c| (c.0, c.1.occurred_at));
    // Headings and the omission note are small; keep room for them.
    let reserve = 8 * 12 + 80;
    let mut used = estimate_tokens(&header) + reserve;
    let mut kept: BTreeMap<Section, Vec<(&ActivityEvent, String)>> = BTreeMap::new();
    let mut dropped: BTreeMap<Section, usize> = BTreeMap::new();
    for (section, event, text) in candidates {
        let cost = estimate_tokens(&text);
        if used + cost <= budget_tokens {
            used += cost;
            kept.entry(section).or_default().push((event, text));
        } else {
            *dropped.entry(section).or_default() += 1;
        }
    }
    let mut text = header;
    let mut included = 0;
    for (section, lines) in &kept {
        let _ = write!(text, "\n## {}\n", section.heading());
        for (_, l) in lines {
            text.push_str(l);
        }
        included += lines.len();
    }
    let omitted: usize = dropped.values().sum();
    if omitted > 0 {
        let parts: Vec<String> = dropped
            .iter()
            .map(|(s, n)| format!("{n} {}", s.noun()))
            .collect();
        let _ = write!(
            text,
            "\nNote: {omitted} lower-priority entries were left out to fit: {}.\n",
            parts.join(", ")
        );
    }
    let read = events.len() as u64;
    if total > read {
        let _ = write!(
            text,
            "\nNote: only the first {read} of {total} events of the period were read.\n"
        );
    }
    DigestInput {
        text,
        included,
        omitted,
    }
}

#[cfg(test)]
mod tests;
