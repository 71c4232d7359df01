//! The activity store on real SQLite and PostgreSQL databases: dedupe per tenant, tenant
//! isolation, the half-open period, ordering and limits, details round-trip.

use chrono::{DateTime, Duration, TimeZone, Utc};
use onomancer_testkit::TestDb;
use serde_json::json;

use super::*;
use crate::db::Database;

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
}

fn event(tenant: &str, key: &str, when: DateTime<Utc>) -> ActivityEvent {
    ActivityEvent {
        tenant: TenantId::new(tenant),
        source: ActivitySource::Github,
        kind: "pull_request.merged".into(),
        title: format!("octo-org/app #1 {key}"),
        url: Some("https://github.com/octo-org/app/pull/1".into()),
        actor: Some("alice".into()),
        occurred_at: when,
        details: json!({"repo": "octo-org/app", "number": 1, "labels": ["a", "b"]}),
        dedupe_key: key.into(),
    }
}

#[tokio::test]
async fn an_event_is_stored_once_per_tenant_and_key() {
    for t in TestDb::both().await {
        let store = ActivityStore::new(Database::open(&t.url).await.unwrap());
        let e = event("acme", "github:d1:activity", at(24, 10));
        assert!(store.record(&e).await.unwrap(), "{}", t.url);
        // The same job again (even with other content): nothing new.
        let mut again = e.clone();
        again.title = "changed".into();
        assert!(!store.record(&again).await.unwrap());
        let got = store
            .between(&e.tenant, at(23, 0), at(30, 0), 100)
            .await
            .unwrap();
        assert_eq!(got, vec![e.clone()], "{}", t.url);
        // The same key in another tenant is another event.
        assert!(store
            .record(&event("other", "github:d1:activity", at(24, 10)))
            .await
            .unwrap());
    }
}

#[tokio::test]
async fn queries_see_only_their_tenant() {
    for t in TestDb::both().await {
        let store = ActivityStore::new(Database::open(&t.url).await.unwrap());
        for i in 0..3 {
            store
                .record(&event("acme", &format!("a{i}"), at(24, 10 + i)))
                .await
                .unwrap();
        }
        store
            .record(&event("globex", "g0", at(24, 11)))
            .await
            .unwrap();
        let acme = TenantId::new("acme");
        let got = store
            .between(&acme, at(1, 0), at(30, 0), 100)
            .await
            .unwrap();
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|e| e.tenant == acme));
        assert_eq!(
            store
                .count_between(&acme, at(1, 0), at(30, 0))
                .await
                .unwrap(),
            3
        );
        let globex = store
            .between(&TenantId::new("globex"), at(1, 0), at(30, 0), 100)
            .await
            .unwrap();
        assert_eq!(globex.len(), 1);
        assert_eq!(globex[0].dedupe_key, "g0");
        assert!(store
            .between(&TenantId::new("nobody"), at(1, 0), at(30, 0), 100)
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test]
async fn the_period_is_half_open_ordered_and_limited() {
    for t in TestDb::both().await {
        let store = ActivityStore::new(Database::open(&t.url).await.unwrap());
        let start = at(23, 9);
        let end = start + Duration::days(7);
        // Recorded out of order; one exactly at each bound.
        for (key, when) in [
            ("late", end - Duration::milliseconds(1)),
            ("at-start", start),
            ("at-end", end),
            ("before", start - Duration::milliseconds(1)),
            ("middle", at(26, 12)),
        ] {
            store.record(&event("acme", key, when)).await.unwrap();
        }
        let acme = TenantId::new("acme");
        let keys: Vec<String> = store
            .between(&acme, start, end, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.dedupe_key)
            .collect();
        assert_eq!(keys, ["at-start", "middle", "late"], "{}", t.url);
        let first_two = store.between(&acme, start, end, 2).await.unwrap();
        assert_eq!(first_two.len(), 2);
        assert_eq!(first_two[1].dedupe_key, "middle");
        assert_eq!(store.count_between(&acme, start, end).await.unwrap(), 3);
    }
}

#[tokio::test]
async fn optional_fields_and_details_round_trip() {
    for t in TestDb::both().await {
        let store = ActivityStore::new(Database::open(&t.url).await.unwrap());
        let e = ActivityEvent {
            tenant: TenantId::new("acme"),
            source: ActivitySource::Linear,
            kind: "issue.update".into(),
            title: "ENG-7 Ship it — “quoted” ✓".into(),
            url: None,
            actor: None,
            occurred_at: Utc.timestamp_millis_opt(1_795_000_000_123).unwrap(),
            details: json!({"state": "Done", "changed": ["stateId"], "nested": {"n": 1.5}}),
            dedupe_key: "linear:x:activity".into(),
        };
        store.record(&e).await.unwrap();
        let got = store
            .between(&e.tenant, at(1, 0), at(30, 0), 10)
            .await
            .unwrap();
        assert_eq!(got, vec![e], "{}", t.url);
    }
}

#[test]
fn sources_round_trip_and_database_errors_retry() {
    for s in [
        ActivitySource::Github,
        ActivitySource::Linear,
        ActivitySource::Discord,
    ] {
        assert_eq!(ActivitySource::parse(s.as_str()), Some(s));
    }
    assert_eq!(ActivitySource::parse("gitlab"), None);
    let retry: JobError = ActivityError::Sqlx(sqlx::Error::PoolTimedOut).into();
    assert!(matches!(retry, JobError::Retryable { .. }));
    let corrupt: JobError = ActivityError::Corrupt {
        id: 3,
        message: "bad".into(),
    }
    .into();
    assert!(matches!(corrupt, JobError::Terminal { ref message } if message.contains("row 3")));
}
