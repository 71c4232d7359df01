//! Finding a repeated key in a JSON object, at any depth. `serde_json` keeps the last of two
//! equal keys without a word, so a config file with `"quotas"` twice would start with half of its
//! settings silently dropped; the loader refuses such a file instead, naming the key.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The first repeated key of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DuplicateKey {
    /// Dotted path of the repeated key, as the loader names fields (`quotas`,
    /// `config.github.channels`, `items[2].name`).
    pub field: String,
    /// Line of the second occurrence (1-based).
    pub line: usize,
    /// Column just after the second occurrence's name.
    pub column: usize,
}

/// The first key that appears twice in one object of `text`, or `None`. `text` must already
/// be known to be valid JSON (a syntax error also ends the walk, and gives `None`).
pub(crate) fn find_duplicate_key(text: &str) -> Option<DuplicateKey> {
    let mut path = String::new();
    let mut found = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let walk = Walk {
        path: &mut path,
        found: &mut found,
    };
    match walk.deserialize(&mut de) {
        Ok(()) => None,
        Err(e) => found.map(|field| DuplicateKey {
            field,
            line: e.line(),
            column: e.column(),
        }),
    }
}

/// Walks one value, keeping the path to it; stops at the first repeated key.
struct Walk<'a> {
    /// The path of the value being walked (pushed and truncated around each child).
    path: &'a mut String,
    /// Where the repeated key's path is put before the walk is aborted.
    found: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Walk { path, found } = self;
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key);
            if !seen.insert(key) {
                *found = Some(path.clone());
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value_seed(Walk {
                path: &mut *path,
                found: &mut *found,
            })?;
            path.truncate(len);
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Walk { path, found } = self;
        let mut index = 0usize;
        loop {
            let len = path.len();
            path.push_str(&format!("[{index}]"));
            let more = seq
                .next_element_seed(Walk {
                    path: &mut *path,
                    found: &mut *found,
                })?
                .is_some();
            path.truncate(len);
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(text: &str) -> Option<String> {
        find_duplicate_key(text).map(|d| d.field)
    }

    #[test]
    fn documents_without_repeats_pass() {
        assert_eq!(
            field(r#"{"a": 1, "b": {"a": 2, "c": [{"a": 3}, {"a": 4}]}}"#),
            None
        );
        assert_eq!(field(r#"[1, "x", null, true, -2.5, {}, []]"#), None);
        assert_eq!(field("null"), None);
    }

    #[test]
    fn a_repeat_is_named_by_its_path_at_any_depth() {
        assert_eq!(
            field(r#"{"quotas": {}, "quotas": {}}"#).as_deref(),
            Some("quotas")
        );
        assert_eq!(
            field(r#"{"config": {"github": {"channels": {}, "channels": {}}}}"#).as_deref(),
            Some("config.github.channels")
        );
        assert_eq!(
            field(r#"{"items": [{"name": 1}, {"id": 2, "name": 3, "id": 4}]}"#).as_deref(),
            Some("items[1].id")
        );
        // Keys equal after unescaping are the same key for serde_json.
        assert_eq!(
            field(r#"{"tier": "a", "t\u0069er": "b"}"#).as_deref(),
            Some("tier")
        );
    }

    #[test]
    fn the_position_is_the_second_occurrence() {
        let d = find_duplicate_key("{\n  \"tenantId\": \"a\",\n  \"tenantId\": \"b\"\n}").unwrap();
        assert_eq!((d.field.as_str(), d.line), ("tenantId", 3));
    }
}
