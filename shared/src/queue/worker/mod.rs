//! The worker runtime: claims only what it can start now (each lane's room, with slots kept for
//! interactive work), runs the handler in one span per job, acknowledges in batches, keeps its
//! liveness so peers never take its jobs, takes over the jobs of peers presumed dead, waits for
//! new work on the wake lists, and shuts down gracefully.

mod claim;
mod finish;
mod liveness;
mod read;
mod run_job;
mod slots;
mod wake;
mod writer;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::BackoffBuilder;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use writer::{Flushed, Write};

use crate::job::{Envelope, JobError, JobOutcome};
use crate::queue::{Queue, QueueError};
use finish::Claimed;
use slots::Slots;

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
    /// How long one wait for new work blocks before the worker looks again.
    pub block: Duration,
    /// Ignored: claims no longer read the set of tenant streams (the ready index replaced it).
    /// Kept so existing callers still compile.
    pub tenant_refresh: Duration,
    /// Also promote due delayed jobs (cheap and idempotent, so retries flow without a scheduler).
    pub promote_delayed: bool,
    /// Lease on the consumer name, renewed with the worker's liveness; a restarted worker with
    /// the same name waits at most this long to take its name (and its pending entries) back.
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

/// The jobs this worker runs, by (stream, entry id), for the hand-back at shutdown.
type InFlight = Arc<Mutex<HashMap<(String, String), Arc<(Claimed, Envelope)>>>>;

/// Metric handles by tenant, then kind (looked up without allocating).
type KindMetricsCache =
    HashMap<crate::ids::TenantId, HashMap<crate::job::JobKind, Arc<run_job::KindMetrics>>>;

/// What a starting job needs from the runtime's loop.
struct Running {
    tasks: JoinSet<()>,
    inflight: InFlight,
    /// The writer: job starts (marks, settles) and acknowledgements, in order.
    writes: mpsc::UnboundedSender<Write>,
    /// The last start the writer has written.
    flushed: Flushed,
    /// The last start's number.
    seq: u64,
    /// Notified each time a job ends and frees its slot.
    freed: Arc<Notify>,
    slots: Arc<Slots>,
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

impl Queue {
    /// Claims up to `free` entries for `consumer` with the workers' claim script, exactly as a
    /// worker with `free` free slots would, and returns how many it took. For benchmarks that
    /// measure what one claim costs Redis: the entries stay pending under `consumer` (a name no
    /// worker uses, in a namespace thrown away afterwards).
    pub async fn claim_once(&self, consumer: &str, free: usize) -> Result<usize, QueueError> {
        claim::Claims::new(self.clone(), consumer.into())
            .claim_only(free)
            .await
    }
}

/// Claims one worker keeps in flight: a claim is a few round trips, so while one is answered
/// a worker with plenty of room already asks for the slots it has left.
const CLAIMS_IN_FLIGHT: usize = 2;

/// A claim in flight: the slots it holds, and its answer.
type InFlightClaim = std::pin::Pin<
    Box<dyn Future<Output = (usize, Result<claim::Batch, QueueError>)> + Send + 'static>,
>;

/// Waits between claims while Redis fails: short, so work resumes within a second of Redis
/// answering again.
fn redis_retry() -> impl Iterator<Item = Duration> {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(500))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Waits between attempts at a write that must happen (a job's failure, a batch of starts and
/// acknowledgements; its entries stay pending until then): from `first`, doubling, at most 2 s
/// apart, without limit.
fn until_recorded(first: Duration) -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(Duration::from_secs(2))
        .without_max_times()
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
        let lease = self.options.consumer_lease;
        self.options.consumer =
            liveness::take_consumer_lease(&self.queue, &self.options.consumer, &token, lease)
                .await?;
        let consumer: Arc<str> = self.options.consumer.as_str().into();
        // Live before anything is claimed, so peers never take what this worker holds.
        liveness::renew(&self.queue, &consumer, &token, lease).await?;
        let slots = Arc::new(Slots::new(
            self.options.concurrency,
            &self.queue.config().reserved,
        ));
        let (reserved_interactive, reserved_default) = slots.reserved();
        tracing::info!(
            consumer = &*consumer,
            concurrency = self.options.concurrency,
            reserved_interactive,
            reserved_default,
            "worker started"
        );

        let (writes, flushed, writer) = writer::spawn(
            self.queue.clone(),
            self.queue.dedicated_connection().await?,
            consumer.clone(),
        );
        let stop_aux = Arc::new(Notify::new());
        let heartbeat = tokio::spawn(liveness::run_heartbeat(
            self.queue.clone(),
            consumer.to_string(),
            token.clone(),
            lease,
            stop_aux.clone(),
        ));
        let mut running = Running {
            tasks: JoinSet::new(),
            inflight: Arc::default(),
            writes,
            flushed,
            seq: 0,
            freed: Arc::new(Notify::new()),
            slots,
        };
        let claims = claim::Claims::new(self.queue.clone(), consumer.clone());
        let mut upkeep = claim::Upkeep::new(self.queue.clone(), self.options.promote_delayed);
        let mut waker = wake::Waker::new(
            self.queue.dedicated_connection().await?,
            self.queue.keys().clone(),
            self.options.block,
        );
        tokio::pin!(shutdown);

        // A restarted consumer takes its own pending entries back first.
        match claims.own_pending().await {
            Ok(own) => {
                self.start(own, writer::Settle::default(), &mut running)
                    .await
            }
            Err(e) => tracing::warn!(error = %e, "could not read this consumer's pending entries"),
        }

        // Claims in flight, each holding the slots it may fill until it answers.
        let mut in_flight: FuturesUnordered<InFlightClaim> = FuturesUnordered::new();
        let mut held = 0;
        // The last claim found nothing: wait for new work or a freed slot before claiming again.
        let mut idle = false;
        // After a failure, no claim before this.
        let mut paused_until: Option<tokio::time::Instant> = None;
        let mut retry = redis_retry();
        loop {
            while running.tasks.try_join_next().is_some() {}
            let paused = paused_until.is_some_and(|t| tokio::time::Instant::now() < t);
            if !idle && !paused {
                if let Err(e) = upkeep.run_if_due().await {
                    paused_until = Some(self.failed(&e, &mut retry));
                    continue;
                }
                while in_flight.len() < CLAIMS_IN_FLIGHT {
                    let free = running.slots.room().less(held);
                    // A second claim only for plenty of room: two claims splitting a little room
                    // (each holding what the other might take) would starve a lane.
                    let enough = if in_flight.is_empty() {
                        1
                    } else {
                        claim::MAX_ENTRIES / 2
                    };
                    if free.total < enough {
                        break;
                    }
                    let room = free.capped(claim::MAX_ENTRIES);
                    held += room.total;
                    let c = claims.clone();
                    in_flight.push(Box::pin(async move { (room.total, c.claim(room).await) }));
                }
            }
            let lanes = running.slots.room().open_lanes();
            let wait_for_work = idle && in_flight.is_empty() && !lanes.is_empty();
            tokio::select! {
                _ = &mut shutdown => break,
                Some((room, result)) = in_flight.next(), if !in_flight.is_empty() => {
                    held -= room;
                    match result {
                        Ok(batch) => {
                            self.handle.ready.store(true, Ordering::Relaxed);
                            retry = redis_retry();
                            paused_until = None;
                            let got = !batch.entries.is_empty();
                            self.start(batch.entries, batch.settle, &mut running).await;
                            idle = !got && !batch.more;
                        }
                        Err(e) => paused_until = Some(self.failed(&e, &mut retry)),
                    }
                }
                _ = running.freed.notified() => idle = false,
                woke = waker.wait(&lanes), if wait_for_work => {
                    idle = false;
                    let failure = match woke {
                        Ok(Some(lane)) if running.slots.room().for_lane(lane) == 0 => {
                            // Work this worker can no longer take: pass the token on.
                            self.queue.wake_lane(lane).await.err()
                        }
                        Ok(_) => None,
                        Err(e) => Some(e),
                    };
                    if let Some(e) = failure {
                        paused_until = Some(self.failed(&e, &mut retry));
                    }
                }
                _ = tokio::time::sleep_until(paused_until.unwrap_or_else(tokio::time::Instant::now)),
                    if paused && in_flight.is_empty() => {}
            }
        }
        // What claims in flight at the stop took goes straight back (their reads settled).
        while let Some((_, result)) = in_flight.next().await {
            if let Ok(batch) = result {
                for (claimed, env) in self.triage(batch.entries).await {
                    self.hand_back(&claimed, &env).await;
                }
                if !batch.settle.is_empty() {
                    running.seq += 1;
                    let _ = running.writes.send(Write::Started(writer::Started {
                        seq: running.seq,
                        marks: Vec::new(),
                        settle: batch.settle,
                    }));
                }
            }
        }
        drop(waker);

        tracing::info!(
            consumer = &*consumer,
            in_flight = running.tasks.len(),
            "worker stopping"
        );
        let deadline = tokio::time::sleep(self.options.shutdown_grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = running.tasks.join_next() => if next.is_none() { break },
                _ = &mut deadline => {
                    tracing::warn!(remaining = running.tasks.len(), "shutdown grace period over; handing back unfinished jobs");
                    running.tasks.abort_all();
                    while running.tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
        // The marks of the jobs handed back below are written first, so "running" never
        // overwrites their hand-back (bounded: with Redis gone, neither can be written).
        let last = running.seq;
        let mut flushed = running.flushed.clone();
        if tokio::time::timeout(Duration::from_secs(2), flushed.wait(last))
            .await
            .is_err()
        {
            tracing::warn!("job starts not yet written at shutdown; handing back anyway");
        }
        let leftovers: Vec<Arc<(Claimed, Envelope)>> = running
            .inflight
            .lock()
            .expect("lock")
            .drain()
            .map(|(_, v)| v)
            .collect();
        for job in leftovers {
            let (claimed, env) = &*job;
            self.hand_back(claimed, env).await;
        }
        drop(running);
        let _ = writer.await;
        stop_aux.notify_one();
        let _ = heartbeat.await;
        liveness::retire(&self.queue, &consumer, &token).await;
        tracing::info!(consumer = &*consumer, "worker stopped");
        Ok(())
    }

    /// Reports a failed Redis call (not ready) and when to claim again.
    fn failed(
        &self,
        e: &QueueError,
        retry: &mut impl Iterator<Item = Duration>,
    ) -> tokio::time::Instant {
        self.handle.ready.store(false, Ordering::Relaxed);
        let wait = retry.next().unwrap_or(Duration::from_millis(500));
        tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "claiming jobs failed (is Redis reachable?)");
        tokio::time::Instant::now() + wait
    }

    /// Gives an entry back to its stream; on failure it stays pending under this consumer and
    /// is reclaimed by a peer once this worker retires (or its liveness expires).
    async fn hand_back(&self, claimed: &Claimed, env: &Envelope) {
        if let Err(e) = self.queue.hand_back(claimed, env).await {
            tracing::warn!(error = %e, job_id = %env.id, "hand-back failed; a peer reclaims the entry once this worker has stopped");
        }
    }
}
