//! Tests of the usage store on real SQLite (temporary file) and real PostgreSQL (a fresh
//! database per test): the same checks run on both backends.

use chrono::{DateTime, Duration, TimeZone, Utc};
use onomancer_testkit::db::TestDb;
use prometheus::Registry;

use super::*;
use crate::db::Database;
use crate::ids::{JobId, TenantId};
use crate::llm::pricing::{ModelPrice, Prices};
use crate::usage::{ops, TokenCounts, UsageMetrics, UsageRecord};

fn prices() -> Prices {
    let mut p = Prices::default();
    p.insert(
        "big-model",
        ModelPrice {
            input: 3.0,
            output: 15.0,
            cache_write_5m_multiplier: 1.25,
            cache_write_1h_multiplier: 2.0,
            cache_read_multiplier: 0.1,
        },
    );
    p
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
}

fn tokens(input: u64, output: u64, write: u64, read: u64) -> TokenCounts {
    TokenCounts {
        input,
        output,
        cache_creation: write,
        cache_read: read,
        ..Default::default()
    }
}

fn transform(tenant: &str, job: &str, persona: &str, t: TokenCounts) -> UsageRecord {
    let job = JobId::new(job);
    UsageRecord::claude_call(
        TenantId::new(tenant),
        ops::TRANSFORM,
        "big-model",
        t,
        &prices(),
        UsageRecord::job_key(&job, &format!("transform:{persona}")),
    )
    .job(job)
    .user("u1")
    .at(t0())
}

/// Opens each backend through this crate's `Database` (the testkit made and owns the database).
async fn backends() -> Vec<(TestDb, UsageStore)> {
    let mut out = Vec::new();
    for t in TestDb::both().await {
        let db = Database::open(&t.url).await.unwrap();
        out.push((t, UsageStore::new(db)));
    }
    out
}

#[tokio::test]
async fn records_and_summarizes_a_cached_four_persona_transform() {
    for (_t, store) in backends().await {
        let job = "job-1";
        let write = tokens(2_000, 2_000, 10_000, 0);
        let read = tokens(2_000, 2_000, 0, 10_000);
        for (persona, t) in [
            ("leadership", write),
            ("product", read),
            ("marketing", read),
            ("devrel", read),
        ] {
            assert!(store
                .record(&transform("thj", job, persona, t))
                .await
                .unwrap());
        }
        let validation = UsageRecord::claude_call(
            TenantId::new("thj"),
            ops::VALIDATION,
            "big-model",
            tokens(5_000, 1_000, 0, 0),
            &prices(),
            "job:job-1:validate",
        )
        .at(t0() + Duration::minutes(1));
        assert!(store.record(&validation).await.unwrap());

        let s = store
            .summary(&TenantId::new("thj"), t0(), t0() + Duration::days(1))
            .await
            .unwrap();
        assert_eq!(s.tokens, tokens(13_000, 9_000, 10_000, 30_000));
        assert_eq!(s.api_calls, 5);
        // Hand computation (micro-dollars): write call 6,000 + 30,000 + 37,500 = 73,500;
        // each read call 6,000 + 30,000 + 3,000 = 39,000; validation 15,000 + 15,000 = 30,000.
        assert_eq!(s.estimated_cost_micros, 73_500 + 3 * 39_000 + 30_000);
        assert_eq!(s.estimated_cost, "0.22");
        assert_eq!(s.transforms, 1, "one job, four persona records");
        assert_eq!(s.by_operation.len(), 2);
        let tr = &s.by_operation[0];
        assert_eq!(
            (tr.operation.as_str(), tr.records, tr.jobs, tr.api_calls),
            ("transform", 4, 1, 4)
        );
        assert_eq!(tr.estimated_cost_micros, 190_500);
        assert_eq!(tr.estimated_cost, "0.19");
        assert_eq!(s.by_operation[1].operation, "validation");
        assert_eq!(s.by_operation[1].estimated_cost_micros, 30_000);
    }
}

#[tokio::test]
async fn a_job_that_runs_twice_records_once() {
    for (_t, store) in backends().await {
        let r = transform("thj", "job-2", "devrel", tokens(12_000, 2_000, 0, 0));
        assert!(store.record(&r).await.unwrap());
        // The retry measured slightly different tokens: still the first record counts.
        let again = transform("thj", "job-2", "devrel", tokens(12_500, 2_100, 0, 0));
        assert!(!store.record(&again).await.unwrap());
        let s = store
            .summary(&TenantId::new("thj"), t0(), t0() + Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(s.tokens, tokens(12_000, 2_000, 0, 0));
        assert_eq!(s.api_calls, 1);
        assert_eq!(s.estimated_cost_micros, 66_000);
        assert_eq!(s.estimated_cost, "0.07");
    }
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    for (_t, store) in backends().await {
        // The same idempotency key in two tenants is two records.
        assert!(store
            .record(&transform(
                "alpha",
                "job-3",
                "product",
                tokens(100, 10, 0, 0)
            ))
            .await
            .unwrap());
        assert!(store
            .record(&transform(
                "beta",
                "job-3",
                "product",
                tokens(200, 20, 0, 0)
            ))
            .await
            .unwrap());
        let (from, to) = (t0(), t0() + Duration::hours(1));
        let a = store
            .summary(&TenantId::new("alpha"), from, to)
            .await
            .unwrap();
        let b = store
            .summary(&TenantId::new("beta"), from, to)
            .await
            .unwrap();
        let c = store
            .summary(&TenantId::new("gamma"), from, to)
            .await
            .unwrap();
        assert_eq!(a.tokens, tokens(100, 10, 0, 0));
        assert_eq!(b.tokens, tokens(200, 20, 0, 0));
        assert_eq!(
            (
                c.tokens,
                c.api_calls,
                c.estimated_cost.as_str(),
                c.transforms
            ),
            (TokenCounts::default(), 0, "0.00", 0)
        );
        assert!(c.by_operation.is_empty());
    }
}

#[tokio::test]
async fn the_range_includes_from_and_excludes_to() {
    for (_t, store) in backends().await {
        let at = |minutes: i64, key: &str| {
            transform("thj", key, "p", tokens(1_000, 0, 0, 0)).at(t0() + Duration::minutes(minutes))
        };
        for (m, k) in [(-1, "before"), (0, "start"), (59, "inside"), (60, "end")] {
            store.record(&at(m, k)).await.unwrap();
        }
        let s = store
            .summary(&TenantId::new("thj"), t0(), t0() + Duration::minutes(60))
            .await
            .unwrap();
        assert_eq!(s.tokens.input, 2_000);
        assert_eq!(s.transforms, 2);
    }
}

#[tokio::test]
async fn sums_stay_exact_over_many_records() {
    for (_t, store) in backends().await {
        // 500 decision searches at $0.0135 each = exactly $6.75 (f64 accumulation drifts here).
        for i in 0..500 {
            let r = UsageRecord::claude_call(
                TenantId::new("thj"),
                ops::QUERY,
                "big-model",
                tokens(2_000, 500, 0, 0),
                &prices(),
                format!("q{i}"),
            )
            .at(t0());
            store.record(&r).await.unwrap();
        }
        let s = store
            .summary(&TenantId::new("thj"), t0(), t0() + Duration::seconds(1))
            .await
            .unwrap();
        assert_eq!(s.estimated_cost_micros, 6_750_000);
        assert_eq!(s.estimated_cost, "6.75");
        assert_eq!(s.api_calls, 500);
        assert_eq!(s.transforms, 0);
    }
}

#[tokio::test]
async fn metrics_follow_new_records_only() {
    let t = TestDb::sqlite().await;
    let registry = Registry::new();
    let metrics = UsageMetrics::register(&registry).unwrap();
    let store = UsageStore::with_metrics(Database::open(&t.url).await.unwrap(), metrics);
    let r = transform("thj", "job-4", "devrel", tokens(12_000, 2_000, 300, 40));
    store.record(&r).await.unwrap();
    store.record(&r).await.unwrap(); // duplicate: not counted
    store
        .record(&transform(
            "thj",
            "job-5",
            "devrel",
            tokens(12_000, 2_000, 0, 0),
        ))
        .await
        .unwrap();
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    for line in [
        r#"onomancer_tokens_used_total{tenant="thj",type="input"} 24000"#,
        r#"onomancer_tokens_used_total{tenant="thj",type="output"} 4000"#,
        r#"onomancer_tokens_used_total{tenant="thj",type="cache_creation"} 300"#,
        r#"onomancer_tokens_used_total{tenant="thj",type="cache_read"} 40"#,
        r#"onomancer_api_calls_total{service="claude",tenant="thj"} 2"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    // 66,000 + 1,125 + 12 (0.1 * 3 * 40 = 12) + 66,000 micro-dollars.
    let cost = r.cost_micros + 66_000;
    assert_eq!(r.cost_micros, 66_000 + 1_125 + 12);
    assert!(
        text.contains(&format!(
            "onomancer_estimated_cost_dollars{{tenant=\"thj\"}} {}",
            cost as f64 / 1e6
        )),
        "{text}"
    );
    // Registering twice in one registry is refused (one set of handles per registry).
    assert!(UsageMetrics::register(&registry).is_err());
}

#[test]
fn unpriced_models_record_at_zero_cost() {
    let r = UsageRecord::claude_call(
        TenantId::new("thj"),
        ops::TRANSFORM,
        "unknown",
        tokens(1, 1, 0, 0),
        &prices(),
        "k",
    );
    assert_eq!(r.cost_micros, 0);
    assert_eq!(r.api_calls, 1);
    assert_eq!(r.service, "claude");
}

#[tokio::test]
async fn concurrent_duplicates_record_exactly_once() {
    for (_t, store) in backends().await {
        let r = transform("thj", "job-6", "leadership", tokens(1_000, 100, 0, 0));
        let attempts = (0..8).map(|_| {
            let (store, r) = (store.clone(), r.clone());
            tokio::spawn(async move { store.record(&r).await.unwrap() })
        });
        let inserted = futures::future::join_all(attempts)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count();
        assert_eq!(inserted, 1);
        let s = store
            .summary(&TenantId::new("thj"), t0(), t0() + Duration::hours(1))
            .await
            .unwrap();
        assert_eq!((s.api_calls, s.tokens.input), (1, 1_000));
    }
}
