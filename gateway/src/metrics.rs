//! The gateway's Prometheus metrics, registered into the registry `/metrics` serves.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

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
    /// `onomancer_gateway_open_connections`: client connections being served (at most
    /// `ONOMANCER_HTTP_MAX_CONNECTIONS`).
    pub open_connections: IntGauge,
    /// `onomancer_gateway_slow_clients_total{phase}`: connections closed because their headers
    /// did not arrive within the header timeout (`headers`, idle keep-alive connections
    /// included) and requests answered 408 because their body did not (`body`).
    pub slow_clients: IntCounterVec,
    /// `onomancer_gateway_request_body_bytes_total`: body bytes the gateway read from clients,
    /// refused requests included (a refusal before the body is read adds nothing).
    pub body_bytes: IntCounter,
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
        let open_connections = IntGauge::new(
            "onomancer_gateway_open_connections",
            "Client connections being served",
        )?;
        let slow_clients = IntCounterVec::new(
            Opts::new(
                "onomancer_gateway_slow_clients_total",
                "Connections closed or requests refused because the client was too slow",
            ),
            &["phase"],
        )?;
        let body_bytes = IntCounter::new(
            "onomancer_gateway_request_body_bytes_total",
            "Request body bytes read from clients",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(open_connections.clone()))?;
        registry.register(Box::new(slow_clients.clone()))?;
        registry.register(Box::new(body_bytes.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(webhooks.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        Ok(Self {
            requests,
            duration,
            webhooks,
            refusals,
            open_connections,
            slow_clients,
            body_bytes,
        })
    }

    /// Counts one webhook delivery.
    pub fn webhook(&self, source: &str, event: &str, outcome: &str) {
        self.webhooks
            .with_label_values(&[source, event, outcome])
            .inc();
    }
}
