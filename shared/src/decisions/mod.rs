//! Decisions: what a team settled, recorded from the places it settles things, and searched by
//! `/decisions`.
//!
//! A decision is recorded when someone marks it, never guessed from ordinary chatter:
//! - a Linear comment with a line starting `Decision:` or `Decided:` (or `We decided ...`);
//! - a Linear issue or project labelled `decision`;
//! - a merged GitHub pull request labelled `decision` or carrying such a line in its body;
//! - a Discord message recorded with the message command *Apps → Record decision*.
//!
//! Every decision has a dedupe key naming its origin (`linear:comment:<id>`,
//! `github:pr:<repo>#<n>`, `discord:message:<id>`), unique per tenant: a job that runs twice
//! stores once, and an edited comment updates its decision. Every query is filtered by tenant.

mod store;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

use crate::activity::ActivitySource;
use crate::ids::TenantId;
use crate::job::JobError;

pub use store::DecisionStore;

/// Longest decision text kept (characters); longer marked paragraphs are cut.
pub const MAX_TEXT_CHARS: usize = 2_000;
/// Longest title kept (characters).
pub const MAX_TITLE_CHARS: usize = 200;
/// The label that makes a whole Linear issue or GitHub pull request a decision.
pub const DECISION_LABEL: &str = "decision";

/// One decision, as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Whose decision it is: every query filters on it.
    pub tenant: TenantId,
    /// Where it was made.
    pub source: ActivitySource,
    /// One line a person recognises (`ENG-12 Pick the queue`, `octo-org/app #42 ...`).
    pub title: String,
    /// What was decided (the marked lines, or the labelled item's description).
    pub text: String,
    /// Link to where it was decided, for citations.
    pub url: Option<String>,
    /// Who recorded or wrote it, when known.
    pub author: Option<String>,
    /// When it was decided (stored to the millisecond).
    pub decided_at: DateTime<Utc>,
    /// Unique per tenant: names the origin (`linear:comment:<id>`).
    pub dedupe_key: String,
}

impl Decision {
    /// `title` and `text` cut to the stored lengths (on character boundaries).
    pub fn bounded(mut self) -> Self {
        self.title = cut(self.title.trim(), MAX_TITLE_CHARS);
        self.text = cut(self.text.trim(), MAX_TEXT_CHARS);
        self
    }
}

/// A stored decision with its row id (the number `/decisions` cites).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredDecision {
    /// Row id.
    pub id: i64,
    /// The decision.
    pub decision: Decision,
}

/// Why the decision store failed.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// The database failed.
    #[error("decision store: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A stored row could not be read back.
    #[error("decision store: row {id} is not readable: {message}")]
    Corrupt {
        /// The row id.
        id: i64,
        /// What is wrong with it.
        message: String,
    },
}

impl From<DecisionError> for JobError {
    /// A database failure may pass (retry); an unreadable row will not (terminal).
    fn from(e: DecisionError) -> Self {
        match e {
            DecisionError::Sqlx(_) => JobError::retryable(e.to_string()),
            DecisionError::Corrupt { .. } => JobError::terminal(e.to_string()),
        }
    }
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", s[..i].trim_end()),
        None => s.to_owned(),
    }
}

/// Markers that open a decision line, lower case, matched at the start of a line after list,
/// quote, heading and bold markup.
const MARKERS: &[&str] = &[
    "decision:",
    "decided:",
    "we decided",
    "we've decided",
    "we have decided",
];

/// The line without leading markdown (`- `, `* `, `> `, `#`, `**`, `__`) and whitespace.
fn strip_markup(line: &str) -> &str {
    let mut s = line.trim_start();
    loop {
        let next = s
            .strip_prefix("**")
            .or_else(|| s.strip_prefix("__"))
            .or_else(|| s.strip_prefix(['-', '*', '>', '#', '+']))
            .map(str::trim_start);
        match next {
            Some(n) => s = n,
            None => return s,
        }
    }
}

fn is_marked(line: &str) -> bool {
    let s = strip_markup(line);
    MARKERS.iter().any(|m| {
        s.get(..m.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(m))
    })
}

/// The decision paragraphs of `text`: each marked line and the lines after it up to a blank
/// line or the next marked line, joined by blank lines. `None` when nothing is marked.
pub fn marked_decisions(text: &str) -> Option<String> {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        if is_marked(line) {
            if let Some(p) = current.take() {
                paragraphs.push(p.join("\n"));
            }
            current = Some(vec![line.trim()]);
        } else if line.trim().is_empty() {
            if let Some(p) = current.take() {
                paragraphs.push(p.join("\n"));
            }
        } else if let Some(p) = current.as_mut() {
            p.push(line.trim());
        }
    }
    if let Some(p) = current {
        paragraphs.push(p.join("\n"));
    }
    (!paragraphs.is_empty()).then(|| paragraphs.join("\n\n"))
}

/// Whether `labels` holds the decision label (any case).
pub fn has_decision_label<S: AsRef<str>>(labels: &[S]) -> bool {
    labels
        .iter()
        .any(|l| l.as_ref().trim().eq_ignore_ascii_case(DECISION_LABEL))
}

/// Words too common to search on: function words, and the words every decision or question
/// about decisions holds ("decided", "decision"), which would match everything.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "after",
    "agreed",
    "all",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "before",
    "but",
    "by",
    "can",
    "chose",
    "could",
    "decide",
    "decided",
    "decision",
    "decisions",
    "did",
    "do",
    "does",
    "for",
    "from",
    "had",
    "has",
    "have",
    "how",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "no",
    "not",
    "of",
    "on",
    "or",
    "our",
    "should",
    "so",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "this",
    "those",
    "to",
    "us",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "who",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
];

/// Most terms one search uses (the rest of a long query is ignored).
pub const MAX_TERMS: usize = 8;

/// The search terms of `query`: lower-cased words of two or more characters (letters, digits,
/// `-`, `_`, `.`, `#`), without stopwords and repeats, at most [`MAX_TERMS`].
pub fn search_terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in query.split(|c: char| !(c.is_alphanumeric() || "-_.#".contains(c))) {
        let w = word
            .trim_matches(|c: char| ".-#_".contains(c))
            .to_lowercase();
        if w.chars().count() < 2 || STOPWORDS.contains(&w.as_str()) || terms.contains(&w) {
            continue;
        }
        terms.push(w);
        if terms.len() == MAX_TERMS {
            break;
        }
    }
    terms
}

/// How well `d` matches `terms`: each term found in the title counts 3, in the text 1 per
/// occurrence (up to 3), and a decision holding every term gets a bonus of 2 per term.
pub fn score(d: &Decision, terms: &[String]) -> u32 {
    let title = d.title.to_lowercase();
    let text = d.text.to_lowercase();
    let mut total = 0;
    let mut found = 0;
    for t in terms {
        let in_title = title.contains(t.as_str());
        let in_text = text.matches(t.as_str()).count().min(3) as u32;
        if in_title || in_text > 0 {
            found += 1;
        }
        total += if in_title { 3 } else { 0 } + in_text;
    }
    if found == terms.len() && !terms.is_empty() {
        total += 2 * found as u32;
    }
    total
}
