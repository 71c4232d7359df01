//! The queue's Lua scripts, loaded once and run with `EVALSHA` (redis-rs falls back to `EVAL`
//! and reloads after a server restart). Each `.lua` file's header names the keys it touches and
//! why it must be atomic.

use redis::Script;

/// Every script of the queue.
pub(crate) struct Scripts {
    pub enqueue: Script,
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
            enqueue: Script::new(include_str!("lua/enqueue.lua")),
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
