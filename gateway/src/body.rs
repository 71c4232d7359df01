//! Reading request bodies defensively: a declared length over the route's limit is refused
//! before a byte is read, chunks are handed to the caller (a streaming HMAC) as they arrive and
//! kept in a buffer that never grows past the limit, and the whole body must arrive within the
//! body timeout (408 otherwise, logged as a slow client: never a 503, which means Redis).
//!
//! Handlers call [`read_body`] only once the request is authenticated as far as it can be
//! without the body (tenant known, signature header well formed, API key valid), so refused
//! requests cost no memory.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::header_str;
use crate::state::AppState;

/// What a route's answer deadline keeps for the work after the body (checks, one Redis call,
/// the answer): the body timeout ends at least this long before the deadline, so a stalled
/// body is a 408, not a deadline's 503.
const AFTER_BODY: Duration = Duration::from_millis(250);

/// Reads `body` whole: at most `limit` bytes, within the body timeout (bounded by the route's
/// answer `deadline`), each chunk passed to `on_chunk` as it arrives.
pub(crate) async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    deadline: Duration,
    mut on_chunk: impl FnMut(&[u8]),
) -> Result<Bytes, ApiError> {
    if declared_length(headers).is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let budget = state
        .http
        .body_timeout
        .min(deadline.saturating_sub(AFTER_BODY));
    let read_by = Instant::now() + budget;
    let mut chunks = body.into_data_stream();
    let mut collected = Collected::default();
    let outcome = loop {
        match tokio::time::timeout_at(read_by, chunks.next()).await {
            Err(_) => {
                state
                    .metrics
                    .slow_clients
                    .with_label_values(&["body"])
                    .inc();
                tracing::warn!(
                    received = collected.len,
                    timeout_ms = budget.as_millis() as u64,
                    "slow client: the request body did not arrive in time (408)"
                );
                break Err(ApiError::RequestTimeout);
            }
            Ok(None) => break Ok(()),
            Ok(Some(Err(e))) => {
                tracing::debug!(error = %e, "the client stopped sending its body");
                break Err(ApiError::BadRequest(
                    "the request body could not be read to its end".into(),
                ));
            }
            Ok(Some(Ok(chunk))) => {
                if collected.len + chunk.len() > limit {
                    collected.len += chunk.len();
                    break Err(ApiError::PayloadTooLarge { limit });
                }
                on_chunk(&chunk);
                collected.push(chunk);
            }
        }
    };
    state.metrics.body_bytes.inc_by(collected.len as u64);
    outcome.map(|()| collected.into_bytes())
}

/// `Content-Length`, when the client declared one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, "content-length").and_then(|v| v.trim().parse().ok())
}

/// The first block a body of several chunks is copied into; later blocks are [`BLOCK`].
const FIRST_BLOCK: usize = 64 * 1024;
/// The size of the blocks a long body is copied into: the memory a body holds is what arrived
/// plus at most one block, whatever the client declared, and no growing buffer is reallocated.
const BLOCK: usize = 1024 * 1024;

/// The chunks read so far. A body of one chunk (most of them) is kept as it came, without a copy;
/// from the second chunk on, the data is copied into fixed blocks, which also frees the
/// connection's read buffers at once. The blocks are joined at exact size when the whole body is
/// in.
#[derive(Default)]
struct Collected {
    first: Option<Bytes>,
    blocks: Vec<Vec<u8>>,
    len: usize,
}

impl Collected {
    fn push(&mut self, chunk: Bytes) {
        if self.len == 0 && self.blocks.is_empty() && self.first.is_none() {
            self.len = chunk.len();
            self.first = Some(chunk);
            return;
        }
        if let Some(first) = self.first.take() {
            self.len = 0;
            self.append(&first);
        }
        self.append(&chunk);
    }

    fn append(&mut self, mut data: &[u8]) {
        self.len += data.len();
        while !data.is_empty() {
            let block = match self.blocks.last_mut() {
                Some(b) if b.len() < b.capacity() => b,
                _ => {
                    let size = if self.blocks.is_empty() {
                        FIRST_BLOCK
                    } else {
                        BLOCK
                    };
                    self.blocks.push(Vec::with_capacity(size));
                    self.blocks.last_mut().expect("just pushed")
                }
            };
            let n = (block.capacity() - block.len()).min(data.len());
            block.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
    }

    fn into_bytes(mut self) -> Bytes {
        if let Some(first) = self.first {
            return first;
        }
        if self.blocks.len() <= 1 {
            return self.blocks.pop().map(Bytes::from).unwrap_or_default();
        }
        let mut joined = BytesMut::with_capacity(self.len);
        for block in self.blocks.drain(..) {
            joined.extend_from_slice(&block);
        }
        joined.freeze()
    }
}

/// Where a route reads JSON: a `Content-Type` other than JSON is refused (415) before the body
/// is read; an absent one is refused only where `required` (webhook senders always send the
/// same format, REST callers are told).
pub(crate) fn require_json(
    headers: &HeaderMap,
    required: bool,
    wanted: &str,
) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return if required {
            Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type: application/json is required ({wanted})"
            )))
        } else {
            Ok(())
        };
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        return Ok(());
    }
    let shown: String = essence.chars().take(80).collect();
    Err(ApiError::UnsupportedMediaType(format!(
        "Content-Type {shown:?} is not read here: send application/json ({wanted})"
    )))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn chunks_are_joined_in_order_and_a_single_chunk_is_not_copied() {
        let one = Bytes::from_static(b"{\"a\":1}");
        let mut c = Collected::default();
        c.push(one.clone());
        let joined = c.into_bytes();
        assert_eq!(joined.as_ptr(), one.as_ptr());

        let mut c = Collected::default();
        for part in ["ab", "", "cd", "e"] {
            c.push(Bytes::from(part));
        }
        assert_eq!(c.len, 5);
        assert_eq!(&c.into_bytes()[..], b"abcde");
        assert!(Collected::default().into_bytes().is_empty());

        // Across block boundaries: every byte, in order, and no block past its capacity.
        let data: Vec<u8> = (0..3 * BLOCK + 12_345).map(|i| (i % 251) as u8).collect();
        let mut c = Collected::default();
        for part in data.chunks(100_003) {
            c.push(Bytes::copy_from_slice(part));
        }
        assert!(c.blocks.iter().all(|b| b.len() <= BLOCK));
        assert_eq!(c.blocks[0].capacity(), FIRST_BLOCK);
        assert_eq!(c.len, data.len());
        assert_eq!(&c.into_bytes()[..], &data[..]);
    }

    #[test]
    fn json_content_types_pass_others_are_415() {
        let with = |v: Option<&'static str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            }
            h
        };
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.api+json",
        ] {
            assert!(require_json(&with(Some(ok)), true, "x").is_ok(), "{ok}");
        }
        assert!(require_json(&with(None), false, "x").is_ok());
        for bad in [
            Some("application/x-www-form-urlencoded"),
            Some("text/plain"),
            None,
        ] {
            assert!(matches!(
                require_json(&with(bad), true, "x"),
                Err(ApiError::UnsupportedMediaType(_))
            ));
        }
    }
}
