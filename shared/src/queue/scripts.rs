//! The queue's Lua scripts, loaded once and run with `EVALSHA` (redis-rs falls back to `EVAL`
//! and reloads after a server restart). Each `.lua` file's header names the keys it touches and
//! why it must be atomic.

use redis::Script;

use crate::admission::RATE_LUA;

/// The text of `enqueue.lua`, the one idempotent enqueue (also composed into `admit_enqueue`).
const ENQUEUE_LUA: &str = include_str!("lua/enqueue.lua");

/// Every script of the queue.
pub(crate) struct Scripts {
    pub enqueue: Script,
    /// `rate.lua` then `enqueue.lua` in one call; single server only (see [`admit_enqueue_lua`]).
    pub admit_enqueue: Script,
    pub retry: Script,
    pub promote: Script,
    pub dead_letter: Script,
    pub reclaim: Script,
    pub extend: Script,
    pub handback: Script,
    pub trim: Script,
    pub rate_limit: Script,
    pub replay: Script,
    pub lease: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            enqueue: Script::new(ENQUEUE_LUA),
            admit_enqueue: Script::new(&admit_enqueue_lua()),
            retry: Script::new(include_str!("lua/retry.lua")),
            promote: Script::new(include_str!("lua/promote.lua")),
            dead_letter: Script::new(include_str!("lua/dead_letter.lua")),
            reclaim: Script::new(include_str!("lua/reclaim.lua")),
            extend: Script::new(include_str!("lua/extend.lua")),
            handback: Script::new(include_str!("lua/handback.lua")),
            trim: Script::new(include_str!("lua/trim.lua")),
            rate_limit: Script::new(include_str!("lua/rate_limit.lua")),
            replay: Script::new(include_str!("lua/replay.lua")),
            lease: Script::new(include_str!("lua/lease.lua")),
        }
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

/// The request-rate check (`rate.lua`) and, only when it admits, the idempotent enqueue
/// (`enqueue.lua`), as one script: one round trip and one script run instead of two. Its keys
/// are in different Cluster slots (the tenant's rate key, the queue's `{tag}` keys), so it is
/// only ever sent to a single server.
///
/// KEYS: the rate key, then `enqueue.lua`'s three. ARGV: `rate.lua`'s two, then `enqueue.lua`'s
/// eight. Returns `{allowed, retry_after_us, remaining, job_id, created}`; a refusal stores
/// nothing and answers `{0, retry_after_us, 0, '', 0}`.
pub(crate) fn admit_enqueue_lua() -> String {
    format!(
        "-- Composed from rate.lua and enqueue.lua (queue/scripts.rs: admit_enqueue_lua).\n\
         {}{}\
         local r = rate({{KEYS[1]}}, {{ARGV[1], ARGV[2]}})\n\
         if r[1] ~= 1 then\n  return {{r[1], r[2], r[3], '', 0}}\nend\n\
         local e = enqueue({{KEYS[2], KEYS[3], KEYS[4]}}, {{unpack(ARGV, 3, 10)}})\n\
         return {{r[1], r[2], r[3], e[1], e[2]}}\n",
        as_function("rate", RATE_LUA),
        as_function("enqueue", ENQUEUE_LUA),
    )
}
