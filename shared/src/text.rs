//! [`SharedText`]: UTF-8 text held once and shared by reference count. A transform's document
//! is read straight out of the job's payload, kept there for the whole job, and sent in every
//! persona's Claude request without being copied (see `llm::body`), so a worker running many
//! transforms at once holds each document about once.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Text made of shared UTF-8 pieces: cloning, slicing out of a payload and joining never copy
/// the characters. Compares, hashes for display and serializes as the one string it spells.
#[derive(Clone)]
pub struct SharedText {
    /// Every part is valid UTF-8 (each constructor checks it or knows it) and non-empty.
    parts: Arc<[Bytes]>,
}

impl SharedText {
    /// Text that borrows a static string.
    pub fn from_static(text: &'static str) -> Self {
        Self::from_parts(vec![Bytes::from_static(text.as_bytes())])
    }

    /// Text over `bytes` (no copy), when they are UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self::from_parts(vec![bytes]))
    }

    /// `texts` one after the other (no copy of their characters).
    pub fn concat(texts: impl IntoIterator<Item = SharedText>) -> Self {
        let parts: Vec<Bytes> = texts
            .into_iter()
            .flat_map(|t| t.parts.iter().cloned().collect::<Vec<_>>())
            .collect();
        Self::from_parts(parts)
    }

    fn from_parts(mut parts: Vec<Bytes>) -> Self {
        parts.retain(|p| !p.is_empty());
        Self {
            parts: parts.into(),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// True for the empty text.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The pieces, in order, each as it is held (never empty).
    pub fn chunks(&self) -> impl Iterator<Item = &str> + '_ {
        self.parts.iter().map(utf8)
    }

    /// The pieces' bytes, in order (each valid UTF-8, never empty).
    pub(crate) fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// The text as one string: borrowed when it is one piece, joined (a copy) otherwise.
    pub fn to_cow(&self) -> Cow<'_, str> {
        match &*self.parts {
            [] => Cow::Borrowed(""),
            [one] => Cow::Borrowed(utf8(one)),
            _ => Cow::Owned(self.chunks().collect()),
        }
    }
}

/// A part known to be UTF-8 (checked when the text was made).
fn utf8(part: &Bytes) -> &str {
    std::str::from_utf8(part).expect("SharedText parts are UTF-8")
}

impl Default for SharedText {
    fn default() -> Self {
        Self::from_parts(Vec::new())
    }
}

impl From<String> for SharedText {
    /// Takes the string's buffer (shrunk to its length: it may be held for long).
    fn from(text: String) -> Self {
        Self::from_parts(vec![Bytes::from(text.into_bytes().into_boxed_slice())])
    }
}

impl From<&str> for SharedText {
    fn from(text: &str) -> Self {
        Self::from(text.to_owned())
    }
}

impl From<&String> for SharedText {
    fn from(text: &String) -> Self {
        Self::from(text.as_str())
    }
}

impl From<&SharedText> for SharedText {
    fn from(text: &SharedText) -> Self {
        text.clone()
    }
}

/// An `Arc<str>` as the owner of a `Bytes`.
struct ArcStr(Arc<str>);

impl AsRef<[u8]> for ArcStr {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<Arc<str>> for SharedText {
    /// Shares the `Arc`'s characters (no copy).
    fn from(text: Arc<str>) -> Self {
        Self::from_parts(vec![Bytes::from_owner(ArcStr(text))])
    }
}

impl fmt::Display for SharedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.chunks().try_for_each(|c| f.write_str(c))
    }
}

impl fmt::Debug for SharedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.to_cow(), f)
    }
}

impl PartialEq for SharedText {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.to_cow() == other.to_cow()
    }
}

impl Eq for SharedText {}

impl PartialEq<str> for SharedText {
    fn eq(&self, other: &str) -> bool {
        self.len() == other.len() && self.to_cow() == other
    }
}

impl PartialEq<&str> for SharedText {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl Serialize for SharedText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // serde_json escapes each piece straight into its output: no joined copy.
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SharedText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_without_copying_and_reads_as_one_string() {
        let doc = Bytes::from("a «b» c\n".repeat(3));
        let shared = SharedText::from_utf8(doc.clone()).unwrap();
        let block = SharedText::concat([
            SharedText::from_static("<document>\n"),
            shared.clone(),
            SharedText::from(""),
            SharedText::from_static("\n</document>"),
        ]);
        assert_eq!(block.chunks().count(), 3, "the empty piece is dropped");
        assert_eq!(block.parts()[1].as_ptr(), doc.as_ptr(), "not copied");
        let joined = format!("<document>\n{}\n</document>", "a «b» c\n".repeat(3));
        assert_eq!(block.to_string(), joined);
        assert_eq!(block, SharedText::from(joined.clone()));
        assert_eq!(block.len(), joined.len());
        assert_eq!(
            serde_json::to_string(&block).unwrap(),
            serde_json::to_string(&joined).unwrap()
        );
        let back: SharedText =
            serde_json::from_str(&serde_json::to_string(&block).unwrap()).unwrap();
        assert_eq!(back, block);
        assert!(SharedText::from_utf8(Bytes::from_static(b"\xff")).is_err());
        assert!(SharedText::default().is_empty());
        assert_eq!(SharedText::default().to_cow(), "");
        assert_eq!(format!("{:?}", SharedText::from("a\"b")), "\"a\\\"b\"");
    }
}
