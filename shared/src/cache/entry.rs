//! What the cache stores: the value plus where it came from (model, prompt fingerprint, time,
//! token usage of the producing call), encoded with rmp-serde as a named map so fields can be
//! added later; and the clock that dates entries.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::TenantId;
use crate::keys::KeySpace;
use crate::llm::TokenCounts;

use super::config::DataType;

/// One cached value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The value (generated text, or JSON for snapshots).
    pub value: String,
    /// The model that produced it (empty for non-LLM data).
    pub model: String,
    /// [`super::template_fingerprint`] of the prompt that produced it (empty for non-LLM data).
    pub fingerprint: String,
    /// When it was produced, ms since the Unix epoch (drives stale-while-revalidate).
    pub created_ms: i64,
    /// Tokens of the producing call (stored under the API's `usage` field names; the 1-hour
    /// share of cache writes is not kept).
    #[serde(with = "stored_usage")]
    pub usage: TokenCounts,
}

/// The stored form of an entry's token counts: the Messages API's `usage` names, as entries
/// have always been written.
mod stored_usage {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::llm::TokenCounts;

    #[derive(Serialize, Deserialize)]
    struct Stored {
        input_tokens: u64,
        output_tokens: u64,
        cache_creation_input_tokens: u64,
        cache_read_input_tokens: u64,
    }

    pub(super) fn serialize<S: Serializer>(t: &TokenCounts, s: S) -> Result<S::Ok, S::Error> {
        Stored {
            input_tokens: t.input,
            output_tokens: t.output,
            cache_creation_input_tokens: t.cache_creation,
            cache_read_input_tokens: t.cache_read,
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TokenCounts, D::Error> {
        let u = Stored::deserialize(d)?;
        Ok(TokenCounts {
            input: u.input_tokens,
            output: u.output_tokens,
            cache_creation: u.cache_creation_input_tokens,
            cache_creation_1h: 0,
            cache_read: u.cache_read_input_tokens,
        })
    }
}

/// Why stored bytes are not an entry.
#[derive(Debug, thiserror::Error)]
#[error("cache entry does not decode: {0}")]
pub struct EntryDecodeError(String);

impl CacheEntry {
    /// msgpack bytes (named fields).
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("cache entries always encode")
    }

    /// Decodes bytes written by [`CacheEntry::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, EntryDecodeError> {
        rmp_serde::from_slice(bytes).map_err(|e| EntryDecodeError(e.to_string()))
    }

    /// True when this entry was produced by what `expect` describes.
    pub fn matches(&self, expect: &Expectation) -> bool {
        self.model == expect.model && self.fingerprint == expect.fingerprint
    }
}

/// What a reader requires of an entry: the same model and prompt fingerprint it would use now.
/// A mismatch is a miss (and the recomputed value overwrites the old one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectation {
    /// Model id.
    pub model: String,
    /// Prompt template fingerprint.
    pub fingerprint: String,
}

impl Expectation {
    /// For LLM output.
    pub fn new(model: impl Into<String>, fingerprint: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            fingerprint: fingerprint.into(),
        }
    }

    /// For data not produced by a model (snapshots of other systems).
    pub fn none() -> Self {
        Self::default()
    }
}

/// Where a value lives: tenant, data type and the id within the type
/// (for transformations `{contentHash}:{persona}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// Owning tenant.
    pub tenant: TenantId,
    /// Data type (TTL, permanence).
    pub data_type: DataType,
    /// Id within the type.
    pub id: String,
}

impl CacheKey {
    /// A key.
    pub fn new(tenant: TenantId, data_type: DataType, id: impl Into<String>) -> Self {
        Self {
            tenant,
            data_type,
            id: id.into(),
        }
    }

    /// The seed's transformation key: `{tenantId}:transform:{contentHash}:{persona}`.
    pub fn transform(
        tenant: &TenantId,
        hash: &crate::ids::ContentHash,
        persona: &crate::ids::Persona,
    ) -> Self {
        Self::new(
            tenant.clone(),
            DataType::Transformation,
            format!("{hash}:{persona}"),
        )
    }

    /// The Redis key of the value.
    pub fn redis_key(&self, keys: &KeySpace) -> String {
        keys.data(
            &self.tenant,
            format_args!("{}:{}", self.data_type.key_segment(), self.id),
        )
    }

    /// The key inside the tenant (`transform:{hash}:{persona}`): L1 and L3 key.
    pub fn local_key(&self) -> String {
        format!("{}:{}", self.data_type.key_segment(), self.id)
    }
}

/// Time source in ms since the Unix epoch; tests use a manual clock instead of sleeping.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// Wall clock.
    #[default]
    System,
    /// A clock that moves only when told to.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `start_ms`.
    pub fn manual(start_ms: i64) -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(start_ms)))
    }

    /// Now, in ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => chrono::Utc::now().timestamp_millis(),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance_ms(&self, ms: i64) {
        if let Clock::Manual(t) = self {
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_match() {
        let e = CacheEntry {
            value: "hello".into(),
            model: "m".into(),
            fingerprint: "f".into(),
            created_ms: 5,
            usage: TokenCounts {
                input: 1,
                output: 2,
                cache_creation: 3,
                cache_creation_1h: 0,
                cache_read: 4,
            },
        };
        assert_eq!(CacheEntry::decode(&e.encode()).unwrap(), e);
        // The stored names are the API's, as entries written before this type was shared.
        #[derive(Serialize)]
        struct Usage {
            input_tokens: u64,
            output_tokens: u64,
            cache_creation_input_tokens: u64,
            cache_read_input_tokens: u64,
        }
        #[derive(Serialize)]
        struct Written<'a> {
            value: &'a str,
            model: &'a str,
            fingerprint: &'a str,
            created_ms: i64,
            usage: Usage,
        }
        let before = rmp_serde::to_vec_named(&Written {
            value: "hello",
            model: "m",
            fingerprint: "f",
            created_ms: 5,
            usage: Usage {
                input_tokens: 1,
                output_tokens: 2,
                cache_creation_input_tokens: 3,
                cache_read_input_tokens: 4,
            },
        })
        .unwrap();
        assert_eq!(e.encode(), before);
        assert_eq!(CacheEntry::decode(&before).unwrap(), e);
        assert!(e.matches(&Expectation::new("m", "f")));
        assert!(!e.matches(&Expectation::new("m", "g")));
        assert!(CacheEntry::decode(b"\xc1").is_err());
    }

    #[test]
    fn transform_keys_follow_the_seed() {
        let k = CacheKey::transform(
            &TenantId::new("thj"),
            &crate::ids::ContentHash::new("0123456789abcdef"),
            &crate::ids::Persona::new("devrel"),
        );
        assert_eq!(
            k.redis_key(&KeySpace::production()),
            "thj:transform:0123456789abcdef:devrel"
        );
    }
}
