//! Cross-worker single-flight: one worker computes a missing value while every other worker that
//! wants it waits for a signal and then reads the cache.
//!
//! - The lock is a [`Leases`] lease: taken if free, renewed every third of the lease and released
//!   by token, so a crashed holder blocks the others for at most one lease.
//! - The signal is a per-key "done" list: on release the holder `LPUSH`es a token and sets a
//!   short expiry; each waiter `BLPOP`s it (timeout = the lease) and pushes it back, so every
//!   waiter wakes in turn (a chain), however many there are. A woken waiter re-reads the cache
//!   and, if the value is still missing (the holder failed or crashed), tries the lock itself.
//! - Every command touches one key, so this works on Redis Cluster. `BLPOP` blocks its
//!   connection, so waits use dedicated connections (pooled), never the shared multiplexed one;
//!   in Cluster mode waits poll with a short backoff instead.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;

use crate::lease::{Leases, Take};
use crate::redis_conn::RedisConn;

/// The lock and signal keys of one cache key.
#[derive(Clone, Debug)]
pub struct FlightKeys {
    /// The lease lock.
    pub lock: String,
    /// The "done" signal list.
    pub done: String,
}

/// Single-flight coordination over Redis.
#[derive(Clone)]
pub struct Flight {
    conn: RedisConn,
    /// Opens dedicated connections for blocking waits (single-server mode only).
    waiter_client: Option<redis::Client>,
    /// Idle dedicated connections.
    idle: Arc<Mutex<Vec<MultiplexedConnection>>>,
    lease: Duration,
    /// The lock's lease scripts.
    leases: Leases,
}

impl Flight {
    /// Coordination over `conn`; `redis_url` (single-server form) enables blocking waits.
    pub fn new(conn: RedisConn, redis_url: Option<&str>, lease: Duration) -> Self {
        let waiter_client = redis_url
            .filter(|u| !u.contains(',') && !conn.is_cluster())
            .and_then(|u| redis::Client::open(u).ok());
        Self {
            waiter_client,
            idle: Arc::new(Mutex::new(Vec::new())),
            lease,
            leases: Leases::new(conn.clone()),
            conn,
        }
    }

    /// The lease length.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Tries to become the one computing worker. `Ok(None)`: someone else holds the lock.
    pub async fn try_acquire(&self, keys: &FlightKeys) -> redis::RedisResult<Option<Lease>> {
        let token = Leases::token();
        if let Take::Held { .. } = self.leases.take(&keys.lock, &token, self.lease).await? {
            return Ok(None);
        }
        let mut c = self.conn.clone();
        // A signal left by an earlier flight would only cause a spurious wake; clear it anyway.
        let _: () = redis::cmd("DEL")
            .arg(&keys.done)
            .query_async(&mut c)
            .await?;
        let renewer = tokio::spawn(renew_loop(
            self.leases.clone(),
            keys.lock.clone(),
            token.clone(),
            self.lease,
        ));
        Ok(Some(Lease {
            flight: self.clone(),
            keys: keys.clone(),
            token,
            renewer: Some(renewer),
        }))
    }

    /// Waits until the holder signals completion or `timeout` passes (whichever first).
    pub async fn wait(&self, keys: &FlightKeys, timeout: Duration) -> redis::RedisResult<()> {
        let Some(client) = &self.waiter_client else {
            // Cluster mode: poll.
            tokio::time::sleep(timeout.min(Duration::from_millis(100))).await;
            return Ok(());
        };
        let pooled = self.idle.lock().expect("pool lock").pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_response_timeout(None)
                    .set_connection_timeout(Some(Duration::from_secs(2)));
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?
            }
        };
        let secs = timeout.as_secs_f64().max(0.01);
        let popped: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(&keys.done)
            .arg(secs)
            .query_async(&mut conn)
            .await?;
        if let Some((_, token)) = popped {
            // Pass the wake-up on to the next waiter.
            let _: () = redis::pipe()
                .atomic()
                .cmd("LPUSH")
                .arg(&keys.done)
                .arg(token)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&keys.done)
                .arg(self.lease.as_millis() as u64)
                .ignore()
                .query_async(&mut conn)
                .await?;
        }
        self.idle.lock().expect("pool lock").push(conn);
        Ok(())
    }
}

async fn renew_loop(leases: Leases, lock: String, token: String, lease: Duration) {
    let every = lease / 3;
    loop {
        tokio::time::sleep(every).await;
        match leases.renew(&lock, &token, lease).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(lock = %lock, "single-flight lease lost before the value was computed");
                return;
            }
            Err(e) => {
                tracing::warn!(lock = %lock, error = %e, "single-flight lease renewal failed")
            }
        }
    }
}

/// The held lock; release it with [`Lease::release`] (dropping it releases in the background).
pub struct Lease {
    flight: Flight,
    keys: FlightKeys,
    token: String,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl Lease {
    /// Releases the lock and wakes the waiters.
    pub async fn release(mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        release(&self.flight, &self.keys, &self.token).await;
    }
}

async fn release(flight: &Flight, keys: &FlightKeys, token: &str) {
    let released = flight.leases.release(&keys.lock, token).await;
    if let Err(e) = released {
        tracing::warn!(lock = %keys.lock, error = %e, "single-flight release failed; the lease will expire");
    }
    let mut c = flight.conn.clone();
    let signalled: redis::RedisResult<()> = redis::pipe()
        .atomic()
        .cmd("LPUSH")
        .arg(&keys.done)
        .arg(token)
        .ignore()
        .cmd("PEXPIRE")
        .arg(&keys.done)
        .arg(flight.lease.as_millis() as u64)
        .ignore()
        .query_async(&mut c)
        .await;
    if let Err(e) = signalled {
        tracing::warn!(lock = %keys.lock, error = %e, "single-flight signal failed; waiters wake at their timeout");
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
            // Not released explicitly (cancelled or panicked): release in the background.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let flight = self.flight.clone();
                let keys = self.keys.clone();
                let token = std::mem::take(&mut self.token);
                handle.spawn(async move { release(&flight, &keys, &token).await });
            }
        }
    }
}
