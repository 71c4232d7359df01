//! Cache metrics under the seed's names, registered into a registry the caller owns:
//! `onomancer_cache_hits_total{tier,tenant}`, `onomancer_cache_misses_total{tier,tenant}`,
//! `onomancer_cache_hit_rate{tenant}` (lookups served by any tier / all lookups) and
//! `onomancer_cache_lookup_duration_seconds{tier}`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::Tier;

/// The cache's Prometheus series.
#[derive(Debug)]
pub struct CacheMetrics {
    hits: IntCounterVec,
    misses: IntCounterVec,
    hit_rate: GaugeVec,
    lookup: HistogramVec,
    /// Per tenant: (lookups served from cache, all lookups), to compute the hit-rate gauge.
    totals: Mutex<HashMap<String, (u64, u64)>>,
}

impl CacheMetrics {
    /// Creates the series and registers them into `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let hits = IntCounterVec::new(
            Opts::new(
                "onomancer_cache_hits_total",
                "Cache hits by tier and tenant",
            ),
            &["tier", "tenant"],
        )?;
        let misses = IntCounterVec::new(
            Opts::new(
                "onomancer_cache_misses_total",
                "Cache misses by tier and tenant",
            ),
            &["tier", "tenant"],
        )?;
        let hit_rate = GaugeVec::new(
            Opts::new(
                "onomancer_cache_hit_rate",
                "Share of cache lookups served by any tier (0.0 - 1.0)",
            ),
            &["tenant"],
        )?;
        let lookup = HistogramVec::new(
            HistogramOpts::new(
                "onomancer_cache_lookup_duration_seconds",
                "Time of one lookup in one cache tier",
            )
            .buckets(vec![
                1e-6, 5e-6, 2e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.02, 0.1, 0.5, 2.0,
            ]),
            &["tier"],
        )?;
        registry.register(Box::new(hits.clone()))?;
        registry.register(Box::new(misses.clone()))?;
        registry.register(Box::new(hit_rate.clone()))?;
        registry.register(Box::new(lookup.clone()))?;
        Ok(Self {
            hits,
            misses,
            hit_rate,
            lookup,
            totals: Mutex::new(HashMap::new()),
        })
    }

    /// A lookup in `tier` took `elapsed` and hit or missed.
    pub(crate) fn tier_result(&self, tier: Tier, tenant: &str, hit: bool, elapsed: Duration) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.with_label_values(&[tier.as_str(), tenant]).inc();
        self.lookup
            .with_label_values(&[tier.as_str()])
            .observe(elapsed.as_secs_f64());
    }

    /// A whole lookup (all tiers) ended, served from cache or not; updates the hit-rate gauge.
    pub(crate) fn lookup_done(&self, tenant: &str, served: bool) {
        let rate = {
            let mut totals = self.totals.lock().expect("metrics lock");
            let t = totals.entry(tenant.to_owned()).or_default();
            t.0 += u64::from(served);
            t.1 += 1;
            t.0 as f64 / t.1 as f64
        };
        self.hit_rate.with_label_values(&[tenant]).set(rate);
    }
}
