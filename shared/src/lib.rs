//! The library every Onomancer role shares: tenant context and configuration, the job envelope and
//! the Redis Streams queue, the tiered cache, the Claude client, integrations (Discord, Google,
//! document fetching), the usage store, metrics and telemetry.
//!
//! It knows nothing about HTTP routing or webhook formats: those belong to the gateway.

pub mod activity;
pub mod admission;
pub mod cache;
pub mod db;
pub mod decisions;
pub mod ids;
pub mod integrations;
pub mod job;
pub mod keys;
pub mod lease;
pub mod llm;
pub mod memory;
pub mod ops_http;
pub mod payloads;
pub mod queue;
pub mod redis_conn;
pub mod role;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod tenant;
pub mod text;
pub mod transform_job;
pub mod upstream;
pub mod usage;

pub use ids::{ContentHash, JobId, Persona, TenantId};
pub use job::{Envelope, JobError, JobKind, JobOutcome, JobPayload, Lane, NewJob};
pub use keys::KeySpace;
pub use redis_conn::RedisConn;
pub use text::SharedText;
