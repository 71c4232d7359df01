//! Stale-while-revalidate: fresh entries as-is, stale ones served at once while one background
//! refresh runs; a failed refresh keeps the old value.

use std::time::Duration;

use super::support::{Calls, Ns};
use crate::cache::*;
use crate::llm::TokenCounts;
use crate::TenantId;

fn key() -> CacheKey {
    CacheKey::new(TenantId::new("thj"), DataType::LinearIssue, "ISS-7")
}

async fn value(calls: Calls, v: &'static str) -> Result<Computed, String> {
    calls.hit();
    Ok(Computed {
        value: v.into(),
        usage: TokenCounts::default(),
    })
}

#[tokio::test]
async fn stale_entries_are_served_while_one_refresh_runs() {
    let ns = Ns::new().await;
    let clock = Clock::manual(10_000_000);
    let cache = ns.cache(CacheConfig::default(), clock.clone(), None);
    let e = Expectation::none();
    let calls = Calls::default();
    let c = calls.clone();
    let first = cache
        .get_with_revalidation(&key(), &e, move || value(c, "v1"))
        .await
        .unwrap();
    assert_eq!(
        (first.lookup.source, first.stale),
        (Source::Computed, false)
    );

    clock.advance_ms(299_999);
    let c = calls.clone();
    let fresh = cache
        .get_with_revalidation(&key(), &e, move || value(c, "unused"))
        .await
        .unwrap();
    assert!(!fresh.stale && fresh.refresh.is_none());

    clock.advance_ms(1);
    // Stale: the old value comes back immediately; a second caller does not start another refresh.
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
    let c = calls.clone();
    let stale = cache
        .get_with_revalidation(&key(), &e, move || async move {
            gate_rx.await.unwrap();
            value(c, "v2").await
        })
        .await
        .unwrap();
    assert_eq!(
        (stale.lookup.entry.value.as_str(), stale.stale),
        ("v1", true)
    );
    let c = calls.clone();
    let again = cache
        .get_with_revalidation(&key(), &e, move || value(c, "v3"))
        .await
        .unwrap();
    assert!(
        again.stale && again.refresh.is_none(),
        "one refresh at a time per key"
    );
    gate_tx.send(()).unwrap();
    stale.refresh.unwrap().await.unwrap();
    assert_eq!(cache.get(&key(), &e).await.unwrap().0.value, "v2");
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_old_value() {
    let ns = Ns::new().await;
    let clock = Clock::manual(10_000_000);
    let cache = ns.cache(CacheConfig::default(), clock.clone(), None);
    let e = Expectation::none();
    let calls = Calls::default();
    let c = calls.clone();
    cache
        .get_with_revalidation(&key(), &e, move || value(c, "v1"))
        .await
        .unwrap();
    clock.advance_ms(400_000);
    let stale = cache
        .get_with_revalidation(&key(), &e, || async {
            Err::<Computed, _>("linear is down".to_string())
        })
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), stale.refresh.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cache.get(&key(), &e).await.unwrap().0.value, "v1");
    // The next stale read tries again (the failed refresh released its lock and its slot).
    let c = calls.clone();
    let retry = cache
        .get_with_revalidation(&key(), &e, move || value(c, "v2"))
        .await
        .unwrap();
    retry.refresh.unwrap().await.unwrap();
    assert_eq!(cache.get(&key(), &e).await.unwrap().0.value, "v2");
}
