//! Documents over the input budget are summarized first, section by section. Sections are
//! split at Markdown headings (else at paragraphs), packed up to a size, and each section's
//! summary is cached by the section's own content hash, so editing one section re-summarizes
//! only that section. Every section runs to completion even when another fails, so each paid
//! summary is stored (usage row and cache) and a retry summarizes only what is missing.

use futures::stream::{self, StreamExt};

use onomancer_shared::cache::{
    content_hash, template_fingerprint, CacheKey, DataType, Expectation,
};
use onomancer_shared::{JobError, SharedText};

use super::engine::{CallKind, RunContext, TransformEngine};

/// Estimated tokens of a text: one per four characters (the usual English ratio), rounded up.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Splits `text` into sections of at most about `max_chars`: at Markdown headings when there
/// are any, else at blank lines; a single paragraph longer than `max_chars` is cut at line
/// (then character) boundaries.
pub fn split_sections(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(200);
    let has_headings = text.lines().any(is_heading);
    // Units: heading-led blocks, or paragraphs.
    let mut units: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        let boundary = if has_headings {
            is_heading(line)
        } else {
            line.trim().is_empty()
        };
        if boundary && !current.trim().is_empty() {
            units.push(std::mem::take(&mut current));
        }
        current.push_str(line);
    }
    if !current.trim().is_empty() {
        units.push(current);
    }
    // Cut oversize units, then pack small ones together (in order) up to the limit.
    let mut pieces = Vec::new();
    for u in units {
        if u.chars().count() <= max_chars {
            pieces.push(u);
            continue;
        }
        let mut part = String::new();
        for line in u.split_inclusive('\n') {
            if part.chars().count() + line.chars().count() > max_chars && !part.is_empty() {
                pieces.push(std::mem::take(&mut part));
            }
            if line.chars().count() > max_chars {
                let chars: Vec<char> = line.chars().collect();
                for chunk in chars.chunks(max_chars) {
                    pieces.push(chunk.iter().collect());
                }
            } else {
                part.push_str(line);
            }
        }
        if !part.is_empty() {
            pieces.push(part);
        }
    }
    if has_headings {
        // Heading-led sections stay separate so an edit touches one summary only.
        return pieces;
    }
    let mut packed: Vec<String> = Vec::new();
    for p in pieces {
        match packed.last_mut() {
            Some(last) if last.chars().count() + p.chars().count() <= max_chars => {
                last.push_str(&p)
            }
            _ => packed.push(p),
        }
    }
    packed
}

fn is_heading(line: &str) -> bool {
    let t = line.trim_start();
    let hashes = t.bytes().take_while(|b| *b == b'#').count();
    (1..=6).contains(&hashes) && t[hashes..].starts_with(' ')
}

impl TransformEngine {
    /// The document the personas see: the text itself, or (over budget) its section summaries.
    /// Returns the text and whether it was summarized.
    pub(crate) async fn document_for_personas(
        &self,
        ctx: &RunContext<'_>,
        text: &SharedText,
    ) -> Result<(SharedText, bool), JobError> {
        let settings = self.settings()?;
        let whole = text.to_cow();
        if estimate_tokens(&whole) <= settings.input_budget_tokens {
            return Ok((text.clone(), false));
        }
        let prompt = self
            .prompts
            .summarize()
            .map_err(|e| JobError::terminal(e.to_string()))?;
        let model = self.models.summarize.clone();
        let expect = Expectation::new(
            model.clone(),
            template_fingerprint(&prompt, &model, settings.summary_max_tokens),
        );
        let prompt = SharedText::from(prompt);
        let sections = split_sections(&whole, settings.section_max_chars);
        tracing::info!(
            sections = sections.len(),
            "document over the input budget; summarizing sections"
        );
        let results: Vec<Result<String, JobError>> =
            stream::iter(sections.into_iter().map(|section| {
                let expect = expect.clone();
                let prompt = prompt.clone();
                let model = model.clone();
                async move {
                    let hash = content_hash(&section);
                    let section = SharedText::from(section);
                    let key =
                        CacheKey::new(ctx.tenant.clone(), DataType::Summary, hash.to_string());
                    let lookup = self
                        .cache
                        .get_or_compute(&key, &expect, || {
                            self.call_claude(
                                ctx,
                                CallKind::Summary { section: &hash },
                                &model,
                                settings.summary_max_tokens,
                                &prompt,
                                &section,
                                SharedText::from_static("Condense this section."),
                            )
                        })
                        .await?;
                    Ok::<_, JobError>(lookup.entry.value.clone())
                }
            }))
            .buffered(settings.summary_concurrency.max(1))
            .collect()
            .await;
        // Every summary is stored by now; the job fails with one error for all that failed.
        let (summaries, errors): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
        if let Some(e) = JobError::combine_all(errors.into_iter().filter_map(Result::err)) {
            return Err(e);
        }
        let summaries: Vec<String> = summaries.into_iter().filter_map(Result::ok).collect();
        Ok((SharedText::from(summaries.join("\n\n")), true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_headings_and_keeps_them() {
        let doc = "# Title\nintro\n\n## A\nalpha\n\n## B\nbeta\n";
        let s = split_sections(doc, 10_000);
        assert_eq!(
            s,
            vec!["# Title\nintro\n\n", "## A\nalpha\n\n", "## B\nbeta\n"]
        );
    }

    #[test]
    fn packs_paragraphs_and_cuts_long_ones() {
        let para = "word ".repeat(100); // 500 chars
        let doc = format!("{para}\n\n{para}\n\n{para}\n");
        let s = split_sections(&doc, 1200);
        assert_eq!(s.len(), 2, "{s:?}");
        let long = "x".repeat(1000);
        let s = split_sections(&long, 300);
        assert!(s.iter().all(|p| p.chars().count() <= 300));
        assert_eq!(s.concat(), long);
        assert!(!is_heading("#hashtag"));
    }
}
