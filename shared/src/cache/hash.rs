//! Content addressing: the seed's `normalize` (trim, collapse every whitespace run to one space,
//! CRLF to LF) and SHA-256, done in one pass that feeds the hasher spans of the input directly,
//! so a document is never copied into an intermediate `String` (≥ 500 MB/s; see the cache
//! benchmark).
//!
//! The seed collapses `\s+` to a space *before* replacing CRLF, so no line break survives
//! normalization; this module reproduces that exactly, with JavaScript's `\s` set (ASCII
//! whitespace, NBSP, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF).

use sha2::{Digest, Sha256};

use crate::ids::ContentHash;

/// ASCII bytes that JavaScript's `\s` matches: `\t \n \v \f \r` and space.
const fn ascii_ws_table() -> [bool; 128] {
    let mut t = [false; 128];
    t[b'\t' as usize] = true;
    t[b'\n' as usize] = true;
    t[0x0b] = true;
    t[0x0c] = true;
    t[b'\r' as usize] = true;
    t[b' ' as usize] = true;
    t
}
static ASCII_WS: [bool; 128] = ascii_ws_table();

/// Length in bytes of the non-ASCII whitespace character starting at `b[i]`, or 0.
#[inline]
fn unicode_ws_len(b: &[u8], i: usize) -> usize {
    let at = |k: usize| b.get(i + k).copied().unwrap_or(0);
    match b[i] {
        0xC2 if at(1) == 0xA0 => 2,                  // U+00A0
        0xE1 if at(1) == 0x9A && at(2) == 0x80 => 3, // U+1680
        0xE2 => match (at(1), at(2)) {
            (0x80, 0x80..=0x8A) => 3,        // U+2000..U+200A
            (0x80, 0xA8 | 0xA9 | 0xAF) => 3, // U+2028, U+2029, U+202F
            (0x81, 0x9F) => 3,               // U+205F
            _ => 0,
        },
        0xE3 if at(1) == 0x80 && at(2) == 0x80 => 3, // U+3000
        0xEF if at(1) == 0xBB && at(2) == 0xBF => 3, // U+FEFF
        _ => 0,
    }
}

/// Calls `emit` with each maximal run of non-whitespace bytes of `text`, in order.
#[inline]
fn for_each_word(text: &str, mut emit: impl FnMut(&[u8])) {
    let b = text.as_bytes();
    let mut i = 0;
    let mut start = 0;
    while i < b.len() {
        let c = b[i];
        let ws = if c < 0x80 {
            usize::from(ASCII_WS[c as usize])
        } else {
            unicode_ws_len(b, i)
        };
        if ws == 0 {
            i += 1;
            continue;
        }
        if start < i {
            emit(&b[start..i]);
        }
        i += ws;
        start = i;
    }
    if start < b.len() {
        emit(&b[start..]);
    }
}

/// Length of the whitespace character at `b[i]` (ASCII or Unicode), or 0.
#[inline(always)]
fn ws_len(b: &[u8], i: usize) -> usize {
    let c = b[i];
    if c < 0x80 {
        usize::from(ASCII_WS[c as usize])
    } else {
        unicode_ws_len(b, i)
    }
}

/// Marks (high bit of each byte) the bytes of an 8-byte little-endian chunk that need a look:
/// controls (< 0x20), non-ASCII bytes, and spaces followed by such a byte or by another space
/// (or ending the chunk). A single space between two words needs none: it is already
/// normalized. Borrows can mark extra bytes (costing a slow check); no byte needing a look is
/// ever unmarked.
#[inline(always)]
fn look_mask(x: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let ctrl_or_high = (x.wrapping_sub(0x2020_2020_2020_2020) | x) & HIGH;
    let special = (x.wrapping_sub(0x2121_2121_2121_2121) | x) & HIGH;
    let t = x ^ 0x2020_2020_2020_2020;
    let space = t.wrapping_sub(0x0101_0101_0101_0101) & !t & HIGH;
    ctrl_or_high | (space & ((special >> 8) | 0x8000_0000_0000_0000))
}

/// The SHA-256 of `normalize(text)`, computed without building the normalized text: spans of
/// the input that are already normalized (words separated by single spaces) go to the hasher
/// as they are; every other whitespace run becomes one space. The scan reads 8 bytes at a time.
pub fn normalized_sha256(text: &str) -> [u8; 32] {
    let b = text.as_bytes();
    let n = b.len();
    let mut sha = Sha256::new();
    let mut i = 0;
    while i < n && ws_len(b, i) > 0 {
        i += ws_len(b, i);
    }
    let mut span = i; // start of the verbatim span not yet hashed
    let mut space_before_span = false;
    while i < n {
        while i + 8 <= n {
            let chunk = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
            let m = look_mask(chunk);
            if m == 0 {
                i += 8;
            } else {
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
        }
        if i >= n {
            break;
        }
        let w = ws_len(b, i);
        if w == 0 {
            i += 1; // part of a word (control character, non-ASCII letter or punctuation)
            continue;
        }
        if b[i] == b' ' && i + 1 < n && ws_len(b, i + 1) == 0 {
            i += 2; // a single space between words: already normalized
            continue;
        }
        if space_before_span {
            sha.update(b" ");
        }
        sha.update(&b[span..i]);
        while i < n && ws_len(b, i) > 0 {
            i += ws_len(b, i);
        }
        space_before_span = true;
        span = i;
    }
    if span < n {
        if space_before_span {
            sha.update(b" ");
        }
        sha.update(&b[span..n]);
    }
    sha.finalize().into()
}

/// The seed's `hashContent`: first 16 hex characters of `sha256(normalize(text))`.
pub fn content_hash(text: &str) -> ContentHash {
    ContentHash::new(hex::encode(&normalized_sha256(text)[..8]))
}

/// The seed's normalization as a `String` (for tests and diagnostics; hashing never builds it).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for_each_word(text, |word| {
        if !out.is_empty() {
            out.push(' ');
        }
        // Words are whole UTF-8 sequences: splits happen only at whitespace characters.
        out.push_str(std::str::from_utf8(word).expect("split at character boundaries"));
    });
    out
}

/// Fingerprint of what produced a cached value: the prompt template text, the model and the
/// output budget (16 hex). A change to any of them makes old entries misses, never stale hits.
pub fn template_fingerprint(template: &str, model: &str, max_tokens: u32) -> String {
    let mut sha = Sha256::new();
    sha.update(template.as_bytes());
    sha.update([0]);
    sha.update(model.as_bytes());
    sha.update([0]);
    sha.update(max_tokens.to_le_bytes());
    hex::encode(&sha.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's TypeScript, transcribed literally (with JS's `\s` set).
    fn seed_normalize(text: &str) -> String {
        let js_ws = |c: char| {
            matches!(
                c,
                '\t' | '\n' | '\u{0b}' | '\u{0c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
                    ..='\u{200a}'
                        | '\u{2028}'
                        | '\u{2029}'
                        | '\u{202f}'
                        | '\u{205f}'
                        | '\u{3000}'
                        | '\u{feff}'
            )
        };
        let trimmed = text.trim_matches(js_ws);
        let mut out = String::new();
        let mut in_ws = false;
        for c in trimmed.chars() {
            if js_ws(c) {
                if !in_ws {
                    out.push(' ');
                }
                in_ws = true;
            } else {
                out.push(c);
                in_ws = false;
            }
        }
        out.replace("\r\n", "\n")
    }

    #[test]
    fn matches_the_seed_normalization() {
        let samples = [
            "",
            "   ",
            "a",
            "  Hello,\r\n\r\n  world!\t\t ",
            "line one\nline two\r\nline three",
            "nbsp\u{a0}and\u{2003}em\u{3000}ideographic\u{feff}bom",
            "unicode ’quotes’ — dashes … and émoji 🎉 stay",
            "\u{2028}sep\u{2029}",
            "x\u{0b}\u{0c}y",
        ];
        for s in samples {
            assert_eq!(normalize(s), seed_normalize(s), "{s:?}");
            let expect = hex::encode(&Sha256::digest(seed_normalize(s).as_bytes())[..8]);
            assert_eq!(content_hash(s).as_str(), expect, "{s:?}");
        }
    }

    #[test]
    fn whitespace_only_changes_keep_the_hash() {
        let a = "# PRD\n\nShip the thing.\nBy Friday.";
        let b = "  # PRD\r\n\r\n\r\nShip   the thing.\r\nBy\tFriday.  \n";
        assert_eq!(content_hash(a), content_hash(b));
        assert_ne!(
            content_hash(a),
            content_hash("# PRD Ship the thing. By Monday.")
        );
        assert_eq!(content_hash(a).as_str().len(), 16);
    }

    #[test]
    fn long_inputs_cross_the_buffer_boundary() {
        let word = "abcdefghij".repeat(3000); // 30 kB word: larger than the buffer
        let text = format!("{word}  {word}\n{}", "short ".repeat(5000));
        let expect = hex::encode(&Sha256::digest(seed_normalize(&text).as_bytes())[..8]);
        assert_eq!(content_hash(&text).as_str(), expect);
    }

    #[test]
    fn random_whitespace_mixes_match_the_seed() {
        let pieces = [
            "a", "bc", "déf", "’", "—", "x\u{1}y", " ", "  ", "\t", "\n", "\r\n", "\u{a0}",
            "\u{2003}", "\u{3000}", "\u{feff}", "\u{2028}", "\u{85}", "12345678", "word ",
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..3000 {
            let len = rng.usize(0..40);
            let s: String = (0..len)
                .map(|_| pieces[rng.usize(0..pieces.len())])
                .collect();
            let expect = hex::encode(&Sha256::digest(seed_normalize(&s).as_bytes())[..8]);
            assert_eq!(content_hash(&s).as_str(), expect, "{s:?}");
            assert_eq!(normalize(&s), seed_normalize(&s), "{s:?}");
        }
    }

    #[test]
    fn fingerprints_change_with_each_input() {
        let f = template_fingerprint("Write for leaders.", "claude-sonnet", 2000);
        assert_eq!(f.len(), 16);
        assert_ne!(
            f,
            template_fingerprint("Write for leaders!", "claude-sonnet", 2000)
        );
        assert_ne!(
            f,
            template_fingerprint("Write for leaders.", "claude-opus", 2000)
        );
        assert_ne!(
            f,
            template_fingerprint("Write for leaders.", "claude-sonnet", 2001)
        );
    }
}
