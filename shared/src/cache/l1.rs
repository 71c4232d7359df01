//! L1: a bounded in-process cache (moka), with the TTL checked against the cache's [`Clock`] so
//! expiry is testable without sleeping (moka's own TTL still frees memory).

use std::sync::Arc;
use std::time::Duration;

use super::config::L1Config;
use super::entry::{CacheEntry, Clock};

#[derive(Clone)]
struct Slot {
    entry: Arc<CacheEntry>,
    inserted_ms: i64,
}

/// The in-process tier.
#[derive(Clone)]
pub struct L1 {
    cache: moka::sync::Cache<String, Slot>,
    ttl_ms: i64,
    clock: Clock,
}

impl L1 {
    /// A tier with `config`'s size and TTL.
    pub fn new(config: &L1Config, clock: Clock) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(config.max_size)
            .time_to_live(Duration::from_millis(config.ttl_ms.max(1)))
            .build();
        Self {
            cache,
            ttl_ms: config.ttl_ms as i64,
            clock,
        }
    }

    /// The entry under `key` if present and younger than the TTL.
    pub fn get(&self, key: &str) -> Option<Arc<CacheEntry>> {
        let slot = self.cache.get(key)?;
        if self.clock.now_ms() - slot.inserted_ms >= self.ttl_ms {
            self.cache.invalidate(key);
            return None;
        }
        Some(slot.entry)
    }

    /// Stores `entry` under `key`.
    pub fn put(&self, key: String, entry: Arc<CacheEntry>) {
        let inserted_ms = self.clock.now_ms();
        self.cache.insert(key, Slot { entry, inserted_ms });
    }

    /// Removes `key`.
    pub fn invalidate(&self, key: &str) {
        self.cache.invalidate(key);
    }

    /// Applies pending evictions now (moka evicts lazily); for tests and diagnostics.
    pub fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }

    /// Entries held (after [`L1::run_pending_tasks`], exact).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
}
