//! Tiers: content addressing, fingerprints, TTLs, sizes, promotion, metrics.

use std::convert::Infallible;

use super::support::{sqlite_l3, Calls, Ns, PgDb};
use crate::cache::*;
use crate::llm::TokenCounts;
use crate::{Persona, TenantId};

fn thj() -> TenantId {
    TenantId::new("thj")
}

fn expect() -> Expectation {
    Expectation::new(
        "claude-sonnet",
        template_fingerprint("Write for leaders.", "claude-sonnet", 2000),
    )
}

async fn compute(calls: &Calls, value: &str) -> Result<Computed, Infallible> {
    calls.hit();
    Ok(Computed {
        value: value.to_owned(),
        usage: TokenCounts {
            input: 10,
            output: 5,
            ..Default::default()
        },
    })
}

#[tokio::test]
async fn whitespace_and_renames_hit_the_same_entry() {
    let ns = Ns::new().await;
    let cache = ns.cache(CacheConfig::default(), Clock::System, None);
    let calls = Calls::default();
    let persona = Persona::new("leadership");
    // The same document saved under two paths, once with Windows line endings and extra spaces.
    let docs = [
        ("docs/prd.md", "# PRD\n\nShip search.\nBy Friday."),
        (
            "archive/old-name.md",
            "  # PRD\r\n\r\nShip   search.\r\nBy\tFriday.\r\n",
        ),
    ];
    let mut sources = vec![];
    for (_path, text) in docs {
        let key = CacheKey::transform(&thj(), &content_hash(text), &persona);
        let got = cache
            .get_or_compute(&key, &expect(), || compute(&calls, "summary"))
            .await
            .unwrap();
        sources.push(got.source);
    }
    assert_eq!(calls.get(), 1);
    assert_eq!(sources, vec![Source::Computed, Source::Cache(Tier::L1)]);
    // A real edit is a different key.
    let key = CacheKey::transform(
        &thj(),
        &content_hash("# PRD Ship search. By Monday."),
        &persona,
    );
    cache
        .get_or_compute(&key, &expect(), || compute(&calls, "other"))
        .await
        .unwrap();
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn a_changed_prompt_or_model_is_a_miss_and_overwrites() {
    let ns = Ns::new().await;
    let (l3, _dir) = sqlite_l3().await;
    let cache = ns.cache(CacheConfig::default(), Clock::System, Some(l3.clone()));
    let calls = Calls::default();
    let key = CacheKey::transform(&thj(), &content_hash("doc"), &Persona::new("product"));
    let old = expect();
    cache
        .get_or_compute(&key, &old, || compute(&calls, "v1"))
        .await
        .unwrap();

    let new_prompt = Expectation::new(
        "claude-sonnet",
        template_fingerprint("Write for PMs.", "claude-sonnet", 2000),
    );
    let got = cache
        .get_or_compute(&key, &new_prompt, || compute(&calls, "v2"))
        .await
        .unwrap();
    assert_eq!(
        (got.source, got.entry.value.as_str()),
        (Source::Computed, "v2")
    );
    let new_model = Expectation::new("claude-opus", new_prompt.fingerprint.clone());
    let got = cache
        .get_or_compute(&key, &new_model, || compute(&calls, "v3"))
        .await
        .unwrap();
    assert_eq!(got.source, Source::Computed);
    assert_eq!(calls.get(), 3);

    // Every tier now holds v3: a fresh worker (empty L1) reads it from L2, L3 has it too.
    let other = ns.cache(CacheConfig::default(), Clock::System, Some(l3.clone()));
    let (e, tier) = other.get(&key, &new_model).await.unwrap();
    assert_eq!((e.value.as_str(), tier), ("v3", Tier::L2));
    assert_eq!(
        l3.get(&key, &Expectation::none())
            .await
            .unwrap()
            .unwrap()
            .value,
        "v3"
    );
    // And the old prompt's reader sees a miss, never the newer text as a stale hit.
    assert!(other.get(&key, &old).await.is_none());
}

#[tokio::test]
async fn l1_expires_by_clock_and_keeps_its_size() {
    let ns = Ns::new().await;
    let clock = Clock::manual(1_000_000);
    let config = CacheConfig {
        l1: config::L1Config {
            max_size: 10,
            ttl_ms: 60_000,
        },
        ..Default::default()
    };
    let cache = ns.cache(config, clock.clone(), None);
    let key = CacheKey::transform(&thj(), &content_hash("a"), &Persona::new("devrel"));
    let calls = Calls::default();
    cache
        .get_or_compute(&key, &expect(), || compute(&calls, "x"))
        .await
        .unwrap();
    assert_eq!(cache.get(&key, &expect()).await.unwrap().1, Tier::L1);
    clock.advance_ms(59_999);
    assert_eq!(cache.get(&key, &expect()).await.unwrap().1, Tier::L1);
    clock.advance_ms(1);
    // Expired from L1, still in Redis: served by L2 and promoted back.
    assert_eq!(cache.get(&key, &expect()).await.unwrap().1, Tier::L2);
    assert_eq!(cache.get(&key, &expect()).await.unwrap().1, Tier::L1);

    for i in 0..50 {
        let k = format!("k{i}");
        cache.l1().put(
            k,
            std::sync::Arc::new(cache.entry_for(&expect(), Computed::default())),
        );
    }
    cache.l1().run_pending_tasks();
    assert!(
        cache.l1().entry_count() <= 10,
        "{}",
        cache.l1().entry_count()
    );
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn l2_ttls_follow_the_seed_per_data_type() {
    let ns = Ns::new().await;
    let cache = ns.cache(CacheConfig::default(), Clock::System, None);
    let cases = [
        (DataType::Transformation, 3_600_000),
        (DataType::LinearIssue, 300_000),
        (DataType::GithubPr, 600_000),
        (DataType::FolderIds, 3_600_000),
        (DataType::UserRoles, 3_600_000),
    ];
    for (dt, ttl_ms) in cases {
        let key = CacheKey::new(thj(), dt, "id-1");
        cache
            .put(
                &key,
                cache.entry_for(&Expectation::none(), Computed::default()),
            )
            .await;
        let pttl = ns.pttl(&cache.redis_key(&key)).await;
        assert!(pttl > ttl_ms - 5_000 && pttl <= ttl_ms, "{dt:?}: {pttl}");
    }
    assert!(cache
        .redis_key(&CacheKey::new(thj(), DataType::Transformation, "h:p"))
        .ends_with("thj:transform:h:p"));
}

async fn l3_promotes(l3: SqlL3) {
    let ns = Ns::new().await;
    let key = CacheKey::transform(
        &thj(),
        &content_hash("permanent doc"),
        &Persona::new("marketing"),
    );
    // Written long ago: only the permanent tier still has it.
    let writer = ns.cache(CacheConfig::default(), Clock::System, None);
    let entry = writer.entry_for(
        &expect(),
        Computed {
            value: "kept".into(),
            usage: TokenCounts::default(),
        },
    );
    l3.put(&key, &entry).await.unwrap();

    let cache = ns.cache(CacheConfig::default(), Clock::System, Some(l3.clone()));
    let calls = Calls::default();
    let got = cache
        .get_or_compute(&key, &expect(), || compute(&calls, "recomputed"))
        .await
        .unwrap();
    assert_eq!(
        (got.source, got.entry.value.as_str()),
        (Source::Cache(Tier::L3), "kept")
    );
    assert_eq!(calls.get(), 0);
    // Promoted to L2 (with the transformation TTL) and L1.
    assert!(ns.pttl(&cache.redis_key(&key)).await > 3_590_000);
    assert_eq!(cache.get(&key, &expect()).await.unwrap().1, Tier::L1);
    // Non-permanent types never reach L3.
    let snap = CacheKey::new(thj(), DataType::LinearIssue, "ISS-1");
    cache
        .put(
            &snap,
            cache.entry_for(&Expectation::none(), Computed::default()),
        )
        .await;
    assert!(l3.get(&snap, &Expectation::none()).await.unwrap().is_none());
}

#[tokio::test]
async fn l3_on_sqlite_promotes_to_l2_and_l1() {
    let (l3, _dir) = sqlite_l3().await;
    l3_promotes(l3).await;
}

#[tokio::test]
async fn l3_on_postgres_promotes_to_l2_and_l1() {
    let db = PgDb::new().await;
    l3_promotes(db.l3.clone()).await;
    db.drop_db().await;
}

#[tokio::test]
async fn metrics_use_the_seed_names() {
    let ns = Ns::new().await;
    let registry = prometheus::Registry::new();
    let cache = TieredCache::builder(ns.conn.clone(), ns.keys.clone())
        .build(&registry)
        .unwrap();
    let calls = Calls::default();
    let key = CacheKey::transform(&thj(), &content_hash("m"), &Persona::new("devrel"));
    cache
        .get_or_compute(&key, &expect(), || compute(&calls, "x"))
        .await
        .unwrap(); // miss l1, l2
    cache
        .get_or_compute(&key, &expect(), || compute(&calls, "x"))
        .await
        .unwrap(); // hit l1
    let text = {
        use prometheus::Encoder;
        let mut buf = vec![];
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut buf)
            .unwrap();
        String::from_utf8(buf).unwrap()
    };
    for line in [
        r#"onomancer_cache_hits_total{tenant="thj",tier="l1"} 1"#,
        r#"onomancer_cache_misses_total{tenant="thj",tier="l1"} 1"#,
        r#"onomancer_cache_misses_total{tenant="thj",tier="l2"} 1"#,
        r#"onomancer_cache_hit_rate{tenant="thj"} 0.5"#,
        r#"onomancer_cache_lookup_duration_seconds_count{tier="l1"} 2"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}
