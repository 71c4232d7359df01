//! Claiming: one `claim.lua` call plans what this worker can start now and no more: it takes
//! over the entries of a consumer presumed dead first, then picks the tenants to read from,
//! rotating the lanes' ready indexes, a share of each lane's room per tenant; the worker then
//! reads those streams and settles them (`read.rs`). Its cost grows with the entries claimed,
//! not with the number of tenants. Also a restarted consumer's own pending entries, the
//! promotion of due delayed jobs and the depth gauges this worker exports.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::finish::Claimed;
use super::read::{read_planned, Planned};
use super::slots::Room;
use super::writer::Settle;
use crate::ids::{JobId, TenantId};
use crate::job::{Envelope, Lane};
use crate::queue::{now_ms, Queue, QueueError, GROUP};

/// How often a worker refreshes its queue depth gauges (read from the published figures).
const DEPTH_EVERY: Duration = Duration::from_secs(5);

/// How often a worker promotes due delayed jobs (cheap and idempotent, so retries flow without a
/// scheduler).
const PROMOTE_EVERY: Duration = Duration::from_millis(200);

/// Tenants one claim visits at most, so one call stays short whatever the room; a claim stopped
/// by it says so and the worker claims again at once.
const MAX_VISITS: usize = 128;

/// Entries one claim takes at most, so one call stays well under a millisecond of Redis time;
/// a worker with more room claims again at once.
pub(crate) const MAX_ENTRIES: usize = 100;

/// Most of its own pending entries a restarted worker takes back in one call.
const OWN_AT_ONCE: usize = 100_000;

/// One claimed entry as `claim.lua` answers it: lane, tenant, entry id, envelope, deliveries,
/// job id ('' when the entry has none), marked running (0/1).
type Entry = (String, String, String, Vec<u8>, u32, String, i64);

/// What one claim took.
pub(crate) struct Batch {
    pub entries: Vec<Claimed>,
    /// What the read leaves to settle (the worker's writer does it).
    pub settle: Settle,
    /// The claim stopped at its visit bound with room left: claim again before waiting.
    pub more: bool,
}

/// Promotion of due delayed jobs and the depth gauges, done by the claiming loop when due.
pub(crate) struct Upkeep {
    queue: Queue,
    promote_delayed: bool,
    promoted: Option<Instant>,
    /// When the depth gauges were last refreshed.
    measured: Option<Instant>,
}

impl Upkeep {
    pub fn new(queue: Queue, promote_delayed: bool) -> Self {
        Self {
            queue,
            promote_delayed,
            promoted: None,
            measured: None,
        }
    }

    /// Promotes due delayed jobs and refreshes the depth gauges, each when its time has come.
    pub async fn run_if_due(&mut self) -> Result<(), QueueError> {
        if self.promote_delayed && self.promoted.is_none_or(|t| t.elapsed() >= PROMOTE_EVERY) {
            self.queue.promote_due().await?;
            self.promoted = Some(Instant::now());
        }
        if self.measured.is_none_or(|t| t.elapsed() >= DEPTH_EVERY) {
            // A failure here is not a claim failure.
            if let Err(e) = self.queue.refresh_depth_gauges().await {
                tracing::debug!(error = %e, "refreshing queue depth gauges failed");
            }
            self.measured = Some(Instant::now());
        }
        Ok(())
    }
}

/// How long a plan made ahead stays good; an older one is dropped and the claim plans afresh.
const PLAN_FRESH: Duration = Duration::from_millis(100);

/// How often a claim runs the whole script (taking over the entries of consumers presumed dead)
/// while plans made ahead would spare it.
const FULL_EVERY: Duration = Duration::from_millis(200);

/// Plans made ahead kept at most (one per claim in flight is enough).
const PLANS_AHEAD: usize = 4;

/// A plan made ahead, in the round trip of an earlier claim's read.
struct Ahead {
    made: Instant,
    more: bool,
    plan: Vec<Planned>,
}

#[derive(Default)]
struct AheadState {
    plans: VecDeque<Ahead>,
    /// When a claim last ran the whole script.
    full: Option<Instant>,
}

/// Claims for one worker (cheap to clone: a claim runs as a future of its own, so a worker can
/// have a claim in flight while it starts what the previous one took).
///
/// A claim is one round trip when it can: each read carries, in the same pipeline, the plan of
/// the next claim (`claim.lua` in mode `plan`), so the next claim only reads. A plan rotates the
/// ready index and reserves nothing, so a stale one costs at most a short read (settled as
/// usual); it is fitted to the room the claim really has, and dropped after [`PLAN_FRESH`].
/// Every [`FULL_EVERY`], and whenever no fresh plan is at hand, a claim plans afresh with the
/// take-over of dead consumers' entries.
#[derive(Clone)]
pub(crate) struct Claims {
    queue: Queue,
    consumer: Arc<str>,
    ahead: Arc<Mutex<AheadState>>,
}

impl Claims {
    pub fn new(queue: Queue, consumer: Arc<str>) -> Self {
        Self {
            queue,
            consumer,
            ahead: Arc::default(),
        }
    }

    /// A fresh plan made ahead, unless the whole script is due.
    fn take_ahead(&self) -> Option<Ahead> {
        let mut state = self.ahead.lock().expect("lock");
        if state.full.is_none_or(|t| t.elapsed() >= FULL_EVERY) {
            state.full = Some(Instant::now());
            state.plans.clear();
            return None;
        }
        while let Some(a) = state.plans.pop_front() {
            if a.made.elapsed() < PLAN_FRESH {
                return Some(a);
            }
        }
        None
    }

    fn keep_ahead(&self, more: bool, plan: Vec<Planned>) {
        if plan.is_empty() {
            return;
        }
        let mut state = self.ahead.lock().expect("lock");
        if state.plans.len() >= PLANS_AHEAD {
            state.plans.pop_front();
        }
        state.plans.push_back(Ahead {
            made: Instant::now(),
            more,
            plan,
        });
    }

    /// Claims within `room` (at most [`MAX_ENTRIES`]): entries of a dead consumer first, then new
    /// entries by lane priority, tenants in rotation.
    pub async fn claim(self, room: Room) -> Result<Batch, QueueError> {
        let capped = room.capped(MAX_ENTRIES);
        // A plan made ahead is used only if all of it fits the room: a tenant cut from it would
        // lose its turn (planning moved it to the tail). One that does not fit is given back to
        // the head of the ready index by the claim that plans afresh.
        let (ahead, given_up) = match self.take_ahead() {
            Some(a) if fits(&a.plan, capped) => (Some(a), Vec::new()),
            Some(a) => (None, a.plan),
            None => (None, Vec::new()),
        };
        let (more, mut entries, plan) = match ahead {
            Some(a) => (a.more, Vec::new(), a.plan),
            None => {
                let (more, entries, plan) = self.invoke("claim", &capped, &given_up).await?;
                (more == 1, entries, plan)
            }
        };
        let next = self.invocation("plan", &capped, &[]);
        let (read, settle, then) =
            read_planned(&self.queue, &self.consumer, &plan, Some(&next)).await?;
        match then.map(|answer| answer.map_err(QueueError::from).and_then(|v| self.parse(v))) {
            Some(Ok((next_more, _, next_plan))) => self.keep_ahead(next_more == 1, next_plan),
            // Not loaded (Redis restarted): the next claim runs the script whole, which loads it.
            Some(Err(e)) => tracing::debug!(error = %e, "planning the next claim ahead failed"),
            None => {}
        }
        entries.extend(read);
        let filled = entries.len() == MAX_ENTRIES && room.total > MAX_ENTRIES;
        let short = !settle.short.is_empty();
        Ok(Batch {
            entries,
            settle,
            more: more || short || filled,
        })
    }

    /// Every entry still pending for this consumer name (a restarted worker's, after a crash),
    /// claimed again by it, whatever the room: the runtime starts what fits and hands back the
    /// rest at once.
    pub async fn own_pending(&self) -> Result<Vec<Claimed>, QueueError> {
        // Far above any concurrency, and a number Lua passes on to Redis as an integer.
        let all = Room {
            total: OWN_AT_ONCE,
            default_and_bulk: OWN_AT_ONCE,
            bulk: OWN_AT_ONCE,
        };
        let (_, entries, _) = self.invoke("own", &all, &[]).await?;
        if !entries.is_empty() {
            tracing::info!(
                entries = entries.len(),
                "this consumer's pending entries from an earlier run are taken back first"
            );
        }
        Ok(entries)
    }

    /// One claim of up to `free` entries (at most a worker's per-call bound) of any lane, nothing
    /// else (no promotion, no gauges); how many it took. The entries stay pending under this consumer.
    pub async fn claim_only(&self, free: usize) -> Result<usize, QueueError> {
        let free = free.min(MAX_ENTRIES);
        let room = Room {
            total: free,
            default_and_bulk: free,
            bulk: free,
        };
        let (_, taken, plan) = self.invoke("claim", &room, &[]).await?;
        let (read, settle, _) = read_planned(&self.queue, &self.consumer, &plan, None).await?;
        super::writer::settle_now(&self.queue, &self.consumer, &settle).await?;
        Ok(taken.len() + read.len())
    }

    /// Runs `claim.lua`: whether the visit bound stopped it, the entries it took over, and the
    /// streams it planned for this worker to read.
    async fn invoke(
        &self,
        mode: &str,
        room: &Room,
        given_up: &[Planned],
    ) -> Result<(i64, Vec<Claimed>, Vec<Planned>), QueueError> {
        let answer: redis::Value = self
            .invocation(mode, room, given_up)
            .invoke_async(&mut self.queue.conn())
            .await?;
        self.parse(answer)
    }

    /// `claim.lua` in `mode` for `room` (run alone, or pipelined by its hash: the script is
    /// loaded by the claims that run it alone), with the tenants of a plan `given_up`.
    fn invocation(
        &self,
        mode: &str,
        room: &Room,
        given_up: &[Planned],
    ) -> redis::ScriptInvocation<'_> {
        let keys = self.queue.keys();
        let mut invocation = self.queue.scripts().claim.prepare_invoke();
        invocation
            .key(keys.consumers())
            .key(keys.owned(&self.consumer))
            .key(keys.consumers_tick())
            .arg(keys.queue_keys_prefix())
            .arg(GROUP)
            .arg(&*self.consumer)
            .arg(room.total)
            .arg(room.default_and_bulk)
            .arg(room.bulk)
            .arg(self.queue.config().claim_idle.as_millis() as u64)
            .arg(MAX_VISITS)
            .arg(mode);
        for p in given_up {
            invocation.arg(p.lane.as_str()).arg(p.tenant.as_str());
        }
        invocation
    }

    /// `claim.lua`'s answer: the visit bound's flag, the entries taken over, the plan.
    fn parse(&self, answer: redis::Value) -> Result<(i64, Vec<Claimed>, Vec<Planned>), QueueError> {
        let (more, raw, flat_plan): (i64, Vec<Entry>, Vec<String>) =
            redis::from_redis_value(answer).map_err(redis::RedisError::from)?;
        let mut out = Vec::with_capacity(raw.len());
        for entry in raw {
            let c = self.to_claimed(entry)?;
            if c.deliveries > 1 {
                tracing::info!(
                    stream = c.stream,
                    entry_id = c.entry_id,
                    deliveries = c.deliveries,
                    "took over a job delivered before (its worker died, or this one restarted)"
                );
                self.queue
                    .metrics()
                    .reclaimed
                    .with_label_values(&[c.tenant.as_str(), c.lane.as_str()])
                    .inc();
            }
            out.push(c);
        }
        let mut plan = Vec::with_capacity(flat_plan.len() / 3);
        for p in flat_plan.chunks_exact(3) {
            let lane = Lane::parse(&p[0]).ok_or_else(|| {
                QueueError::Corrupt(format!("claim planned an unknown lane {}", p[0]))
            })?;
            let count = p[2]
                .parse()
                .map_err(|_| QueueError::Corrupt(format!("claim planned a count of {}", p[2])))?;
            plan.push(Planned {
                lane,
                tenant: TenantId::new(p[1].clone()),
                count,
            });
        }
        Ok((more, out, plan))
    }

    fn to_claimed(&self, entry: Entry) -> Result<Claimed, QueueError> {
        let (lane, tenant, entry_id, raw, deliveries, id, marked) = entry;
        let lane = Lane::parse(&lane)
            .ok_or_else(|| QueueError::Corrupt(format!("claim answered an unknown lane {lane}")))?;
        let tenant = TenantId::new(tenant);
        let named = !id.is_empty();
        let job_id = if id.is_empty() {
            Envelope::probe_id(&raw)
        } else {
            Some(JobId::new(id))
        };
        Ok(Claimed {
            consumer: self.consumer.clone(),
            job_id,
            marked: marked == 1,
            named,
            stream: self.queue.keys().stream(&tenant, lane),
            entry_id,
            raw,
            tenant,
            lane,
            deliveries,
        })
    }
}

/// True when all of `plan` fits `room`, lane by lane.
fn fits(plan: &[Planned], mut room: Room) -> bool {
    plan.iter().all(|p| room.take(p.lane, p.count) == p.count)
}

/// Marks jobs running whose entries did not name their job id (written by an older version), so
/// neither the claim script nor the writer could (one pipeline, before the jobs start).
pub(crate) async fn mark_running(
    queue: &Queue,
    consumer: &str,
    jobs: &[(&Claimed, &Envelope)],
) -> Result<(), QueueError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut pipe = redis::pipe();
    for (claimed, env) in jobs {
        pipe.cmd("HSET")
            .arg(queue.keys().status(&env.tenant, &env.id))
            .arg("state")
            .arg("running")
            .arg("attempt")
            .arg(env.attempt)
            .arg("consumer")
            .arg(consumer)
            .arg("updated")
            .arg(now)
            .arg("deliveries")
            .arg(claimed.deliveries)
            .ignore();
    }
    let _: () = pipe.query_async(&mut queue.conn()).await?;
    Ok(())
}
