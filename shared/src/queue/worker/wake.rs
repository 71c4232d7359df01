//! Waiting for new work without reading any stream: an idle worker blocks (`BLPOP`, on a
//! connection of its own) on the wake lists of the lanes it has room for. Enqueues, promotions,
//! replays and hand-backs push a token when a lane gets ready work; a claim that leaves work
//! behind pushes one for the next idle worker.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::job::Lane;
use crate::keys::KeySpace;
use crate::queue::QueueError;
use crate::redis_conn::RedisConn;

/// A `BLPOP` in flight: the (wake list, token) it popped, or `None` at its timeout.
type PendingPop = JoinHandle<redis::RedisResult<Option<(String, String)>>>;

/// One worker's wait for a wake token. The `BLPOP` runs in a task of its own and is kept across
/// waits, so a wait given up for a freed slot never loses a token the server already popped.
pub(crate) struct Waker {
    conn: RedisConn,
    keys: KeySpace,
    block: Duration,
    pending: Option<PendingPop>,
}

impl Waker {
    pub fn new(conn: RedisConn, keys: KeySpace, block: Duration) -> Self {
        Self {
            conn,
            keys,
            block,
            pending: None,
        }
    }

    /// Waits until a token arrives on the wake list of one of `lanes` (returning that lane), or
    /// `block` passes (`None`). Cancel-safe: a wait dropped half-way is picked up by the next.
    pub async fn wait(&mut self, lanes: &[Lane]) -> Result<Option<Lane>, QueueError> {
        if self.pending.is_none() {
            let keys: Vec<String> = lanes.iter().map(|l| self.keys.wake(*l)).collect();
            let timeout = self.block.as_secs_f64().max(0.01);
            let mut conn = self.conn.clone();
            self.pending = Some(tokio::spawn(async move {
                redis::cmd("BLPOP")
                    .arg(keys)
                    .arg(timeout)
                    .query_async(&mut conn)
                    .await
            }));
        }
        let joined = self.pending.as_mut().expect("set above").await;
        self.pending = None;
        let popped = joined.map_err(|e| QueueError::Corrupt(format!("wake task: {e}")))??;
        Ok(popped.and_then(|(key, _)| Lane::ALL.into_iter().find(|l| self.keys.wake(*l) == key)))
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        if let Some(task) = self.pending.take() {
            task.abort();
        }
    }
}
