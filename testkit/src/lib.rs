//! Test support shared by every crate's tests: an isolated Redis namespace per test (cleaned up
//! on drop), a fresh database per test, and HTTP fakes that speak the real wire formats of
//! Claude, Discord and Google, as their public API references document them.

pub mod claude_fake;
pub mod db;
pub mod discord_fake;
pub mod google_fake;
pub mod redis_ns;

pub use claude_fake::ClaudeFake;
pub use db::TestDb;
pub use redis_ns::TestRedis;
