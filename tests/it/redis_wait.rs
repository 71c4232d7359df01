//! Every role waits for Redis at start: a worker and a scheduler started while nothing listens
//! at their `REDIS_URL` log each failed attempt (the URL's password redacted), keep waiting, and
//! start working once a Redis server answers on that port; a shutdown signal while waiting ends
//! them cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use onomancer_shared::payloads::NoopPayload;
use onomancer_shared::queue::{JobState, QueueConfig};
use onomancer_shared::{KeySpace, NewJob, TenantId};
use tokio::sync::mpsc;

use crate::helpers::*;

/// A role process (`onomancer <role>`) whose log lines (on stdout) arrive on a channel.
struct Role {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Role {
    fn start(role: &str, redis_url: &str, config_dir: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_onomancer"))
            .arg(role)
            .env("REDIS_URL", redis_url)
            .env("ONOMANCER_CONFIG_DIR", config_dir)
            .env("ONOMANCER_WORKER_NAME", format!("wait-{role}"))
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/{role}.db", config_dir.display()),
            )
            .env("RUST_LOG", "warn")
            .env("ONOMANCER_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start onomancer");
        let logs = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(logs).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits for the log line that says an attempt to reach Redis failed; returns it.
    async fn failed_attempt(&mut self) -> String {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                if line.contains("Redis not reachable yet") {
                    return line;
                }
            }
            panic!("the role exited instead of waiting for Redis");
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("a failed attempt is logged")
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_worker_and_a_scheduler_started_before_redis_wait_for_it_then_work() {
    let port = free_ports(1)[0];
    let url = format!("redis://127.0.0.1:{port}");
    let config = config_dir(serde_json::json!({}));
    let mut worker = Role::start("worker", &url, config.path());
    let mut scheduler = Role::start("scheduler", &url, config.path());
    worker.failed_attempt().await;
    scheduler.failed_attempt().await;
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the worker waits"
    );
    assert!(
        scheduler.child.try_wait().unwrap().is_none(),
        "the scheduler waits"
    );

    let redis = PrivateRedis::start(port, tempfile::tempdir().unwrap());
    wait_until(Duration::from_secs(10), "the private redis answers", || {
        answers(&url)
    })
    .await;
    let queue = queue_at(&url, QueueConfig::default()).await;
    let tenant = TenantId::new("thj");
    let job = queue
        .enqueue(NewJob::new(tenant.clone(), &NoopPayload {}))
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(30),
        "the worker ran the job",
        || async {
            queue
                .status(&tenant, &job.id)
                .await
                .unwrap()
                .is_some_and(|s| s.state == JobState::Succeeded)
        },
    )
    .await;
    let leader = KeySpace::production().scheduler_leader();
    wait_until(Duration::from_secs(30), "the scheduler leads", || async {
        redis::AsyncCommands::exists::<_, bool>(&mut queue.conn(), &leader)
            .await
            .unwrap()
    })
    .await;

    for role in [&mut worker, &mut scheduler] {
        role.signal("TERM");
        assert!(role.child.wait().unwrap().success());
    }
    drop(redis);
}

#[tokio::test]
async fn a_role_waiting_for_redis_stops_cleanly_on_a_signal_and_never_logs_the_password() {
    let port = free_ports(1)[0];
    let url = format!("redis://:hunter2-secret@127.0.0.1:{port}");
    let config = config_dir(serde_json::json!({}));
    for name in ["worker", "scheduler"] {
        let mut role = Role::start(name, &url, config.path());
        let line = role.failed_attempt().await;
        assert!(!line.contains("hunter2-secret"), "{line}");
        assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
        role.signal("TERM");
        assert!(role.child.wait().unwrap().success(), "{name} exits 0");
        while let Ok(line) = role.lines.try_recv() {
            assert!(!line.contains("hunter2-secret"), "{line}");
        }
    }
}
