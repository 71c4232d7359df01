//! Leases against the real Redis, each test under its own namespace's keys: what a token may do
//! once its lease is gone.

use std::time::Duration;

use redis::AsyncCommands;

use super::*;
use crate::keys::KeySpace;

/// `onomancer_testkit` links its own copy of this crate, so the leases are built on a connection
/// of this crate's type; the guard deletes the namespace's keys on drop.
async fn leases() -> (Leases, RedisConn, String, onomancer_testkit::TestRedis) {
    let guard = onomancer_testkit::TestRedis::new().await;
    let conn = RedisConn::connect(&onomancer_testkit::redis_ns::redis_url())
        .await
        .expect("test redis");
    let key = format!("{}lease", KeySpace::isolated(&guard.name).queue_prefix());
    (Leases::new(conn.clone()), conn, key, guard)
}

async fn value(conn: &RedisConn, key: &str) -> Option<String> {
    conn.clone().get(key).await.expect("GET")
}

#[tokio::test]
async fn a_lease_released_by_a_stale_holder_stays_with_its_new_owner() {
    let (leases, conn, key, _guard) = leases().await;
    assert_eq!(
        leases
            .take(&key, "old", Duration::from_millis(20))
            .await
            .unwrap(),
        Take::Taken
    );
    // The old holder stalls past its lease (its key expires: deleted here, as the expiry would)
    // and a new holder takes the key.
    let _: () = conn.clone().del(&key).await.unwrap();
    assert_eq!(
        leases
            .take(&key, "new", Duration::from_secs(30))
            .await
            .unwrap(),
        Take::Taken
    );

    assert!(!leases.release(&key, "old").await.unwrap());
    assert!(!leases
        .renew(&key, "old", Duration::from_secs(60))
        .await
        .unwrap());
    assert!(!leases
        .hold(&key, "old", Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(value(&conn, &key).await.as_deref(), Some("new"));
    let left: i64 = conn.clone().pttl(&key).await.unwrap();
    assert!(
        left <= 30_000,
        "the stale holder did not extend it: {left} ms"
    );

    assert!(leases.release(&key, "new").await.unwrap());
    assert_eq!(value(&conn, &key).await, None);
}

#[tokio::test]
async fn a_held_lease_refuses_another_taker_and_says_who_holds_it_for_how_long() {
    let (leases, _conn, key, _guard) = leases().await;
    let ttl = Duration::from_secs(30);
    assert_eq!(leases.take(&key, "a", ttl).await.unwrap(), Take::Taken);
    let Take::Held { value, left } = leases.take(&key, "b", ttl).await.unwrap() else {
        panic!("a held lease is not taken twice");
    };
    assert_eq!(value, "a");
    let left = left.expect("the lease expires");
    assert!(left <= ttl && left > Duration::from_secs(20), "{left:?}");
    assert!(!leases.hold(&key, "b", ttl).await.unwrap());
    assert!(
        leases.hold(&key, "a", ttl).await.unwrap(),
        "hold renews its own"
    );
    assert!(leases.renew(&key, "a", ttl).await.unwrap());
}

#[tokio::test]
async fn hold_takes_a_free_lease_and_a_renewal_extends_only_its_own() {
    let (leases, conn, key, _guard) = leases().await;
    assert!(!leases
        .renew(&key, "a", Duration::from_secs(5))
        .await
        .unwrap());
    assert_eq!(value(&conn, &key).await, None, "renew never takes");
    assert!(leases
        .hold(&key, "a", Duration::from_secs(5))
        .await
        .unwrap());
    assert!(leases
        .renew(&key, "a", Duration::from_secs(60))
        .await
        .unwrap());
    let left: i64 = conn.clone().pttl(&key).await.unwrap();
    assert!(left > 5_000, "{left} ms");
}
