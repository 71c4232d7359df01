//! The queue on a real 3-master Redis Cluster started from `redis-server` on loopback ports: its
//! multi-key scripts only touch keys of one hash tag, so every operation is legal there.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use onomancer_shared::admission::{Admission, RateSpec};
use onomancer_shared::queue::{
    AdmitOutcome, JobState, Queue, QueueMetrics, RateLimit, RateLimiter,
};
use onomancer_shared::{KeySpace, Lane, RedisConn, TenantId};

use crate::helpers::*;

struct Cluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = n.kill();
            let _ = n.wait();
        }
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn start_cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(3);
    let nodes = ports
        .iter()
        .map(|p| {
            Command::new("redis-server")
                .args([
                    "--port",
                    &p.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                ])
                .args([
                    "--cluster-config-file",
                    &format!("nodes-{p}.conf"),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .args(["--dir", dir.path().to_str().unwrap()])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server")
        })
        .collect();
    let cluster = Cluster {
        nodes,
        ports: ports.clone(),
        _dir: dir,
    };
    for p in &ports {
        wait_until(Duration::from_secs(10), "node answers", || async {
            cli(*p, &["ping"]).contains("PONG")
        })
        .await;
    }
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let out = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cluster create: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for p in &ports {
        wait_until(Duration::from_secs(20), "cluster ok", || async {
            cli(*p, &["cluster", "info"]).contains("cluster_state:ok")
        })
        .await;
    }
    cluster
}

#[tokio::test]
async fn the_queue_runs_on_a_three_master_cluster() {
    let cluster = start_cluster().await;
    let url = cluster
        .ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let conn = RedisConn::connect(&url).await.unwrap();
    assert!(conn.is_cluster());
    let queue = Queue::from_parts(
        conn,
        &url,
        KeySpace::production(),
        fast_config(),
        QueueMetrics::unregistered(),
    );
    let tenant = TenantId::new("thj");

    // Idempotent and batched enqueue, in two lanes.
    let a = queue
        .enqueue(scripted("thj", Lane::Interactive, &Script::default()).idempotency_key("k1"))
        .await
        .unwrap();
    let again = queue
        .enqueue(scripted("thj", Lane::Interactive, &Script::default()).idempotency_key("k1"))
        .await
        .unwrap();
    assert_eq!((a.id.clone(), again.created), (again.id.clone(), false));
    let mut ids: Vec<_> = queue
        .enqueue_many(
            (0..50)
                .map(|_| {
                    scripted(
                        "thj",
                        Lane::Default,
                        &Script {
                            limit_service: Some("claude".into()),
                            ..Script::default()
                        },
                    )
                })
                .collect(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    ids.push(a.id.clone());
    let retried = queue
        .enqueue(scripted(
            "thj",
            Lane::Bulk,
            &Script {
                fail_until_attempt: 1,
                ..Script::default()
            },
        ))
        .await
        .unwrap();
    let dead = queue
        .enqueue(scripted(
            "thj",
            Lane::Bulk,
            &Script {
                terminal: Some("no".into()),
                ..Script::default()
            },
        ))
        .await
        .unwrap();

    // A worker with a shared rate limiter (its key lives in another slot than the queue's).
    let limiter = RateLimiter::new(
        queue.clone(),
        [(
            "claude".to_owned(),
            RateLimit::new(1000, Duration::from_secs(1)),
        )]
        .into(),
    );
    let h = Arc::new(ScriptedHandler {
        limiter: Some(limiter),
        ..ScriptedHandler::default()
    });
    let (stop, task) = spawn_worker(&queue, h.clone(), "cw", 8);
    for id in ids.iter().chain([&retried.id]) {
        wait_until(
            Duration::from_secs(20),
            "job succeeded on the cluster",
            || async {
                queue
                    .status(&tenant, id)
                    .await
                    .unwrap()
                    .is_some_and(|s| s.state == JobState::Succeeded)
            },
        )
        .await;
    }
    wait_until(Duration::from_secs(10), "dead letter", || async {
        queue
            .status(&tenant, &dead.id)
            .await
            .unwrap()
            .is_some_and(|s| s.state == JobState::Dead)
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    assert!(queue.dlq_replay(dead.id.as_str()).await.unwrap());
    assert_eq!(
        queue
            .status(&tenant, &retried.id)
            .await
            .unwrap()
            .unwrap()
            .attempt,
        2
    );
    queue.trim_acknowledged().await.unwrap();
    let stats = queue.stats().await.unwrap();
    assert_eq!(stats.lanes.iter().map(|l| l.pending).sum::<u64>(), 0);
    assert_eq!(
        stats.lanes[2].queued, 1,
        "the replayed job waits in the bulk lane"
    );

    // The gateway's rate check before an enqueue: its key is in the tenant's slot, the queue's
    // in `{onomancer}`, so on a Cluster it runs as two calls, with the same decisions.
    let admission = Admission::new(queue.conn(), KeySpace::production());
    let rate = admission.rate_check(&tenant, "cluster-test", RateSpec::per_minute(2));
    let mut admitted = Vec::new();
    for key in ["r1", "r2", "r3"] {
        let job = scripted("thj", Lane::Interactive, &Script::default()).idempotency_key(key);
        admitted.push(queue.enqueue_admitted(job, &rate).await.unwrap());
    }
    assert!(matches!(&admitted[0], AdmitOutcome::Enqueued(e) if e.created));
    assert!(matches!(&admitted[1], AdmitOutcome::Enqueued(e) if e.created));
    assert!(
        matches!(admitted[2], AdmitOutcome::RateLimited { retry_after } if retry_after > Duration::ZERO)
    );
    let stored = queue.stats().await.unwrap().lanes[0].queued;
    assert_eq!(stored, 2, "the refused request stored nothing");
}
