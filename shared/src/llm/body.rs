//! JSON request bodies that send large shared texts without copying them.
//!
//! A transform sends its document in every persona's request, and a worker runs many
//! transforms at once: serializing each request whole would hold one escaped copy of the
//! document per open call (reqwest keeps a reusable body until the response arrives). Instead
//! the request is serialized with each large [`SharedText`] swapped for a marker, and the body
//! is sent as the pieces of that skeleton with the texts in between, each text JSON-escaped a
//! chunk at a time as the connection takes it. The bytes on the wire are exactly
//! `serde_json::to_vec(request)`, with a `Content-Length` (the exact size is known up front).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use serde::Serialize;

use super::types::{
    ContentBlock, CountTokensRequest, Message, MessageContent, MessagesRequest, SystemPrompt,
};
use crate::text::SharedText;

/// Texts at least this long are streamed from their own (shared) bytes; shorter ones are
/// serialized with the rest of the request. Small enough that the skeleton of a transform's
/// request holds neither the document nor the prompts.
pub(crate) const SHARE_MIN: usize = 256;

/// Escaped text per frame.
const CHUNK: usize = 16 * 1024;

/// Prefix of the markers (followed by a per-body nonce and the text's index).
const MARKER: &str = "onomancer-shared-text-";

/// A request whose large shared texts can be swapped out.
pub(crate) trait SharedTexts: Serialize {
    /// A copy with every text of at least [`SHARE_MIN`] bytes replaced by `swap(text)`.
    fn swap_shared(&self, swap: &mut dyn FnMut(&SharedText) -> SharedText) -> Self;
}

fn swap_blocks(
    blocks: &[ContentBlock],
    swap: &mut dyn FnMut(&SharedText) -> SharedText,
) -> Vec<ContentBlock> {
    blocks
        .iter()
        .map(|b| match b {
            ContentBlock::Text {
                text,
                cache_control,
            } if text.len() >= SHARE_MIN => ContentBlock::Text {
                text: swap(text),
                cache_control: cache_control.clone(),
            },
            other => other.clone(),
        })
        .collect()
}

fn swap_system(
    system: &Option<SystemPrompt>,
    swap: &mut dyn FnMut(&SharedText) -> SharedText,
) -> Option<SystemPrompt> {
    match system {
        Some(SystemPrompt::Blocks(blocks)) => Some(SystemPrompt::Blocks(swap_blocks(blocks, swap))),
        other => other.clone(),
    }
}

fn swap_messages(
    messages: &[Message],
    swap: &mut dyn FnMut(&SharedText) -> SharedText,
) -> Vec<Message> {
    messages
        .iter()
        .map(|m| Message {
            role: m.role,
            content: match &m.content {
                MessageContent::Blocks(blocks) => MessageContent::Blocks(swap_blocks(blocks, swap)),
                MessageContent::Text(text) if text.len() >= SHARE_MIN => {
                    MessageContent::Text(swap(text))
                }
                other => other.clone(),
            },
        })
        .collect()
}

impl SharedTexts for MessagesRequest {
    fn swap_shared(&self, swap: &mut dyn FnMut(&SharedText) -> SharedText) -> Self {
        // Field by field in serialization order, so the markers are numbered as they appear.
        let system = swap_system(&self.system, swap);
        let messages = swap_messages(&self.messages, swap);
        Self {
            model: self.model.clone(),
            max_tokens: self.max_tokens,
            system,
            messages,
            temperature: self.temperature,
            stop_sequences: self.stop_sequences.clone(),
        }
    }
}

impl SharedTexts for CountTokensRequest {
    fn swap_shared(&self, swap: &mut dyn FnMut(&SharedText) -> SharedText) -> Self {
        let system = swap_system(&self.system, swap);
        let messages = swap_messages(&self.messages, swap);
        Self {
            model: self.model.clone(),
            system,
            messages,
        }
    }
}

#[derive(Clone)]
enum Segment {
    /// Bytes of the serialized skeleton.
    Raw(Bytes),
    /// One piece of a shared text, escaped from `at` on.
    Escape { part: Bytes, at: usize },
}

/// The streamed JSON body of one request (see the module docs); a clone sends it again.
#[derive(Clone)]
pub(crate) struct JsonBody {
    segments: VecDeque<Segment>,
    remaining: u64,
}

impl JsonBody {
    /// The body of `request`.
    pub(crate) fn new<T: SharedTexts>(request: &T) -> Result<Self, serde_json::Error> {
        let nonce = fastrand::u64(..);
        let mut texts: Vec<SharedText> = Vec::new();
        let skeleton = request.swap_shared(&mut |text| {
            let marker = format!("{MARKER}{nonce:016x}-{}", texts.len());
            texts.push(text.clone());
            SharedText::from(marker)
        });
        let json = serde_json::to_vec(&skeleton)?;
        // Where each marker's string is: `"<marker>"` can only be a whole JSON string (a quote
        // inside a string is escaped), and the nonce keeps a caller's text from spelling one.
        let mut found = Vec::with_capacity(texts.len());
        for (i, text) in texts.into_iter().enumerate() {
            let quoted = format!("\"{MARKER}{nonce:016x}-{i}\"");
            match find(&json, quoted.as_bytes()) {
                Some(at) => found.push((at, quoted.len(), text)),
                None => {
                    // Not expected; send the request serialized whole rather than wrongly.
                    tracing::warn!(
                        "a shared text's marker is missing; serializing the request whole"
                    );
                    return Ok(Self::whole(Bytes::from(serde_json::to_vec(request)?)));
                }
            }
        }
        found.sort_by_key(|(at, _, _)| *at);
        let json = Bytes::from(json);
        let parts: usize = found.iter().map(|(_, _, t)| t.parts().len()).sum();
        let mut segments = VecDeque::with_capacity(1 + found.len() + parts);
        let mut from = 0;
        for (at, len, text) in found {
            // Keep the quotes: the text's escaped characters go between them.
            segments.push_back(Segment::Raw(json.slice(from..at + 1)));
            for part in text.parts() {
                segments.push_back(Segment::Escape {
                    part: part.clone(),
                    at: 0,
                });
            }
            from = at + len - 1;
        }
        segments.push_back(Segment::Raw(json.slice(from..)));
        let remaining = segments
            .iter()
            .map(|s| match s {
                Segment::Raw(b) => b.len() as u64,
                Segment::Escape { part, .. } => escaped_len(part),
            })
            .sum();
        Ok(Self {
            segments,
            remaining,
        })
    }

    fn whole(bytes: Bytes) -> Self {
        Self {
            remaining: bytes.len() as u64,
            segments: VecDeque::from([Segment::Raw(bytes)]),
        }
    }

    /// The next piece of the body, `None` at the end.
    fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            let chunk = match self.segments.front_mut()? {
                Segment::Raw(bytes) => {
                    let bytes = std::mem::take(bytes);
                    self.segments.pop_front();
                    bytes
                }
                Segment::Escape { part, at } => {
                    if *at >= part.len() {
                        self.segments.pop_front();
                        continue;
                    }
                    let mut end = (*at + CHUNK).min(part.len());
                    // Back to a character boundary (a character is at most 4 bytes < CHUNK).
                    while end < part.len() && (part[end] & 0xC0) == 0x80 {
                        end -= 1;
                    }
                    let chunk = escape(part, *at, end);
                    *at = end;
                    chunk
                }
            };
            if chunk.is_empty() {
                continue;
            }
            self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
            return Some(chunk);
        }
    }
}

impl http_body::Body for JsonBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().next_chunk().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Bytes `from..to` of a UTF-8 piece (on character boundaries), JSON-escaped as serde_json
/// escapes a string's contents; shared, not copied, when nothing needs escaping.
fn escape(part: &Bytes, from: usize, to: usize) -> Bytes {
    let raw = &part[from..to];
    if raw.iter().all(|b| escaped_byte_len(*b) == 1) {
        return part.slice(from..to);
    }
    let text = std::str::from_utf8(raw).expect("shared texts are UTF-8 and cut at characters");
    let quoted = serde_json::to_vec(text).expect("a string always serializes");
    let n = quoted.len();
    Bytes::from(quoted).slice(1..n - 1)
}

/// What serde_json writes for one byte of a string: `\"`, `\\`, the short escapes of
/// backspace, tab, newline, form feed and carriage return, `\u00XX` for the other control
/// characters, and every other byte as it is (UTF-8 sequences are not escaped).
fn escaped_byte_len(b: u8) -> u64 {
    match b {
        b'"' | b'\\' | 0x08 | b'\t' | b'\n' | 0x0C | b'\r' => 2,
        0x00..=0x1F => 6,
        _ => 1,
    }
}

fn escaped_len(bytes: &[u8]) -> u64 {
    bytes.iter().map(|b| escaped_byte_len(*b)).sum()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::types::CacheControl;
    use http_body::Body as _;

    fn collect(mut body: JsonBody) -> (Vec<u8>, usize) {
        let announced = body.size_hint().exact().unwrap() as usize;
        let mut out = Vec::new();
        let mut frames = 0;
        while let Some(chunk) = body.next_chunk() {
            out.extend_from_slice(&chunk);
            frames += 1;
        }
        assert!(body.is_end_stream());
        assert_eq!(out.len(), announced, "the size announced is the size sent");
        (out, frames)
    }

    /// Every byte serde_json treats specially, non-ASCII text, and a marker look-alike.
    fn tricky(len: usize) -> String {
        let mut s = String::new();
        let all: String = (0u8..0x80).map(char::from).collect();
        while s.len() < len {
            s.push_str(&all);
            s.push_str("«é» 日本語 🦀 \"quoted\" back\\slash onomancer-shared-text-0 ");
        }
        s
    }

    #[test]
    fn the_body_is_the_serialized_request_byte_for_byte() {
        let doc = SharedText::from(tricky(70_000));
        let block = SharedText::concat([
            SharedText::from_static("<document>\n"),
            doc.clone(),
            SharedText::from_static("\n</document>"),
        ]);
        let request = MessagesRequest::new(
            "claude-x",
            2048,
            vec![Message::user_blocks(vec![
                ContentBlock::cached_text(doc.clone(), CacheControl::ephemeral()),
                ContentBlock::text("short \"ask\"\n"),
            ])],
        )
        .system(SystemPrompt::Blocks(vec![
            ContentBlock::text("instructions"),
            ContentBlock::cached_text(block, CacheControl::ephemeral()),
        ]))
        .temperature(0.3);
        let (sent, frames) = collect(JsonBody::new(&request).unwrap());
        assert_eq!(sent, serde_json::to_vec(&request).unwrap());
        assert!(frames > 8, "the documents go in chunks ({frames} frames)");
        let plain = MessagesRequest::new("m", 9, vec![Message::user(tricky(3000))]);
        let (sent, _) = collect(JsonBody::new(&plain).unwrap());
        assert_eq!(sent, serde_json::to_vec(&plain).unwrap());
        let count = request.count_tokens_request();
        let (sent, _) = collect(JsonBody::new(&count).unwrap());
        assert_eq!(sent, serde_json::to_vec(&count).unwrap());
        // Nothing shared: one piece.
        let small = MessagesRequest::new("m", 5, vec![Message::user("hi")]);
        let (sent, frames) = collect(JsonBody::new(&small).unwrap());
        assert_eq!((sent, frames), (serde_json::to_vec(&small).unwrap(), 1));
    }

    #[test]
    fn text_that_needs_no_escaping_is_sent_from_its_own_bytes() {
        let doc = Bytes::from("plain words ".repeat(2000));
        let text = SharedText::from_utf8(doc.clone()).unwrap();
        let mut body = JsonBody::new(&MessagesRequest::new(
            "m",
            5,
            vec![Message::user_blocks(vec![ContentBlock::text(text)])],
        ))
        .unwrap();
        let _skeleton = body.next_chunk().unwrap();
        let first = body.next_chunk().unwrap();
        assert_eq!(first.as_ptr(), doc.as_ptr(), "not copied");
    }

    #[test]
    fn escaped_lengths_match_serde_json_for_every_ascii_byte() {
        for b in 0u8..0x80 {
            let s = char::from(b).to_string();
            let quoted = serde_json::to_vec(&s).unwrap();
            assert_eq!(
                escaped_len(s.as_bytes()),
                quoted.len() as u64 - 2,
                "byte {b:#x}"
            );
        }
        let s = "«é» 日本語 🦀";
        assert_eq!(escaped_len(s.as_bytes()), s.len() as u64);
    }
}
