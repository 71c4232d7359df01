//! Stale-while-revalidate (the seed's `getWithRevalidation`): an entry older than `maxStaleMs`
//! is still returned at once while one background refresh per key runs (one per process via a
//! local set, one across workers via the single-flight lock). A failed refresh keeps the old
//! value and is logged.

use std::fmt::Display;
use std::future::Future;

use tokio::task::JoinHandle;

use super::entry::{CacheKey, Expectation};
use super::tiered::{Computed, Lookup, Source, TieredCache};

/// A stale-while-revalidate answer.
#[derive(Debug)]
pub struct SwrLookup {
    /// The value returned to the caller.
    pub lookup: Lookup,
    /// True when the value is older than `maxStaleMs`.
    pub stale: bool,
    /// The background refresh this call started, if any (await it in tests).
    pub refresh: Option<JoinHandle<()>>,
}

impl TieredCache {
    /// Returns a cached value, refreshing it in the background when stale; computes in the
    /// foreground (single-flight) only when nothing usable is cached.
    pub async fn get_with_revalidation<F, Fut, E>(
        &self,
        key: &CacheKey,
        expect: &Expectation,
        refresh: F,
    ) -> Result<SwrLookup, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Computed, E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let swr = &self.inner.config.stale_while_revalidate;
        let Some((entry, tier)) = self.get(key, expect).await else {
            let lookup = self.get_or_compute(key, expect, refresh).await?;
            return Ok(SwrLookup {
                lookup,
                stale: false,
                refresh: None,
            });
        };
        let age = self.inner.clock.now_ms() - entry.created_ms;
        let lookup = Lookup {
            entry,
            source: Source::Cache(tier),
        };
        if age < swr.max_stale_ms as i64 {
            return Ok(SwrLookup {
                lookup,
                stale: false,
                refresh: None,
            });
        }
        if !swr.background_refresh_enabled {
            let fresh = refresh().await?;
            let entry = self.put(key, self.entry_for(expect, fresh)).await;
            return Ok(SwrLookup {
                lookup: Lookup {
                    entry,
                    source: Source::Computed,
                },
                stale: false,
                refresh: None,
            });
        }
        let handle = self.spawn_refresh(key, expect, refresh);
        Ok(SwrLookup {
            lookup,
            stale: true,
            refresh: handle,
        })
    }

    fn spawn_refresh<F, Fut, E>(
        &self,
        key: &CacheKey,
        expect: &Expectation,
        refresh: F,
    ) -> Option<JoinHandle<()>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Computed, E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let rkey = self.redis_key(key);
        if !self
            .inner
            .refreshing
            .lock()
            .expect("refresh set lock")
            .insert(rkey.clone())
        {
            return None; // this process is already refreshing the key
        }
        let cache = self.clone();
        let key = key.clone();
        let expect = expect.clone();
        Some(tokio::spawn(async move {
            let fkeys = cache.flight_keys(&key);
            match cache.inner.flight.try_acquire(&fkeys).await {
                Ok(Some(lease)) => {
                    match refresh().await {
                        Ok(fresh) => {
                            cache.put(&key, cache.entry_for(&expect, fresh)).await;
                        }
                        Err(e) => tracing::warn!(key = %rkey, error = %e,
                            "background refresh failed; keeping the stale value"),
                    }
                    lease.release().await;
                }
                Ok(None) => {} // another worker is refreshing it
                Err(e) => tracing::warn!(key = %rkey, error = %e,
                    "background refresh skipped: single-flight lock unavailable"),
            }
            cache
                .inner
                .refreshing
                .lock()
                .expect("refresh set lock")
                .remove(&rkey);
        }))
    }
}
