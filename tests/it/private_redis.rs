//! A private `redis-server` per test that needs one: to stop and restart Redis, or to read
//! command statistics that no other test shares.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{free_ports, wait_until};

/// A private Redis server for tests that stop Redis or read its command statistics (the
/// machine's Redis is never stopped, and its statistics are shared with every other test).
pub struct PrivateRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Started on `port` with its data in `dir` (append-only, fsync always).
    pub fn start(port: u16, dir: tempfile::TempDir) -> Self {
        Self::spawn(port, dir, true)
    }

    /// Started on a free port, keeping nothing on disk; answering when this returns.
    pub async fn ephemeral() -> Self {
        let redis = Self::spawn(free_ports(1)[0], tempfile::tempdir().unwrap(), false);
        let url = redis.url();
        wait_until(Duration::from_secs(10), "private redis answers", || {
            answers(&url)
        })
        .await;
        redis
    }

    fn spawn(port: u16, dir: tempfile::TempDir, persist: bool) -> Self {
        let aof: &[&str] = if persist {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(aof)
            .args(["--dir", dir.path().to_str().unwrap()])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server");
        Self {
            port,
            dir,
            child: Some(child),
        }
    }

    pub fn stop(mut self) -> (u16, tempfile::TempDir) {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (self.port, dir)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub async fn answers(url: &str) -> bool {
    match redis::Client::open(url) {
        Ok(c) => c.get_multiplexed_async_connection().await.is_ok(),
        Err(_) => false,
    }
}
