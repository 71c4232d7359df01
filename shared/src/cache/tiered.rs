//! The tiered cache: L1 (in-process) → L2 (Redis) → L3 (permanent), promotion on hit,
//! write-through on miss, and single-flight computation of missing values (in-process gate plus
//! the cross-worker [`Flight`] lock).
//!
//! Redis or database failures never fail a lookup: the tier counts as a miss and the failure is
//! logged, so a Redis outage costs money (no dedupe), not availability.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::ids::TenantId;
use crate::keys::KeySpace;
use crate::redis_conn::RedisConn;

use super::config::CacheConfig;
use super::entry::{CacheEntry, CacheKey, Clock, Expectation};
use super::flight::{Flight, FlightKeys};
use super::l1::L1;
use super::l2;
use super::l3::L3Store;
use super::metrics::CacheMetrics;

/// A cache tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// In-process.
    L1,
    /// Redis.
    L2,
    /// Permanent (SQL or Google Docs).
    L3,
}

impl Tier {
    /// `l1`, `l2`, `l3` (metric label and job outcome value).
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::L1 => "l1",
            Tier::L2 => "l2",
            Tier::L3 => "l3",
        }
    }
}

/// Where a returned value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Served by a tier.
    Cache(Tier),
    /// Computed by this caller (it paid for it).
    Computed,
}

/// A value and its origin.
#[derive(Clone, Debug)]
pub struct Lookup {
    /// The entry.
    pub entry: Arc<CacheEntry>,
    /// Where it came from.
    pub source: Source,
}

/// What a compute function returns; the cache adds model, fingerprint and time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Computed {
    /// The value.
    pub value: String,
    /// Tokens of the producing call.
    pub usage: crate::llm::TokenCounts,
}

pub(crate) struct Inner {
    pub(crate) l1: L1,
    pub(crate) conn: RedisConn,
    pub(crate) keys: KeySpace,
    pub(crate) default_l3: Option<Arc<dyn L3Store>>,
    pub(crate) tenant_l3: HashMap<TenantId, Arc<dyn L3Store>>,
    pub(crate) config: CacheConfig,
    pub(crate) metrics: CacheMetrics,
    pub(crate) flight: Flight,
    pub(crate) clock: Clock,
    /// In-process gates: one task per key goes to Redis, the others wait on the gate.
    pub(crate) gates: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// Keys with a background refresh running in this process.
    pub(crate) refreshing: Mutex<std::collections::HashSet<String>>,
}

/// The tiered, content-addressed cache. Cheap to clone.
#[derive(Clone)]
pub struct TieredCache {
    pub(crate) inner: Arc<Inner>,
}

/// Builds a [`TieredCache`].
pub struct TieredCacheBuilder {
    conn: RedisConn,
    keys: KeySpace,
    redis_url: Option<String>,
    config: CacheConfig,
    clock: Clock,
    default_l3: Option<Arc<dyn L3Store>>,
    tenant_l3: HashMap<TenantId, Arc<dyn L3Store>>,
}

impl TieredCacheBuilder {
    /// Sets the configuration (default: the seed's).
    pub fn config(mut self, config: CacheConfig) -> Self {
        self.config = config;
        self
    }

    /// The Redis URL, for the dedicated connections single-flight waiters block on.
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// The clock (tests use [`Clock::manual`]).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The permanent tier used for tenants without their own (normally [`super::SqlL3`]).
    pub fn l3(mut self, store: Arc<dyn L3Store>) -> Self {
        self.default_l3 = Some(store);
        self
    }

    /// A tenant's own permanent tier (its Google Workspace).
    pub fn l3_for_tenant(mut self, tenant: TenantId, store: Arc<dyn L3Store>) -> Self {
        self.tenant_l3.insert(tenant, store);
        self
    }

    /// Builds the cache and registers its metrics into `registry`.
    pub fn build(self, registry: &prometheus::Registry) -> Result<TieredCache, prometheus::Error> {
        let metrics = CacheMetrics::register(registry)?;
        let lease = Duration::from_millis(self.config.single_flight.lease_ms.max(30));
        Ok(TieredCache {
            inner: Arc::new(Inner {
                l1: L1::new(&self.config.l1, self.clock.clone()),
                flight: Flight::new(self.conn.clone(), self.redis_url.as_deref(), lease),
                conn: self.conn,
                keys: self.keys,
                default_l3: self.default_l3,
                tenant_l3: self.tenant_l3,
                config: self.config,
                metrics,
                clock: self.clock,
                gates: Mutex::new(HashMap::new()),
                refreshing: Mutex::new(Default::default()),
            }),
        })
    }
}

impl TieredCache {
    /// Starts building a cache over `conn`, with keys in `keys`.
    pub fn builder(conn: RedisConn, keys: KeySpace) -> TieredCacheBuilder {
        TieredCacheBuilder {
            conn,
            keys,
            redis_url: None,
            config: CacheConfig::default(),
            clock: Clock::System,
            default_l3: None,
            tenant_l3: HashMap::new(),
        }
    }

    /// The L1 tier (tests and diagnostics).
    pub fn l1(&self) -> &L1 {
        &self.inner.l1
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The Redis key of `key` in this cache's key space.
    pub fn redis_key(&self, key: &CacheKey) -> String {
        key.redis_key(&self.inner.keys)
    }

    pub(crate) fn l3_for(&self, key: &CacheKey) -> Option<&Arc<dyn L3Store>> {
        if !key.data_type.permanent() {
            return None;
        }
        self.inner
            .tenant_l3
            .get(&key.tenant)
            .or(self.inner.default_l3.as_ref())
    }

    /// Looks `key` up through every tier, promoting a hit to the tiers above; records metrics.
    pub async fn get(
        &self,
        key: &CacheKey,
        expect: &Expectation,
    ) -> Option<(Arc<CacheEntry>, Tier)> {
        let rkey = self.redis_key(key);
        let found = self.lookup(key, &rkey, expect, true, true).await;
        self.inner
            .metrics
            .lookup_done(key.tenant.as_str(), found.is_some());
        found
    }

    /// Where `key` would be served from, without promoting or recording (dry runs).
    pub async fn peek(&self, key: &CacheKey, expect: &Expectation) -> Option<Tier> {
        let rkey = self.redis_key(key);
        if self.inner.l1.get(&rkey).is_some_and(|e| e.matches(expect)) {
            return Some(Tier::L1);
        }
        if let Ok(Some(e)) = l2::get(&self.inner.conn, &rkey).await {
            if e.matches(expect) {
                return Some(Tier::L2);
            }
        }
        if let Some(l3) = self.l3_for(key) {
            if let Ok(Some(e)) = l3.get(key, expect).await {
                if e.matches(expect) {
                    return Some(Tier::L3);
                }
            }
        }
        None
    }

    pub(crate) async fn lookup(
        &self,
        key: &CacheKey,
        rkey: &str,
        expect: &Expectation,
        with_l1: bool,
        record: bool,
    ) -> Option<(Arc<CacheEntry>, Tier)> {
        let tenant = key.tenant.as_str();
        let m = &self.inner.metrics;
        if with_l1 {
            let t = Instant::now();
            let hit = self.inner.l1.get(rkey).filter(|e| e.matches(expect));
            if record {
                m.tier_result(Tier::L1, tenant, hit.is_some(), t.elapsed());
            }
            if let Some(e) = hit {
                return Some((e, Tier::L1));
            }
        }
        let t = Instant::now();
        let l2_hit = match l2::get(&self.inner.conn, rkey).await {
            Ok(e) => e.filter(|e| e.matches(expect)),
            Err(e) => {
                tracing::warn!(key = %rkey, error = %e, "L2 cache read failed; treating as a miss");
                None
            }
        };
        if record {
            m.tier_result(Tier::L2, tenant, l2_hit.is_some(), t.elapsed());
        }
        if let Some(e) = l2_hit {
            let e = Arc::new(e);
            self.inner.l1.put(rkey.to_owned(), e.clone());
            return Some((e, Tier::L2));
        }
        let l3 = self.l3_for(key)?;
        let t = Instant::now();
        let l3_hit = match l3.get(key, expect).await {
            Ok(e) => e.filter(|e| e.matches(expect)),
            Err(e) => {
                tracing::warn!(key = %rkey, store = l3.name(), error = %e, "L3 cache read failed; treating as a miss");
                None
            }
        };
        if record {
            m.tier_result(Tier::L3, tenant, l3_hit.is_some(), t.elapsed());
        }
        let e = Arc::new(l3_hit?);
        self.put_l2(key, rkey, &e).await;
        self.inner.l1.put(rkey.to_owned(), e.clone());
        Some((e, Tier::L3))
    }

    async fn put_l2(&self, key: &CacheKey, rkey: &str, entry: &CacheEntry) {
        let ttl = self.inner.config.l2.ttl(key.data_type);
        if let Err(e) = l2::put(&self.inner.conn, rkey, entry, ttl).await {
            tracing::warn!(key = %rkey, error = %e, "L2 cache write failed");
        }
    }

    /// Writes `entry` through every tier (L3 first: it is the durable one).
    pub async fn put(&self, key: &CacheKey, entry: CacheEntry) -> Arc<CacheEntry> {
        let rkey = self.redis_key(key);
        let entry = Arc::new(entry);
        if let Some(l3) = self.l3_for(key) {
            if let Err(e) = l3.put(key, &entry).await {
                tracing::warn!(key = %rkey, store = l3.name(), error = %e, "L3 cache write failed");
            }
        }
        self.put_l2(key, &rkey, &entry).await;
        self.inner.l1.put(rkey, entry.clone());
        entry
    }

    /// Builds the entry for a computed value.
    pub fn entry_for(&self, expect: &Expectation, computed: Computed) -> CacheEntry {
        CacheEntry {
            value: computed.value,
            model: expect.model.clone(),
            fingerprint: expect.fingerprint.clone(),
            created_ms: self.inner.clock.now_ms(),
            usage: computed.usage,
        }
    }

    pub(crate) fn flight_keys(&self, key: &CacheKey) -> FlightKeys {
        let lock = self.inner.keys.data(
            &key.tenant,
            format_args!("lock:{}:{}", key.data_type.key_segment(), key.id),
        );
        FlightKeys {
            done: format!("{lock}:done"),
            lock,
        }
    }

    fn gate(&self, rkey: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.inner.gates.lock().expect("gate map lock");
        if let Some(g) = gates.get(rkey).and_then(Weak::upgrade) {
            return g;
        }
        if gates.len() > 256 {
            gates.retain(|_, w| w.strong_count() > 0);
        }
        let g = Arc::new(tokio::sync::Mutex::new(()));
        gates.insert(rkey.to_owned(), Arc::downgrade(&g));
        g
    }

    /// Returns the cached value for `key`, or computes it exactly once across every task and
    /// worker that asks concurrently: one caller runs `compute` (its result is written through
    /// every tier), the others wait for it and read it. If the computing caller fails, a waiter
    /// takes over; its own `compute` runs at most once.
    pub async fn get_or_compute<F, Fut, E>(
        &self,
        key: &CacheKey,
        expect: &Expectation,
        compute: F,
    ) -> Result<Lookup, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Computed, E>>,
    {
        if let Some((entry, tier)) = self.get(key, expect).await {
            return Ok(Lookup {
                entry,
                source: Source::Cache(tier),
            });
        }
        let rkey = self.redis_key(key);
        let gate = self.gate(&rkey);
        let _local = gate.lock().await;
        if let Some(entry) = self.inner.l1.get(&rkey).filter(|e| e.matches(expect)) {
            return Ok(Lookup {
                entry,
                source: Source::Cache(Tier::L1),
            });
        }
        let flight = &self.inner.flight;
        let fkeys = self.flight_keys(key);
        let deadline =
            Instant::now() + Duration::from_millis(self.inner.config.single_flight.max_wait_ms);
        loop {
            match flight.try_acquire(&fkeys).await {
                Ok(Some(lease)) => {
                    // Someone may have finished between our lookup and our lock.
                    if let Some((entry, tier)) = self.lookup(key, &rkey, expect, false, false).await
                    {
                        lease.release().await;
                        return Ok(Lookup {
                            entry,
                            source: Source::Cache(tier),
                        });
                    }
                    let computed = compute().await;
                    let result = match computed {
                        Ok(c) => Ok(Lookup {
                            entry: self.put(key, self.entry_for(expect, c)).await,
                            source: Source::Computed,
                        }),
                        Err(e) => Err(e),
                    };
                    lease.release().await;
                    return result;
                }
                Ok(None) => {
                    if Instant::now() >= deadline {
                        tracing::warn!(key = %rkey, "gave up waiting for another worker's result; computing");
                        break;
                    }
                    if let Err(e) = flight.wait(&fkeys, flight.lease()).await {
                        tracing::warn!(key = %rkey, error = %e, "single-flight wait failed; computing without coordination");
                        break;
                    }
                    if let Some((entry, tier)) = self.lookup(key, &rkey, expect, false, false).await
                    {
                        return Ok(Lookup {
                            entry,
                            source: Source::Cache(tier),
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(key = %rkey, error = %e, "single-flight lock unavailable; computing without coordination");
                    break;
                }
            }
        }
        let c = compute().await?;
        Ok(Lookup {
            entry: self.put(key, self.entry_for(expect, c)).await,
            source: Source::Computed,
        })
    }
}
