//! Pauses against the real Redis, each test in its own namespace.

use std::time::Duration;

use super::*;

/// `onomancer_testkit` links its own copy of this crate, so build this crate's types from the
/// namespace it picked; the returned guard deletes the keys on drop.
async fn pauses() -> (UpstreamPause, onomancer_testkit::TestRedis) {
    let guard = onomancer_testkit::TestRedis::new().await;
    let conn = RedisConn::connect(&onomancer_testkit::redis_ns::redis_url())
        .await
        .expect("test redis");
    (
        UpstreamPause::new(conn, KeySpace::isolated(&guard.name)),
        guard,
    )
}

#[tokio::test]
async fn a_pause_defers_every_caller_with_the_time_left_then_clears() {
    let (p, _guard) = pauses().await;
    assert_eq!(p.check("claude").await, Ok(()));

    let in_force = p
        .pause(
            "claude",
            Duration::from_millis(400),
            "429 on the shared key",
        )
        .await
        .unwrap();
    assert_eq!(in_force, Duration::from_millis(400));

    let err = p.check("claude").await.unwrap_err();
    let JobError::Deferred {
        wait,
        reason,
        upstream: false,
    } = err
    else {
        panic!("a pause defers")
    };
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(400),
        "{wait:?}"
    );
    assert!(
        reason.starts_with("claude is paused for every worker for")
            && reason.ends_with("(429 on the shared key)"),
        "{reason}"
    );
    assert_eq!(p.check("discord").await, Ok(()), "other upstreams run");

    // The key expires with the wait: poll Redis, not a clock.
    let mut conn = p.conn();
    loop {
        let exists: bool = redis::cmd("EXISTS")
            .arg(p.key("claude"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if !exists {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(p.check("claude").await, Ok(()));
}

#[tokio::test]
async fn a_shorter_pause_never_shortens_a_longer_one() {
    let (p, _guard) = pauses().await;
    p.pause("discord", Duration::from_secs(30), "global 429")
        .await
        .unwrap();
    let kept = p
        .pause("discord", Duration::from_secs(2), "another global 429")
        .await
        .unwrap();
    assert!(kept > Duration::from_secs(29), "{kept:?}");
    let now = p.current("discord").await.unwrap().unwrap();
    assert_eq!(now.reason, "global 429");

    let longer = p
        .pause("discord", Duration::from_secs(60), "longer")
        .await
        .unwrap();
    assert_eq!(longer, Duration::from_secs(60));
    assert_eq!(
        p.current("discord").await.unwrap().unwrap().reason,
        "longer"
    );
}

#[tokio::test]
async fn an_unreadable_pause_lets_the_call_through() {
    let (p, _guard) = pauses().await;
    // A key of the wrong type makes GET fail: the check must not block work on it.
    let mut conn = p.conn();
    let _: () = redis::cmd("RPUSH")
        .arg(p.key("google:sa@x"))
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(p.check("google:sa@x").await, Ok(()));
}
