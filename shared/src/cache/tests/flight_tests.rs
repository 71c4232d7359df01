//! Single-flight: concurrent requests on several "workers" (independent caches with their own L1
//! sharing one Redis) make one computation per key; crashed or failing holders do not block.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::support::{Calls, Ns};
use crate::cache::config::FlightConfig;
use crate::cache::*;
use crate::llm::TokenCounts;
use crate::{Persona, TenantId};

fn expect() -> Expectation {
    Expectation::new("claude-sonnet", "f1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_workers_twenty_requests_each_one_call_per_persona() {
    let ns = Ns::new().await;
    let workers: Vec<TieredCache> = (0..4)
        .map(|_| ns.cache(CacheConfig::default(), Clock::System, None))
        .collect();
    let hash = content_hash("# Launch PRD\n\nEverything about the launch.");
    let personas = ["leadership", "product", "marketing", "devrel"];
    let per_persona: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let mut tasks = vec![];
    for worker in &workers {
        for i in 0..20 {
            let cache = worker.clone();
            let persona = Persona::new(personas[i % 4]);
            let key = CacheKey::transform(&TenantId::new("thj"), &hash, &persona);
            let counts = per_persona.clone();
            tasks.push(tokio::spawn(async move {
                let got = cache
                    .get_or_compute(&key, &expect(), || async move {
                        *counts
                            .lock()
                            .unwrap()
                            .entry(persona.to_string())
                            .or_default() += 1;
                        // The simulated Claude call takes a while, so the requests overlap.
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        Ok::<_, std::convert::Infallible>(Computed {
                            value: format!("for {persona}"),
                            usage: TokenCounts::default(),
                        })
                    })
                    .await
                    .unwrap();
                (key.id.clone(), got.entry.value.clone(), got.source)
            }));
        }
    }
    let mut computed = 0;
    for t in tasks {
        let (id, value, source) = t.await.unwrap();
        assert!(
            id.ends_with(value.trim_start_matches("for ")),
            "{id} got {value}"
        );
        computed += usize::from(source == Source::Computed);
    }
    let counts = per_persona.lock().unwrap().clone();
    assert_eq!(counts.len(), 4, "{counts:?}");
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    assert_eq!(computed, 4);
}

fn short_lease() -> CacheConfig {
    CacheConfig {
        single_flight: FlightConfig {
            lease_ms: 300,
            max_wait_ms: 60_000,
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn a_crashed_holder_blocks_only_until_its_lease_ends() {
    let ns = Ns::new().await;
    let cache = ns.cache(short_lease(), Clock::System, None);
    let key = CacheKey::transform(
        &TenantId::new("thj"),
        &content_hash("x"),
        &Persona::new("devrel"),
    );
    // A worker took the lock and died: it will never release or signal.
    let lock = ns
        .keys
        .data(&key.tenant, format_args!("lock:transform:{}", key.id));
    let mut c = ns.conn.clone();
    let _: () = redis::cmd("SET")
        .arg(&lock)
        .arg("dead-worker")
        .arg("PX")
        .arg(300)
        .query_async(&mut c)
        .await
        .unwrap();

    let calls = Calls::default();
    let got = tokio::time::timeout(
        Duration::from_secs(10),
        cache.get_or_compute(&key, &expect(), || async {
            calls.hit();
            Ok::<_, std::convert::Infallible>(Computed::default())
        }),
    )
    .await
    .expect("the lease expires and the waiter takes over")
    .unwrap();
    assert_eq!((got.source, calls.get()), (Source::Computed, 1));
    // Our own lock was released.
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&lock)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(exists, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_holder_fails_a_waiter_computes() {
    let ns = Ns::new().await;
    let a = ns.cache(short_lease(), Clock::System, None);
    let b = ns.cache(short_lease(), Clock::System, None);
    let key = CacheKey::transform(
        &TenantId::new("thj"),
        &content_hash("y"),
        &Persona::new("product"),
    );
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (fail_tx, fail_rx) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let key = key.clone();
        tokio::spawn(async move {
            a.get_or_compute(&key, &expect(), || async move {
                started_tx.send(()).unwrap();
                fail_rx.await.unwrap();
                Err::<Computed, _>("upstream said 500")
            })
            .await
        })
    };
    started_rx.await.unwrap(); // a holds the lock and is "calling Claude"
    let waiter = {
        let key = key.clone();
        tokio::spawn(async move {
            b.get_or_compute(&key, &expect(), || async {
                Ok::<_, &str>(Computed {
                    value: "from b".into(),
                    usage: TokenCounts::default(),
                })
            })
            .await
        })
    };
    fail_tx.send(()).unwrap();
    assert_eq!(holder.await.unwrap().unwrap_err(), "upstream said 500");
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(
        (got.source, got.entry.value.as_str()),
        (Source::Computed, "from b")
    );
}
