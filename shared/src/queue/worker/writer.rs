//! The worker's writer: one task, on a connection of its own, that writes in the order the
//! runtime sent them what a claim leaves to do (mark the jobs it read running, record the
//! streams read in the owned set, settle the tenants that ran dry) and every acknowledgement,
//! in batched pipelines. A claim's last round trip is gone from the claim's path, and a job that
//! ends within the same batch as its start gets one status write instead of two.
//!
//! Order is the whole point: a job starts only after its start is queued here, so its mark
//! always reaches Redis before its acknowledgement. Paths that write a job's status elsewhere
//! (retry, deferral, dead letter, hand-back) first wait until the writer has flushed that job's
//! start ([`Flushed::wait`]), so a late "running" never overwrites them.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable as _;
use tokio::sync::{mpsc, watch};

use crate::ids::TenantId;
use crate::job::Lane;
use crate::queue::{now_ms, Queue, QueueError, GROUP};
use crate::redis_conn::RedisConn;

/// Most messages one batch writes: a batch is one pipeline Redis runs back to back, so a bounded
/// one keeps every other client's wait (claims, the gateway) short.
const BATCH: usize = 1000;

/// Streams per `ack.lua` call.
const FORGET_CHUNK: usize = 100;

/// What the writer writes.
pub(crate) enum Write {
    /// A claim's jobs were started: mark them running and settle the claim.
    Started(Started),
    /// A job succeeded.
    Ack(Ack),
}

/// The jobs one claim read and the runtime started, and what the claim leaves to settle.
pub(crate) struct Started {
    /// Sequence number of this start; [`Flushed`] reports the highest one written.
    pub seq: u64,
    /// Jobs to mark running.
    pub marks: Vec<Mark>,
    /// Streams and tenants to settle.
    pub settle: Settle,
}

/// A job a claim read, to be marked running.
pub(crate) struct Mark {
    pub status_key: String,
    pub stream: String,
    pub entry_id: String,
    pub deliveries: u32,
}

/// What a claim's read leaves to settle: the streams it got entries from (they join the owned
/// set while something of this consumer is pending there) and the tenants whose read came up
/// short (they leave the ready index if their stream is drained).
#[derive(Default)]
pub(crate) struct Settle {
    pub read: Vec<String>,
    pub short: Vec<(Lane, TenantId)>,
}

impl Settle {
    /// Nothing to settle.
    pub fn is_empty(&self) -> bool {
        self.read.is_empty() && self.short.is_empty()
    }
}

/// A finished job waiting for its batched acknowledgement.
pub(crate) struct Ack {
    pub stream: String,
    pub entry_id: String,
    pub status_key: String,
    pub result: Option<String>,
    /// Times Redis delivered the entry (written with the ack when the start's mark was skipped).
    pub deliveries: u32,
}

/// The highest start sequence the writer has written.
#[derive(Clone)]
pub(crate) struct Flushed(watch::Receiver<u64>);

impl Flushed {
    /// Waits until the start numbered `seq` is written (at once if it is).
    pub async fn wait(&mut self, seq: u64) {
        // An error means the writer is gone: nothing will be written after this anyway.
        let _ = self.0.wait_for(|done| *done >= seq).await;
    }
}

/// Starts the writer on `conn`; it runs until every sender is dropped, then returns after the
/// last batch is written.
pub(crate) fn spawn(
    queue: Queue,
    conn: RedisConn,
    consumer: Arc<str>,
) -> (
    mpsc::UnboundedSender<Write>,
    Flushed,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = watch::channel(0);
    let task = tokio::spawn(run(queue, conn, consumer, rx, done_tx));
    (tx, Flushed(done_rx), task)
}

async fn run(
    queue: Queue,
    conn: RedisConn,
    consumer: Arc<str>,
    mut rx: mpsc::UnboundedReceiver<Write>,
    done: watch::Sender<u64>,
) {
    // Loaded up front, so the pipelined `EVALSHA`s find them (see `write` for a restart).
    for script in [&queue.scripts().ack, &queue.scripts().settle] {
        if let Err(e) = script.prepare_invoke().load_async(&mut conn.clone()).await {
            tracing::debug!(error = %e, "loading a script failed; it is loaded on first use");
        }
    }
    let mut batch: Vec<Write> = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        // The entries stay pending until written (so nothing is lost); keep trying.
        let written = (|| write(&queue, &conn, &consumer, &batch))
            .retry(super::until_recorded(Duration::from_millis(20)))
            .notify(|e: &QueueError, _| {
                tracing::warn!(error = %e, writes = batch.len(), "writing job starts and acknowledgements failed; retrying");
            })
            .await;
        debug_assert!(written.is_ok(), "retried without limit");
        let seq = batch
            .iter()
            .filter_map(|w| match w {
                Write::Started(s) => Some(s.seq),
                Write::Ack(_) => None,
            })
            .max();
        if let Some(seq) = seq {
            done.send_modify(|d| *d = (*d).max(seq));
        }
        batch.clear();
    }
}

/// One batch, in one pipeline, in order: each start's marks (skipped for jobs acknowledged in
/// this same batch, whose acknowledgement then carries the mark's fields) and its settle call;
/// each acknowledged job's status (before its `XACK`: if the process dies in between, the job
/// re-runs rather than being acknowledged with a stale status); one `XACK` per stream; then
/// `ack.lua` drops the streams where nothing is pending any more from the owned set.
async fn write(
    queue: &Queue,
    conn: &RedisConn,
    consumer: &str,
    batch: &[Write],
) -> Result<(), QueueError> {
    let now = now_ms();
    let acked: HashSet<(&str, &str)> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Ack(a) => Some((a.stream.as_str(), a.entry_id.as_str())),
            Write::Started(_) => None,
        })
        .collect();
    let mut skipped: HashSet<(&str, &str)> = HashSet::new();
    let mut settles: Vec<&Settle> = Vec::new();
    let mut by_stream: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut pipe = redis::pipe();
    for w in batch {
        match w {
            Write::Started(s) => {
                for m in &s.marks {
                    let key = (m.stream.as_str(), m.entry_id.as_str());
                    if acked.contains(&key) {
                        skipped.insert(key);
                        continue;
                    }
                    pipe.cmd("HSET")
                        .arg(&m.status_key)
                        .arg("state")
                        .arg("running")
                        .arg("consumer")
                        .arg(consumer)
                        .arg("updated")
                        .arg(now)
                        .arg("deliveries")
                        .arg(m.deliveries)
                        .ignore();
                }
                if !s.settle.is_empty() {
                    pipe.invoke_script(&settle_invocation(queue, consumer, &s.settle))
                        .ignore();
                    settles.push(&s.settle);
                }
            }
            Write::Ack(a) => {
                let cmd = pipe
                    .cmd("HSET")
                    .arg(&a.status_key)
                    .arg("state")
                    .arg("succeeded")
                    .arg("updated")
                    .arg(now);
                if let Some(r) = &a.result {
                    cmd.arg("result").arg(r);
                }
                if skipped.contains(&(a.stream.as_str(), a.entry_id.as_str())) {
                    cmd.arg("consumer")
                        .arg(consumer)
                        .arg("deliveries")
                        .arg(a.deliveries);
                }
                cmd.ignore();
                pipe.cmd("HINCRBY")
                    .arg(&a.status_key)
                    .arg("completions")
                    .arg(1)
                    .ignore();
                by_stream.entry(&a.stream).or_default().push(&a.entry_id);
            }
        }
    }
    for (stream, ids) in &by_stream {
        pipe.cmd("XACK").arg(*stream).arg(GROUP).arg(ids).ignore();
    }
    let streams: Vec<&&str> = by_stream.keys().collect();
    // A bounded number of streams per call, so each stays well under a millisecond.
    for chunk in streams.chunks(FORGET_CHUNK) {
        pipe.invoke_script(&forget_invocation(queue, consumer, chunk))
            .ignore();
    }
    if pipe.is_empty() {
        // Only starts with nothing left to write (every mark skipped, nothing to settle).
        return Ok(());
    }
    match pipe.query_async::<()>(&mut conn.clone()).await {
        Err(e) if e.code() == Some("NOSCRIPT") => {
            // A script is not loaded (Redis restarted since): the plain commands ran and are
            // not repeated (`completions` counts each run once); the scripts, idempotent, run
            // again one by one, which loads them.
            for settle in settles {
                settle_invocation(queue, consumer, settle)
                    .invoke_async::<i64>(&mut conn.clone())
                    .await?;
            }
            for chunk in streams.chunks(FORGET_CHUNK) {
                forget_invocation(queue, consumer, chunk)
                    .invoke_async::<i64>(&mut conn.clone())
                    .await?;
            }
            Ok(())
        }
        other => Ok(other?),
    }
}

/// `ack.lua` over `streams` (pipelined by its hash, or run alone).
fn forget_invocation<'a>(
    queue: &'a Queue,
    consumer: &str,
    streams: &[&&str],
) -> redis::ScriptInvocation<'a> {
    let mut inv = queue.scripts().ack.prepare_invoke();
    inv.key(queue.keys().owned(consumer))
        .arg(GROUP)
        .arg(consumer)
        .arg(streams);
    inv
}

/// `settle.lua` for `settle` (pipelined by its hash, or run alone).
fn settle_invocation<'a>(
    queue: &'a Queue,
    consumer: &str,
    settle: &Settle,
) -> redis::ScriptInvocation<'a> {
    let keys = queue.keys();
    let mut inv = queue.scripts().settle.prepare_invoke();
    inv.key(keys.owned(consumer))
        .arg(keys.queue_keys_prefix())
        .arg(GROUP)
        .arg(consumer)
        .arg(settle.read.len())
        .arg(&settle.read);
    for (lane, tenant) in &settle.short {
        inv.arg(lane.as_str()).arg(tenant.as_str());
    }
    inv
}

/// Settles a claim at once, on the queue's shared connection (claims made outside a running
/// worker, which has no writer).
pub(crate) async fn settle_now(
    queue: &Queue,
    consumer: &str,
    settle: &Settle,
) -> Result<(), QueueError> {
    if !settle.is_empty() {
        settle_invocation(queue, consumer, settle)
            .invoke_async::<i64>(&mut queue.conn())
            .await?;
    }
    Ok(())
}
