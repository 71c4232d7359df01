//! L2: Redis, one string key per entry (msgpack), with a TTL per data type.

use std::time::Duration;

use crate::redis_conn::RedisConn;

use super::entry::{CacheEntry, EntryDecodeError};

/// Why an L2 operation failed.
#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    /// Redis did not answer or refused.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The stored bytes are not an entry.
    #[error(transparent)]
    Decode(#[from] EntryDecodeError),
}

/// Reads the entry at `key`.
pub async fn get(conn: &RedisConn, key: &str) -> Result<Option<CacheEntry>, L2Error> {
    let mut c = conn.clone();
    let bytes: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(&mut c).await?;
    Ok(match bytes {
        Some(b) => Some(CacheEntry::decode(&b)?),
        None => None,
    })
}

/// Writes `entry` at `key` with `ttl` (`SET key value PX ttl`).
pub async fn put(
    conn: &RedisConn,
    key: &str,
    entry: &CacheEntry,
    ttl: Duration,
) -> Result<(), L2Error> {
    let mut c = conn.clone();
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(entry.encode())
        .arg("PX")
        .arg(ttl.as_millis().max(1) as u64)
        .query_async(&mut c)
        .await?;
    Ok(())
}
