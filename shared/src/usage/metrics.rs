//! The seed's cost metrics, updated whenever a usage record is written (not when a duplicate is
//! ignored): tokens by type, API calls by service, and the running estimated cost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::{GaugeVec, IntCounter, IntCounterVec, Opts, Registry};

use super::UsageRecord;

/// Handles to the cost metrics. Register once per registry; clone freely.
#[derive(Clone, Debug)]
pub struct UsageMetrics {
    tokens: IntCounterVec,
    api_calls: IntCounterVec,
    cost: GaugeVec,
    /// Exact running cost per tenant in micro-dollars; the gauge is set from it, so the gauge
    /// never drifts from float accumulation.
    cost_micros: Arc<Mutex<HashMap<String, i64>>>,
}

impl UsageMetrics {
    /// Creates and registers `onomancer_tokens_used_total{type,tenant}`,
    /// `onomancer_api_calls_total{service,tenant}` and `onomancer_estimated_cost_dollars{tenant}`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let tokens = IntCounterVec::new(
            Opts::new(
                "onomancer_tokens_used_total",
                "Claude tokens used, by type (input, output, cache_creation, cache_read)",
            ),
            &["type", "tenant"],
        )?;
        let api_calls = IntCounterVec::new(
            Opts::new(
                "onomancer_api_calls_total",
                "Billable upstream API calls, by service",
            ),
            &["service", "tenant"],
        )?;
        let cost = GaugeVec::new(
            Opts::new(
                "onomancer_estimated_cost_dollars",
                "Estimated spend in dollars (running total)",
            ),
            &["tenant"],
        )?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(api_calls.clone()))?;
        registry.register(Box::new(cost.clone()))?;
        Ok(Self {
            tokens,
            api_calls,
            cost,
            cost_micros: Arc::default(),
        })
    }

    /// The `onomancer_api_calls_total` counter of one service and tenant, for clients that count
    /// every call they make themselves (Google: folder lookups, documents, token grants), rather
    /// than through usage records.
    pub fn api_calls(&self, service: &str, tenant: &str) -> IntCounter {
        self.api_calls.with_label_values(&[service, tenant])
    }

    /// Counts a newly written record.
    pub fn observe(&self, record: &UsageRecord) {
        let tenant = record.tenant.as_str();
        let t = &record.tokens;
        for (kind, n) in [
            ("input", t.input),
            ("output", t.output),
            ("cache_creation", t.cache_creation),
            ("cache_read", t.cache_read),
        ] {
            if n > 0 {
                self.tokens.with_label_values(&[kind, tenant]).inc_by(n);
            }
        }
        if record.api_calls > 0 {
            self.api_calls
                .with_label_values(&[record.service.as_str(), tenant])
                .inc_by(record.api_calls);
        }
        let mut totals = self.cost_micros.lock().unwrap_or_else(|e| e.into_inner());
        let total = totals.entry(tenant.to_owned()).or_insert(0);
        *total = total.saturating_add(record.cost_micros);
        self.cost
            .with_label_values(&[tenant])
            .set(crate::llm::micros_to_dollars(*total));
    }
}
