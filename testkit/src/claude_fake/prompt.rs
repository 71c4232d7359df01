//! How the fake reads a prompt: its blocks in cache order (system, then messages), and
//! Anthropic's prompt-caching rule applied to them.

use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{count_tokens, FakeState};

pub(super) struct Block {
    pub(super) text: String,
    /// `Some(ttl)` when the block carries `cache_control`.
    pub(super) cache_ttl: Option<Duration>,
}

/// System blocks then message blocks, in the order the API caches them.
pub(super) fn request_blocks(body: &Value) -> Vec<Block> {
    let mut out = Vec::new();
    let mut push_content = |content: &Value, role: &str| match content {
        Value::String(s) => out.push(Block {
            text: format!("{role}:{s}"),
            cache_ttl: None,
        }),
        Value::Array(blocks) => {
            for b in blocks {
                let text = match b.get("text").and_then(Value::as_str) {
                    Some(t) => t.to_owned(),
                    None => b.to_string(),
                };
                let cache_ttl =
                    b.get("cache_control")
                        .map(|cc| match cc.get("ttl").and_then(Value::as_str) {
                            Some("1h") => Duration::from_secs(3600),
                            _ => Duration::from_secs(300),
                        });
                out.push(Block {
                    text: format!("{role}:{text}"),
                    cache_ttl,
                });
            }
        }
        _ => {}
    };
    if let Some(system) = body.get("system") {
        push_content(system, "system");
    }
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        if let Some(c) = m.get("content") {
            push_content(c, role);
        }
    }
    out
}

pub(super) struct CacheUsage {
    pub(super) input: u64,
    pub(super) write: u64,
    pub(super) write_1h: bool,
    pub(super) read: u64,
}

/// Anthropic's rule: the longest cached prefix ending at a breakpoint is read; the part up to
/// the last breakpoint beyond it is written; prefixes under the minimum are never cached.
pub(super) fn cache_usage(s: &mut FakeState, model: &str, blocks: &[Block]) -> CacheUsage {
    let mut hasher = Sha256::new();
    hasher.update(model.as_bytes());
    let mut cumulative = 0u64;
    let mut breakpoints = Vec::new(); // (tokens up to and including, prefix hash, ttl)
    for b in blocks {
        hasher.update(b.text.as_bytes());
        hasher.update([0]);
        cumulative += count_tokens(&b.text);
        if let Some(ttl) = b.cache_ttl {
            breakpoints.push((cumulative, hex::encode(hasher.clone().finalize()), ttl));
        }
    }
    let total = cumulative;
    let now = s.clock;
    let read = breakpoints
        .iter()
        .rev()
        .find(|(_, hash, _)| s.cache.get(hash).is_some_and(|exp| *exp > now))
        .map(|(tokens, _, _)| *tokens)
        .unwrap_or(0);
    let eligible: Vec<_> = breakpoints
        .iter()
        .filter(|(t, _, _)| *t >= s.min_cacheable_tokens)
        .collect();
    let (write, write_1h) = match eligible.last() {
        Some((tokens, _, ttl)) if *tokens > read => {
            (*tokens - read, *ttl > Duration::from_secs(300))
        }
        _ => (0, false),
    };
    for (_, hash, ttl) in eligible {
        s.cache.insert(hash.clone(), now + *ttl);
    }
    CacheUsage {
        input: total - read - write,
        write,
        write_1h,
        read,
    }
}
