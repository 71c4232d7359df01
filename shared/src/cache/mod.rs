//! The tiered, content-addressable cache of the seed's "Caching Architecture": content hashing
//! ([`content_hash`]), L1 in-process (moka), L2 Redis with a TTL per data type, L3 permanent (SQL
//! table or the tenant's Google Docs), single-flight computation across workers, stale-while-
//! revalidate, and the seed's cache metrics.
//!
//! Keys follow the seed: `{tenantId}:transform:{contentHash}:{persona}`. Every entry records the
//! model and prompt fingerprint that produced it; a reader expecting another is served a miss.

pub mod config;
pub mod entry;
pub mod flight;
pub mod hash;
pub mod l1;
pub mod l2;
pub mod l3;
pub mod l3_gdocs;
pub mod metrics;
pub mod swr;
pub mod tiered;

pub use config::{CacheConfig, DataType};
pub use entry::{CacheEntry, CacheKey, Clock, Expectation};
pub use hash::{content_hash, normalize, template_fingerprint};
pub use l3::{L3Error, L3Store, SqlL3};
pub use l3_gdocs::GoogleDocsL3;
pub use metrics::CacheMetrics;
pub use swr::SwrLookup;
pub use tiered::{Computed, Lookup, Source, Tier, TieredCache, TieredCacheBuilder};

#[cfg(test)]
mod tests;
