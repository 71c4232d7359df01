//! The worker runtime: claims jobs in batches through the consumer group, bounds in-flight work,
//! runs the handler in one span per job, acknowledges in batches, extends claims of long jobs,
//! reclaims entries of dead consumers, and shuts down gracefully.

mod claim;
mod finish;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::job::{Envelope, JobError, JobOutcome};
use crate::queue::{Queue, QueueError};
use finish::{Ack, Claimed};

/// A job handler: the worker calls it once per delivery (at least once per job).
pub trait JobHandler: Send + Sync + 'static {
    /// Runs one job.
    fn handle(&self, job: Envelope) -> impl Future<Output = Result<JobOutcome, JobError>> + Send;
}

/// Worker tuning.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Consumer name in the group; unique per live process (a lease enforces it).
    pub consumer: String,
    /// Jobs run at once.
    pub concurrency: usize,
    /// At shutdown, how long in-flight jobs may run before they are handed back.
    pub shutdown_grace: Duration,
    /// How long one blocking read waits for new entries.
    pub block: Duration,
    /// How often the set of tenant streams is re-read.
    pub tenant_refresh: Duration,
    /// Also promote due delayed jobs (cheap and idempotent, so retries flow without a scheduler).
    pub promote_delayed: bool,
    /// Lease on the consumer name, renewed every third of it; a restarted worker with the same
    /// name waits at most this long to take its name (and its pending entries) back.
    pub consumer_lease: Duration,
}

impl WorkerOptions {
    /// Defaults for a consumer name.
    pub fn new(consumer: impl Into<String>) -> Self {
        Self {
            consumer: consumer.into(),
            concurrency: 16,
            shutdown_grace: Duration::from_secs(30),
            block: Duration::from_millis(250),
            tenant_refresh: Duration::from_millis(500),
            promote_delayed: true,
            consumer_lease: Duration::from_secs(10),
        }
    }
}

/// The default consumer name: `hostname-pid` (stable across restarts in a container, where the
/// pid is 1, so a restarted worker drains its own pending entries first).
pub fn default_consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".into());
    format!("{host}-{}", std::process::id())
}

/// Live view of a running worker (for `/readyz` and tests).
#[derive(Clone, Default)]
pub struct WorkerHandle {
    /// False while Redis is unreachable.
    pub ready: Arc<AtomicBool>,
    /// Jobs finished (any outcome) by this worker.
    pub finished: Arc<AtomicU64>,
}

/// The jobs this worker holds, by (stream, entry id), for claim extension and hand-back.
type InFlight = Arc<Mutex<HashMap<(String, String), Arc<(Claimed, Envelope)>>>>;

/// Metric handles by tenant, then kind (looked up without allocating).
type KindMetricsCache =
    HashMap<crate::ids::TenantId, HashMap<crate::job::JobKind, Arc<KindMetrics>>>;

/// Metric handles of one (tenant, kind).
struct KindMetrics {
    claimed: prometheus::IntCounter,
    acked: prometheus::IntCounter,
    succeeded: prometheus::Histogram,
}

/// Runs a handler over the queue.
pub struct WorkerRuntime<H> {
    queue: Queue,
    handler: Arc<H>,
    options: WorkerOptions,
    handle: WorkerHandle,
    /// Metric handles by (tenant, kind).
    kind_metrics: Mutex<KindMetricsCache>,
}

impl<H: JobHandler> WorkerRuntime<H> {
    /// A runtime for `handler`.
    pub fn new(queue: Queue, handler: Arc<H>, options: WorkerOptions) -> Self {
        Self {
            queue,
            handler,
            options,
            handle: WorkerHandle::default(),
            kind_metrics: Mutex::default(),
        }
    }

    /// A handle observing this runtime.
    pub fn handle(&self) -> WorkerHandle {
        self.handle.clone()
    }

    /// Claims and runs jobs until `shutdown` resolves; then stops claiming, lets in-flight jobs
    /// finish within the grace period, hands back the rest, and flushes acknowledgements.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), QueueError> {
        let token = uuid::Uuid::new_v4().to_string();
        self.options.consumer = claim::take_consumer_lease(
            &self.queue,
            &self.options.consumer,
            &token,
            self.options.consumer_lease,
        )
        .await?;
        let consumer = self.options.consumer.clone();
        tracing::info!(
            consumer,
            concurrency = self.options.concurrency,
            "worker started"
        );

        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let acker = tokio::spawn(finish::run_acker(self.queue.clone(), ack_rx));
        let inflight: InFlight = Arc::default();
        let stop_aux = Arc::new(Notify::new());
        let heartbeat = tokio::spawn(claim::run_heartbeat(
            self.queue.clone(),
            self.options.clone(),
            token.clone(),
            inflight.clone(),
            stop_aux.clone(),
        ));

        let semaphore = Arc::new(Semaphore::new(self.options.concurrency));
        let freed = Arc::new(Notify::new());
        let mut tasks = JoinSet::new();
        let mut claimer = claim::Claimer::new(self.queue.clone(), self.options.clone()).await?;
        let mut buffer: std::collections::VecDeque<(Claimed, Envelope)> = Default::default();
        tokio::pin!(shutdown);

        // A restarted consumer drains its own pending entries first.
        match claimer.own_pending().await {
            Ok(own) => buffer.extend(self.triage(own).await),
            Err(e) => tracing::warn!(error = %e, "could not read this consumer's pending entries"),
        }

        let mut backoff = Duration::from_millis(50);
        let mut last_read_empty = false;
        loop {
            // Start what we hold while there is capacity.
            while let Some(permit) = (!buffer.is_empty())
                .then(|| semaphore.clone().try_acquire_owned().ok())
                .flatten()
            {
                let (claimed, env) = buffer.pop_front().expect("non-empty");
                self.spawn_job(&mut tasks, permit, claimed, env, &inflight, &ack_tx, &freed);
            }
            while tasks.try_join_next().is_some() {}
            // Prefetch at most one batch beyond the running jobs.
            let room = self.options.concurrency.saturating_sub(buffer.len());
            if room == 0 || (!buffer.is_empty() && last_read_empty) {
                last_read_empty = false;
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = freed.notified() => continue,
                }
            }
            // Block for new work only when nothing is waiting to start.
            let may_block = buffer.is_empty();
            let read = tokio::select! {
                _ = &mut shutdown => break,
                r = claimer.next_batch(room, may_block) => r,
            };
            match read {
                Ok(batch) => {
                    self.handle.ready.store(true, Ordering::Relaxed);
                    backoff = Duration::from_millis(50);
                    last_read_empty = batch.is_empty();
                    buffer.extend(self.triage(batch).await);
                }
                Err(e) => {
                    self.handle.ready.store(false, Ordering::Relaxed);
                    tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "claiming jobs failed (is Redis reachable?)");
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }

        tracing::info!(
            consumer,
            in_flight = tasks.len(),
            unstarted = buffer.len(),
            "worker stopping"
        );
        // Unstarted entries go straight back.
        for (claimed, env) in buffer.drain(..) {
            if let Err(e) = self.queue.hand_back(&claimed, &env).await {
                tracing::warn!(error = %e, job_id = %env.id, "hand-back failed; the entry will be reclaimed after the idle time");
            }
        }
        let deadline = tokio::time::sleep(self.options.shutdown_grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = tasks.join_next() => if next.is_none() { break },
                _ = &mut deadline => {
                    tracing::warn!(remaining = tasks.len(), "shutdown grace period over; handing back unfinished jobs");
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
        let leftovers: Vec<Arc<(Claimed, Envelope)>> = inflight
            .lock()
            .expect("lock")
            .drain()
            .map(|(_, v)| v)
            .collect();
        for job in leftovers {
            let (claimed, env) = &*job;
            if let Err(e) = self.queue.hand_back(claimed, env).await {
                tracing::warn!(error = %e, job_id = %env.id, "hand-back failed; the entry will be reclaimed after the idle time");
            }
        }
        drop(ack_tx);
        let _ = acker.await;
        stop_aux.notify_one();
        let _ = heartbeat.await;
        claim::release_consumer_lease(&self.queue, &consumer, &token).await;
        tracing::info!(consumer, "worker stopped");
        Ok(())
    }

    /// Decodes claimed entries and marks them running; poison entries go to the dead-letter stream.
    async fn triage(&self, batch: Vec<Claimed>) -> Vec<(Claimed, Envelope)> {
        let max_deliveries = self.queue.config().max_deliveries;
        let mut ready = Vec::with_capacity(batch.len());
        for claimed in batch {
            let decoded = Envelope::decode(&claimed.raw);
            let verdict = match &decoded {
                Err(e) => Some(format!("poison entry: {e}")),
                Ok(_) if claimed.deliveries > max_deliveries => Some(format!(
                    "poison entry: delivered {} times without completing (a worker died each time?)",
                    claimed.deliveries
                )),
                Ok(_) => None,
            };
            if let Some(reason) = verdict {
                if let Err(e) = self
                    .queue
                    .dead_letter(&claimed, decoded.as_ref().ok(), &reason)
                    .await
                {
                    tracing::error!(error = %e, "could not dead-letter a poison entry; it stays pending");
                }
                continue;
            }
            ready.push((claimed, decoded.expect("checked")));
        }
        if let Err(e) = claim::mark_running(&self.queue, &self.options.consumer, &ready).await {
            tracing::warn!(error = %e, "could not mark jobs running");
        }
        ready
    }

    /// Counters of one (tenant, kind), looked up once per job instead of once per counter.
    fn kind_metrics(&self, env: &Envelope) -> Arc<KindMetrics> {
        let mut cache = self.kind_metrics.lock().expect("lock");
        if let Some(m) = cache.get(&env.tenant).and_then(|k| k.get(&env.kind)) {
            return m.clone();
        }
        let m = self.queue.metrics();
        let labels = [env.tenant.as_str(), env.kind.as_str()];
        let k = Arc::new(KindMetrics {
            claimed: m.claimed.with_label_values(&labels),
            acked: m.acked.with_label_values(&labels),
            succeeded: m
                .duration
                .with_label_values(&[env.kind.as_str(), "succeeded"]),
        });
        cache
            .entry(env.tenant.clone())
            .or_default()
            .insert(env.kind.clone(), k.clone());
        k
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_job(
        &self,
        tasks: &mut JoinSet<()>,
        permit: tokio::sync::OwnedSemaphorePermit,
        claimed: Claimed,
        env: Envelope,
        inflight: &InFlight,
        ack_tx: &mpsc::UnboundedSender<Ack>,
        freed: &Arc<Notify>,
    ) {
        let key = (claimed.stream.clone(), claimed.entry_id.clone());
        let metrics = self.kind_metrics(&env);
        let span = tracing::info_span!(
            "job",
            job_id = %env.id,
            tenant = %env.tenant,
            kind = %env.kind,
            attempt = env.attempt,
            lane = %env.lane,
            trace_id = env.trace.as_ref().map(|t| t.trace_id()).unwrap_or(""),
        );
        let job = Arc::new((claimed, env));
        inflight
            .lock()
            .expect("lock")
            .insert(key.clone(), job.clone());
        let (queue, handler, inflight, ack_tx, freed, finished) = (
            self.queue.clone(),
            self.handler.clone(),
            inflight.clone(),
            ack_tx.clone(),
            freed.clone(),
            self.handle.finished.clone(),
        );
        tasks.spawn(
            async move {
                let (claimed, env) = &*job;
                metrics.claimed.inc();
                let started = Instant::now();
                let result = handler.handle(env.clone()).await;
                let elapsed = started.elapsed().as_secs_f64();
                match result {
                    Ok(out) => {
                        metrics.succeeded.observe(elapsed);
                        // Out of the in-flight set before the ack is queued, so a shutdown can
                        // never hand back a job that already succeeded.
                        inflight.lock().expect("lock").remove(&key);
                        metrics.acked.inc();
                        let _ = ack_tx.send(Ack {
                            stream: claimed.stream.clone(),
                            entry_id: claimed.entry_id.clone(),
                            status_key: queue.keys().status(&env.tenant, &env.id),
                            result: out.result.map(|r| r.to_string()),
                        });
                    }
                    Err(err) => {
                        let outcome = match &err {
                            JobError::Retryable { .. } => "retryable",
                            JobError::Terminal { .. } => "terminal",
                            JobError::Deferred { .. } => "deferred",
                        };
                        queue
                            .metrics()
                            .duration
                            .with_label_values(&[env.kind.as_str(), outcome])
                            .observe(elapsed);
                        let mut delay = Duration::from_millis(50);
                        // Keep trying: the entry is pending until this lands, so nothing is lost
                        // even if we give up (it would be reclaimed), but retrying here is faster.
                        for _ in 0..8 {
                            match queue.fail(claimed, env, &err).await {
                                Ok(()) => break,
                                Err(e) => {
                                    tracing::warn!(error = %e, "recording a job failure failed; retrying");
                                    tokio::time::sleep(delay).await;
                                    delay = (delay * 2).min(Duration::from_secs(2));
                                }
                            }
                        }
                    }
                }
                inflight.lock().expect("lock").remove(&key);
                finished.fetch_add(1, Ordering::Relaxed);
                drop(permit);
                freed.notify_one();
            }
            .instrument(span),
        );
    }
}
