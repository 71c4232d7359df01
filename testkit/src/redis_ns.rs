//! An isolated key namespace on the machine's real Redis for one test; its keys are deleted when
//! the value is dropped, so tests never `FLUSHALL` and can run in parallel.

use onomancer_shared::{KeySpace, RedisConn};

/// The shared Redis every test uses (the machine's, or `TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A connection plus a namespace nobody else uses.
pub struct TestRedis {
    /// Connection to the test Redis.
    pub conn: RedisConn,
    /// The namespace (`t-<uuid>`) every key of this test lives under.
    pub keys: KeySpace,
    /// The namespace's name, for passing to child processes as `ONOMANCER_NAMESPACE`.
    pub name: String,
}

impl TestRedis {
    /// Connects and picks a fresh namespace.
    pub async fn new() -> Self {
        let name = format!("t-{}", uuid::Uuid::new_v4().simple());
        let conn = RedisConn::connect(&redis_url())
            .await
            .expect("the test Redis at 127.0.0.1:6379 must be running");
        Self {
            conn,
            keys: KeySpace::isolated(&name),
            name,
        }
    }

    /// Deletes every key of the namespace.
    pub async fn cleanup(&self) {
        let mut c = self.conn.clone();
        for pattern in self.keys.all_keys_pattern() {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut c)
                    .await
                    .expect("scan");
                if !keys.is_empty() {
                    let _: () = redis::cmd("UNLINK")
                        .arg(&keys)
                        .query_async(&mut c)
                        .await
                        .expect("unlink");
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        // Cleanup needs async I/O; do it on a separate thread with its own runtime so drop works
        // from inside a tokio test.
        let url = redis_url();
        let patterns = self.keys.all_keys_pattern();
        let _ = std::thread::spawn(move || {
            let Ok(client) = redis::Client::open(url) else {
                return;
            };
            let Ok(mut c) = client.get_connection() else {
                return;
            };
            for pattern in patterns {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(&pattern)
                    .query(&mut c)
                    .unwrap_or_default();
                for chunk in keys.chunks(1000) {
                    let _: redis::RedisResult<()> = redis::cmd("UNLINK").arg(chunk).query(&mut c);
                }
            }
        })
        .join();
    }
}
