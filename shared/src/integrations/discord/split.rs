//! Splits long text into Discord-sized messages: on paragraph, then line, then word boundaries,
//! never inside a UTF-8 character, and keeping code fences balanced (a fence cut in two is closed
//! at the end of one part and reopened, with its language, at the start of the next).
//!
//! Lengths are counted in UTF-16 code units, which is never less than Discord's own count (code
//! points), so a part that fits here fits there.

/// Discord's limit for a message's `content`.
pub const CONTENT_LIMIT: usize = 2000;
/// Discord's limit for an embed's `description`.
pub const EMBED_DESCRIPTION_LIMIT: usize = 4096;

const FENCE_CLOSE: &str = "\n```";

fn units(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Where a part may end, best kinds first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum CutKind {
    /// Before a blank line, outside a code fence.
    Paragraph,
    /// At a line end, outside a code fence.
    Line,
    /// At a line end inside a code fence (the fence is closed and reopened).
    FencedLine,
    /// At a space inside a line.
    Word,
}

#[derive(Clone, Debug)]
struct Cut {
    /// Byte offset in the remaining text where the part ends.
    at: usize,
    kind: CutKind,
    /// The opening line of the fence open at `at`, if any.
    open_fence: Option<String>,
}

/// Splits `text` into parts of at most `limit` UTF-16 units each (`limit` must be at least 16).
/// Text that fits is returned as one part; empty text gives no parts.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    assert!(limit >= 16, "a message limit below 16 cannot hold a fence");
    let mut parts = Vec::new();
    let mut rest = text.trim_end().trim_start_matches('\n');
    let mut carried_fence: Option<String> = None;
    while !rest.trim().is_empty() {
        let prefix = carried_fence
            .as_ref()
            .map(|f| format!("{f}\n"))
            .unwrap_or_default();
        let budget = limit - units(&prefix);
        if units(rest) <= budget {
            parts.push(format!("{prefix}{rest}"));
            break;
        }
        let cut = choose_cut(rest, budget, carried_fence.clone());
        let body = rest[..cut.at].trim_end();
        let mut part = format!("{prefix}{body}");
        if cut.open_fence.is_some() {
            part.push_str(FENCE_CLOSE);
        }
        if !body.trim().is_empty() {
            parts.push(part);
        }
        rest = rest[cut.at..].trim_start_matches(['\n', ' ']);
        carried_fence = cut.open_fence;
    }
    parts
}

/// Finds the best place to end the next part of `rest`, which starts with `fence` open (if any).
fn choose_cut(rest: &str, budget: usize, mut fence: Option<String>) -> Cut {
    let mut candidates: Vec<Cut> = Vec::new();
    let mut used = 0usize; // UTF-16 units from the start of `rest` to `offset`
    let mut offset = 0usize;
    for line in rest.split_inclusive('\n') {
        let line_units = units(line);
        let fence_at_line_start = fence.clone();
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(trimmed.to_owned()),
            };
        }
        let end_units = used + line_units;
        let end = offset + line.len();
        // Content up to the line end (without its newline) must fit, plus a fence close if open.
        let content_units = end_units - usize::from(line.ends_with('\n'));
        let needed = content_units
            + if fence.is_some() {
                units(FENCE_CLOSE)
            } else {
                0
            };
        if needed <= budget {
            let next_blank = rest[end..].starts_with('\n') || rest[end..].is_empty();
            let kind = match (&fence, next_blank) {
                (Some(_), _) => CutKind::FencedLine,
                (None, true) => CutKind::Paragraph,
                (None, false) => CutKind::Line,
            };
            candidates.push(Cut {
                at: end,
                kind,
                open_fence: fence.clone(),
            });
        } else {
            // This line does not fit whole: try a word boundary, then a hard cut, inside it.
            let reserve = if fence_at_line_start.is_some() {
                units(FENCE_CLOSE)
            } else {
                0
            };
            let room = budget.saturating_sub(used + reserve);
            if let Some(at) = cut_inside_line(line, room) {
                candidates.push(Cut {
                    at: offset + at,
                    kind: CutKind::Word,
                    open_fence: fence_at_line_start,
                });
            }
            break;
        }
        used = end_units;
        offset = end;
    }
    pick(candidates, budget).unwrap_or_else(|| hard_cut(rest, budget))
}

/// The furthest candidate of the best kind that still fills at least half a part; failing that,
/// the furthest candidate of any kind.
fn pick(candidates: Vec<Cut>, budget: usize) -> Option<Cut> {
    // Byte offsets are at least unit counts, so this never asks for more than half a part.
    let half = budget / 2;
    let valid: Vec<Cut> = candidates.into_iter().filter(|c| c.at > 0).collect();
    valid
        .iter()
        .filter(|c| c.at >= half)
        .min_by_key(|c| (c.kind, std::cmp::Reverse(c.at)))
        .or_else(|| valid.iter().max_by_key(|c| c.at))
        .cloned()
}

/// A byte offset inside `line` at the last space within `room` units, or at the last whole
/// character that fits.
fn cut_inside_line(line: &str, room: usize) -> Option<usize> {
    let mut used = 0;
    let mut last_space = None;
    let mut last_fit = None;
    for (i, ch) in line.char_indices() {
        used += ch.len_utf16();
        if used > room {
            break;
        }
        let end = i + ch.len_utf8();
        if ch == ' ' {
            last_space = Some(end);
        }
        last_fit = Some(end);
    }
    last_space
        .filter(|&s| s > 0)
        .or(last_fit)
        .filter(|&e| e > 0)
}

fn hard_cut(rest: &str, budget: usize) -> Cut {
    let at = cut_inside_line(rest, budget).unwrap_or_else(|| {
        rest.char_indices()
            .nth(1)
            .map(|(i, _)| i)
            .unwrap_or(rest.len())
    });
    Cut {
        at,
        kind: CutKind::Word,
        open_fence: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(parts: &[String], limit: usize) {
        for p in parts {
            assert!(
                units(p) <= limit,
                "part of {} units > {limit}: {p:?}",
                units(p)
            );
            assert!(!p.trim().is_empty());
            let fences = p.lines().filter(|l| l.trim().starts_with("```")).count();
            assert_eq!(fences % 2, 0, "unbalanced fences in {p:?}");
        }
    }

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split_message("hello", CONTENT_LIMIT), vec!["hello"]);
        assert!(split_message("\n\n", CONTENT_LIMIT).is_empty());
    }

    #[test]
    fn splits_on_paragraphs_first() {
        let para = "word ".repeat(150); // 750 units
        let text = format!("{p}\n\n{p}\n\n{p}", p = para.trim());
        let parts = split_message(&text, CONTENT_LIMIT);
        check(&parts, CONTENT_LIMIT);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], format!("{p}\n\n{p}", p = para.trim()));
        assert_eq!(parts[1], para.trim());
    }

    #[test]
    fn never_cuts_inside_a_utf8_character() {
        let text = "é🦀".repeat(1500);
        let parts = split_message(&text, CONTENT_LIMIT);
        check(&parts, CONTENT_LIMIT);
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn prefers_cutting_before_a_fence_to_inside_it() {
        let intro = "intro line\n".repeat(100); // 1100 units
        let code = format!("```rust\n{}```", "let x = 1;\n".repeat(50)); // ~570 units
        let text = format!("{intro}\n{code}\n\n{}", "tail\n".repeat(100));
        let parts = split_message(&text, CONTENT_LIMIT);
        check(&parts, CONTENT_LIMIT);
        assert!(parts.iter().any(|p| p.contains(&code)), "fence kept whole");
    }

    #[test]
    fn long_fences_are_closed_and_reopened_with_their_language() {
        let code = format!("```rust\n{}```", "let value = compute();\n".repeat(300));
        let parts = split_message(&code, CONTENT_LIMIT);
        check(&parts, CONTENT_LIMIT);
        assert!(parts.len() >= 4);
        for p in &parts[1..] {
            assert!(p.starts_with("```rust\n"), "{p:?}");
        }
        let lines: usize = parts
            .iter()
            .map(|p| p.lines().filter(|l| l.contains("compute")).count())
            .sum();
        assert_eq!(lines, 300);
    }

    #[test]
    fn one_huge_line_is_cut_at_words() {
        let text = "lorem ipsum ".repeat(500);
        let parts = split_message(&text, CONTENT_LIMIT);
        check(&parts, CONTENT_LIMIT);
        assert!(parts
            .iter()
            .all(|p| p.ends_with("ipsum") || p.ends_with("lorem")));
        assert_eq!(parts.join(" ").split_whitespace().count(), 1000);
    }

    #[test]
    fn embed_limit_is_supported() {
        let text = "line\n".repeat(3000);
        let parts = split_message(&text, EMBED_DESCRIPTION_LIMIT);
        check(&parts, EMBED_DESCRIPTION_LIMIT);
        assert_eq!(parts.len(), 4);
    }
}
