//! Many tenants cost the same as one: a claim visits only tenants with work (the ready index),
//! never every tenant stream. Counted with `INFO commandstats` on a private Redis, so the counts
//! are this test's alone; no timing is asserted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use onomancer_shared::Lane;

use crate::helpers::*;

/// `calls` per command from `INFO commandstats` (`cmdstat_xreadgroup:calls=..,usec=..`).
async fn command_calls(url: &str) -> HashMap<String, u64> {
    let mut c = onomancer_shared::RedisConn::connect(url).await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn a_claim_touches_only_tenants_with_work_however_many_are_idle() {
    let redis = PrivateRedis::ephemeral().await;
    let url = redis.url();
    let queue = queue_at(&url, fast_config()).await;
    // 5,000 tenants, each with a stream and a consumer group, all drained: idle.
    let idle: Vec<_> = (0..5000)
        .map(|i| scripted(&format!("idle-{i}"), Lane::Default, &Script::default()))
        .collect();
    for chunk in idle.chunks(1000) {
        queue.enqueue_many(chunk.to_vec()).await.unwrap();
    }
    let h = Arc::new(ScriptedHandler::default());
    let (stop, task) = spawn_worker(&queue, h.clone(), "w", 64);
    wait_until(
        Duration::from_secs(25),
        "5,000 idle tenants drained",
        || async { h.completed.lock().unwrap().len() == 5000 },
    )
    .await;
    let ready = queue.keys().ready(Lane::Default);
    wait_until(
        Duration::from_secs(5),
        "drained tenants leave the ready index",
        || async {
            let listed: u64 = redis::AsyncCommands::llen(&mut queue.conn(), &ready)
                .await
                .unwrap();
            listed == 0
        },
    )
    .await;

    // One busy tenant: its jobs run, and the claims that took them touched no idle tenant.
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut queue.conn())
        .await
        .unwrap();
    queue
        .enqueue_many(
            (0..20)
                .map(|_| scripted("busy", Lane::Default, &Script::default()))
                .collect(),
        )
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(10),
        "the busy tenant's jobs ran",
        || async { h.completed.lock().unwrap().len() == 5020 },
    )
    .await;
    let calls = command_calls(&url).await;
    stop.cancel();
    task.await.unwrap();
    let count = |c: &str| calls.get(c).copied().unwrap_or(0);
    assert!(
        count("xreadgroup") >= 1,
        "the busy tenant was read: {calls:?}"
    );
    // Per-stream commands follow the busy tenant's claims and acks (a few each), never the
    // 5,000 idle tenants.
    for per_stream in ["xreadgroup", "xpending", "xinfo|groups", "xrange", "xack"] {
        assert!(
            count(per_stream) <= 40,
            "{per_stream} ran {} times for 20 jobs of one tenant among 5,000: {calls:?}",
            count(per_stream)
        );
    }
    for walk in ["xautoclaim", "xinfo|consumers", "xclaim"] {
        assert_eq!(
            count(walk),
            0,
            "no reclaim walk while every worker is live: {calls:?}"
        );
    }
}
