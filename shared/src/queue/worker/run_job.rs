//! Starting claimed jobs: poison entries go to the dead-letter stream, the others start in a
//! slot of their lane (or, for a restarted worker's own entries beyond its room, go straight
//! back to their stream), each in a task with its span, ending in an acknowledgement or a
//! failure the queue acts on.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::Retryable as _;
use tracing::Instrument;

use super::finish::Claimed;
use super::writer::{Ack, Mark, Settle, Started, Write};
use super::{claim, JobHandler, Running, WorkerRuntime};
use crate::job::{Envelope, JobError};
use crate::queue::QueueError;

/// Metric handles of one (tenant, kind).
pub(super) struct KindMetrics {
    claimed: prometheus::IntCounter,
    acked: prometheus::IntCounter,
    succeeded: prometheus::Histogram,
}

impl<H: JobHandler> WorkerRuntime<H> {
    /// Starts claimed entries: poison is dead-lettered, what fits its lane's room runs, the rest
    /// (only a restarted worker's own entries can exceed the room) is handed back at once. The
    /// writer gets the start (marks and the claim's settle) before any of the jobs runs, so each
    /// job's mark reaches Redis before its acknowledgement.
    pub(super) async fn start(&self, batch: Vec<Claimed>, settle: Settle, running: &mut Running) {
        let ready = self.triage(batch).await;
        let mut go = Vec::with_capacity(ready.len());
        for (claimed, env) in ready {
            if running.slots.room().for_lane(claimed.lane) == 0 {
                self.hand_back(&claimed, &env).await;
                continue;
            }
            running.slots.start(claimed.lane);
            go.push((claimed, env));
        }
        let marks: Vec<Mark> = go
            .iter()
            .filter(|(c, _)| c.named && !c.marked)
            .map(|(c, env)| Mark {
                status_key: self.queue.keys().status(&env.tenant, &env.id),
                stream: c.stream.clone(),
                entry_id: c.entry_id.clone(),
                deliveries: c.deliveries,
            })
            .collect();
        // Numbered only when sent: a job waits for its start's number to be written, and a
        // number never sent would never be (with nothing to write, the last sent one will do).
        if !marks.is_empty() || !settle.is_empty() {
            running.seq += 1;
            let _ = running.writes.send(Write::Started(Started {
                seq: running.seq,
                marks,
                settle,
            }));
        }
        let seq = running.seq;
        for (claimed, env) in go {
            self.spawn_job(running, seq, claimed, env);
        }
    }

    /// Decodes claimed entries; poison entries go to the dead-letter stream (with their job's
    /// status `dead` whenever the entry names the job). A ready job's raw bytes move into its
    /// envelope, whose payload is a view into them (see [`Claimed::raw`]).
    pub(super) async fn triage(&self, batch: Vec<Claimed>) -> Vec<(Claimed, Envelope)> {
        let max_deliveries = self.queue.config().max_deliveries;
        let mut ready = Vec::with_capacity(batch.len());
        for mut claimed in batch {
            let raw = bytes::Bytes::from(std::mem::take(&mut claimed.raw));
            let decoded = Envelope::decode_shared(&raw);
            let verdict = match &decoded {
                Err(e) => Some(format!("poison entry: {e}")),
                Ok(_) if claimed.deliveries > max_deliveries => Some(format!(
                    "poison entry: delivered {} times without completing (a worker died each time?)",
                    claimed.deliveries
                )),
                Ok(_) => None,
            };
            if let Some(reason) = verdict {
                // Dead-lettered as read (a copy only when it decoded: rare).
                claimed.raw = Vec::from(raw);
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
        // Entries that do not name their job (an older version's): marked here, at once.
        let unmarked: Vec<(&Claimed, &Envelope)> = ready
            .iter()
            .filter(|(c, _)| !c.marked && !c.named)
            .map(|(c, e)| (c, e))
            .collect();
        if let Err(e) = claim::mark_running(&self.queue, &self.options.consumer, &unmarked).await {
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

    /// Runs one job in the slot of its lane the caller took for it; `seq` is its start's number
    /// at the writer.
    fn spawn_job(&self, running: &mut Running, seq: u64, claimed: Claimed, env: Envelope) {
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
        let lane = claimed.lane;
        let job = Arc::new((claimed, env));
        running
            .inflight
            .lock()
            .expect("lock")
            .insert(key.clone(), job.clone());
        let (queue, handler, inflight, writes, mut flushed, freed, finished, slots) = (
            self.queue.clone(),
            self.handler.clone(),
            running.inflight.clone(),
            running.writes.clone(),
            running.flushed.clone(),
            running.freed.clone(),
            self.handle.finished.clone(),
            running.slots.clone(),
        );
        running.tasks.spawn(
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
                        let _ = writes.send(Write::Ack(Ack {
                            stream: claimed.stream.clone(),
                            entry_id: claimed.entry_id.clone(),
                            status_key: queue.keys().status(&env.tenant, &env.id),
                            result: out.result.map(|r| r.to_string()),
                            deliveries: claimed.deliveries,
                        }));
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
                        // After the job's mark is written (so "running" never overwrites what
                        // the failure records). Keep trying, holding the slot: the entry stays
                        // pending under this live worker until the failure is recorded (peers
                        // never take it), and a shutdown past its grace hands it back instead.
                        flushed.wait(seq).await;
                        let recorded = (|| queue.fail(claimed, env, &err))
                            .retry(super::until_recorded(Duration::from_millis(50)))
                            .notify(|e: &QueueError, _| {
                                tracing::warn!(error = %e, "recording a job failure failed; retrying");
                            })
                            .await;
                        debug_assert!(recorded.is_ok(), "retried without limit");
                    }
                }
                inflight.lock().expect("lock").remove(&key);
                finished.fetch_add(1, Ordering::Relaxed);
                slots.finish(lane);
                freed.notify_one();
            }
            .instrument(span),
        );
    }
}
