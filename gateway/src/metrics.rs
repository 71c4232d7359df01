//! The gateway's Prometheus metrics, registered into the registry `/metrics` serves.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Counters and histograms of the HTTP front.
#[derive(Clone, Debug)]
pub struct GatewayMetrics {
    /// `onomancer_gateway_requests_total{route, status}`: every answered request.
    pub requests: IntCounterVec,
    /// `onomancer_gateway_request_duration_seconds{route}`: time to answer.
    pub duration: HistogramVec,
    /// `onomancer_gateway_webhooks_total{source, event, outcome}`: verified deliveries by what
    /// became of them (`enqueued`, `duplicate`, `ignored`, `ping`).
    pub webhooks: IntCounterVec,
    /// `onomancer_gateway_admission_refusals_total{tenant, reason}`: quota and rate refusals.
    pub refusals: IntCounterVec,
}

impl GatewayMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "onomancer_gateway_requests_total",
                "HTTP requests answered by the gateway",
            ),
            &["route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "onomancer_gateway_request_duration_seconds",
                "Time the gateway took to answer",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 3.0,
            ]),
            &["route"],
        )?;
        let webhooks = IntCounterVec::new(
            Opts::new(
                "onomancer_gateway_webhooks_total",
                "Verified webhook deliveries by source, event and outcome",
            ),
            &["source", "event", "outcome"],
        )?;
        let refusals = IntCounterVec::new(
            Opts::new(
                "onomancer_gateway_admission_refusals_total",
                "Requests refused by quota or rate admission",
            ),
            &["tenant", "reason"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(webhooks.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        Ok(Self {
            requests,
            duration,
            webhooks,
            refusals,
        })
    }

    /// Counts one webhook delivery.
    pub fn webhook(&self, source: &str, event: &str, outcome: &str) {
        self.webhooks
            .with_label_values(&[source, event, outcome])
            .inc();
    }
}
