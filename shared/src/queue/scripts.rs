//! The queue's Lua scripts, loaded once and run with `EVALSHA` (redis-rs falls back to `EVAL`
//! and reloads after a server restart). Each `.lua` file's header names the keys it touches and
//! why it must be atomic. Steps several scripts share (marking a tenant ready, forgetting a
//! stream a consumer no longer owns, forgiving an outage) are files of their own, composed into
//! their callers as local functions, so each is spelled once.

use redis::Script;

use crate::admission::RATE_LUA;

/// The text of `enqueue.lua`, the one idempotent enqueue (also composed into `admit_enqueue`).
const ENQUEUE_LUA: &str = include_str!("lua/enqueue.lua");
/// `ready.lua`: a (lane, tenant) joins the ready index and its lane's wake list gets a token.
const READY_LUA: &str = include_str!("lua/ready.lua");
/// `forget.lua`: a stream leaves a consumer's owned set once nothing of it is pending there.
const FORGET_LUA: &str = include_str!("lua/forget.lua");
/// `outage.lua`: a gap nobody could renew in is given back to every consumer.
const OUTAGE_LUA: &str = include_str!("lua/outage.lua");

/// Every script of the queue.
pub(crate) struct Scripts {
    pub enqueue: Script,
    /// Jobs without idempotency keys, many per call.
    pub enqueue_batch: Script,
    /// `rate.lua` then `enqueue.lua` in one call; single server only (see [`admit_enqueue_lua`]).
    pub admit_enqueue: Script,
    /// Plans a claim (and takes over a dead consumer's entries).
    pub claim: Script,
    /// Marks what a claim read running and settles the tenants that ran dry.
    pub settle: Script,
    pub ack: Script,
    pub retry: Script,
    pub promote: Script,
    pub dead_letter: Script,
    pub handback: Script,
    pub upkeep: Script,
    pub depth: Script,
    pub rate_limit: Script,
    pub replay: Script,
    /// A worker's liveness: its name lease and its expiry in the consumers zset.
    pub live: Script,
    pub retire: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let ready = as_function("mark_ready", READY_LUA);
        let forget = as_function("forget_if_done", FORGET_LUA);
        let outage = as_function("forgive_gap", OUTAGE_LUA);
        let with = |parts: &[&str], body: &str| Script::new(&format!("{}{body}", parts.concat()));
        Self {
            enqueue: Script::new(&enqueue_lua()),
            enqueue_batch: with(&[&ready], include_str!("lua/enqueue_batch.lua")),
            admit_enqueue: Script::new(&admit_enqueue_lua()),
            claim: with(&[&outage], include_str!("lua/claim.lua")),
            settle: with(&[&forget], include_str!("lua/settle.lua")),
            ack: with(&[&forget], include_str!("lua/ack.lua")),
            retry: with(&[&forget], include_str!("lua/retry.lua")),
            promote: with(&[&ready], include_str!("lua/promote.lua")),
            dead_letter: with(&[&forget], include_str!("lua/dead_letter.lua")),
            handback: with(&[&forget, &ready], include_str!("lua/handback.lua")),
            upkeep: with(
                &[&as_function("trim", include_str!("lua/trim.lua")), &ready],
                include_str!("lua/upkeep.lua"),
            ),
            depth: Script::new(include_str!("lua/depth.lua")),
            rate_limit: Script::new(include_str!("lua/rate_limit.lua")),
            replay: with(&[&ready], include_str!("lua/replay.lua")),
            live: with(
                &[&as_function("lease", crate::lease::HOLD_LUA), &outage],
                include_str!("lua/live.lua"),
            ),
            retire: Script::new(include_str!("lua/retire.lua")),
        }
    }
}

impl Scripts {
    /// (name, SHA1) of the scripts a worker runs per job or per claim, to attribute `EVALSHA`
    /// calls (e.g. in `SLOWLOG`) to a script.
    pub(crate) fn hashes(&self) -> Vec<(&'static str, String)> {
        [
            ("claim", &self.claim),
            ("settle", &self.settle),
            ("ack", &self.ack),
            ("enqueue_batch", &self.enqueue_batch),
            ("enqueue", &self.enqueue),
            ("promote", &self.promote),
            ("live", &self.live),
            ("retry", &self.retry),
            ("dead_letter", &self.dead_letter),
            ("handback", &self.handback),
            ("depth", &self.depth),
            ("upkeep", &self.upkeep),
        ]
        .into_iter()
        .map(|(name, script)| (name, script.get_hash().to_owned()))
        .collect()
    }
}

/// Wraps a script file, unchanged, as a local Lua function of its own `KEYS` and `ARGV` (the
/// parameters shadow the globals), so a composed script reuses the file instead of a copy of its
/// algorithm.
fn as_function(name: &str, body: &str) -> String {
    assert!(
        !body.starts_with("#!"),
        "{name}: a script with a shebang cannot be wrapped"
    );
    format!("local function {name}(KEYS, ARGV)\n{body}\nend\n")
}

/// `enqueue.lua` with the `mark_ready` it calls (`ready.lua`).
fn enqueue_lua() -> String {
    format!("{}{ENQUEUE_LUA}", as_function("mark_ready", READY_LUA))
}

/// The request-rate check (`rate.lua`) and, only when it admits, the idempotent enqueue
/// (`enqueue.lua`), as one script: one round trip and one script run instead of two. Its keys
/// are in different Cluster slots (the tenant's rate key, the queue's `{tag}` keys), so it is
/// only ever sent to a single server.
///
/// KEYS: the rate key, then `enqueue.lua`'s three. ARGV: `rate.lua`'s two, then `enqueue.lua`'s
/// ten. Returns `{allowed, retry_after_us, remaining, job_id, created}`; a refusal stores
/// nothing and answers `{0, retry_after_us, 0, '', 0}`.
pub(crate) fn admit_enqueue_lua() -> String {
    format!(
        "-- Composed from rate.lua and enqueue.lua (queue/scripts.rs: admit_enqueue_lua).\n\
         {}{}\
         local r = rate({{KEYS[1]}}, {{ARGV[1], ARGV[2]}})\n\
         if r[1] ~= 1 then\n  return {{r[1], r[2], r[3], '', 0}}\nend\n\
         local e = enqueue({{KEYS[2], KEYS[3], KEYS[4]}}, {{unpack(ARGV, 3, 12)}})\n\
         return {{r[1], r[2], r[3], e[1], e[2]}}\n",
        as_function("rate", RATE_LUA),
        as_function("enqueue", &enqueue_lua()),
    )
}
