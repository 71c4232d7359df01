//! Queue metrics: depth per lane, and jobs claimed, acked, retried, deferred and dead-lettered per
//! tenant and kind, with a job duration histogram.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The queue's metric families, registered in one process registry.
#[derive(Clone)]
pub struct QueueMetrics {
    /// Entries not yet delivered to any worker, per lane (`onomancer_queue_depth{lane}`).
    pub depth: IntGaugeVec,
    /// Entries delivered and not yet acknowledged, per lane.
    pub pending: IntGaugeVec,
    /// Jobs waiting in the delayed set (retries, deferrals).
    pub delayed: IntGaugeVec,
    /// Dead-letter stream length.
    pub dead: IntGaugeVec,
    /// Jobs enqueued, by tenant and kind.
    pub enqueued: IntCounterVec,
    /// Jobs claimed by a worker, by tenant and kind.
    pub claimed: IntCounterVec,
    /// Jobs acknowledged as done, by tenant and kind.
    pub acked: IntCounterVec,
    /// Jobs rescheduled after a retryable error, by tenant and kind.
    pub retried: IntCounterVec,
    /// Jobs postponed by a rate limit, by tenant and kind.
    pub deferred: IntCounterVec,
    /// Jobs moved to the dead-letter stream, by tenant and kind.
    pub dead_lettered: IntCounterVec,
    /// Entries taken over from stalled consumers.
    pub reclaimed: IntCounterVec,
    /// Handler run time, by kind and outcome.
    pub duration: HistogramVec,
}

impl QueueMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let tk = &["tenant", "kind"];
        let counter = |name: &str, help: &str| -> Result<IntCounterVec, prometheus::Error> {
            let c = IntCounterVec::new(Opts::new(name, help), tk)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, prometheus::Error> {
                let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(g.clone()))?;
                Ok(g)
            };
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "onomancer_job_duration_seconds",
                "Time a handler took, by kind and outcome",
            )
            .buckets(vec![
                0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0,
            ]),
            &["kind", "outcome"],
        )?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            depth: gauge(
                "onomancer_queue_depth",
                "Jobs not yet delivered, per lane",
                &["lane"],
            )?,
            pending: gauge(
                "onomancer_queue_pending",
                "Jobs delivered and not yet acknowledged, per lane",
                &["lane"],
            )?,
            delayed: gauge(
                "onomancer_queue_delayed",
                "Jobs waiting to be retried or deferred",
                &["queue"],
            )?,
            dead: gauge(
                "onomancer_queue_dead_letters",
                "Entries in the dead-letter stream",
                &["queue"],
            )?,
            enqueued: counter("onomancer_jobs_enqueued_total", "Jobs enqueued")?,
            claimed: counter("onomancer_jobs_claimed_total", "Jobs claimed by a worker")?,
            acked: counter(
                "onomancer_jobs_acked_total",
                "Jobs completed and acknowledged",
            )?,
            retried: counter(
                "onomancer_jobs_retried_total",
                "Jobs rescheduled after a retryable error",
            )?,
            deferred: counter(
                "onomancer_jobs_deferred_total",
                "Jobs postponed by a rate limit",
            )?,
            dead_lettered: counter(
                "onomancer_jobs_dead_lettered_total",
                "Jobs moved to the dead-letter stream",
            )?,
            reclaimed: counter(
                "onomancer_jobs_reclaimed_total",
                "Jobs taken over from a stalled worker",
            )?,
            duration,
        })
    }

    /// A set registered in a private registry (tools that don't export metrics).
    pub fn unregistered() -> Self {
        Self::register(&Registry::new()).expect("fresh registry accepts every family")
    }
}
