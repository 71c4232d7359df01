//! Admission against the real Redis, each test in its own namespace.

use chrono::TimeZone;

use super::*;

/// `onomancer_testkit` links its own copy of this crate, so build this crate's types from the
/// namespace it picked; the returned guard deletes the keys on drop.
async fn admission() -> (Admission, onomancer_testkit::TestRedis) {
    let guard = onomancer_testkit::TestRedis::new().await;
    let conn = RedisConn::connect(&onomancer_testkit::redis_ns::redis_url())
        .await
        .expect("test redis");
    (Admission::new(conn, KeySpace::isolated(&guard.name)), guard)
}

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

#[tokio::test]
async fn two_hundred_concurrent_requests_against_a_hundred_left_admit_exactly_a_hundred() {
    let (adm, _guard) = admission().await;
    let tenant = TenantId::new("acme");
    let quota = TransformQuota {
        per_day: Some(150),
        per_month: Some(10_000),
    };
    // Use 50 of the 150 first, so exactly 100 remain.
    for _ in 0..50 {
        let d = adm
            .consume_transforms(&tenant, 1, quota, noon())
            .await
            .unwrap();
        assert!(matches!(d, QuotaDecision::Admitted(_)));
    }
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let adm = adm.clone();
            let tenant = tenant.clone();
            tokio::spawn(async move { adm.consume_transforms(&tenant, 1, quota, noon()).await })
        })
        .collect();
    let mut admitted = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            QuotaDecision::Admitted(_) => admitted += 1,
            QuotaDecision::Exceeded {
                limit, resets_at, ..
            } => {
                assert_eq!(limit, QuotaLimit::TransformationsPerDay);
                assert_eq!(
                    resets_at,
                    Utc.with_ymd_and_hms(2026, 11, 29, 0, 0, 0).unwrap()
                );
                refused += 1;
            }
        }
    }
    assert_eq!((admitted, refused), (100, 100));
    let usage = adm.quota_usage(&tenant, quota, noon()).await.unwrap();
    assert_eq!(usage.day.used, 150);
    assert_eq!(usage.day.left, Some(0));
    assert_eq!(usage.month.used, 150);
    assert_eq!(usage.month.left, Some(9_850));
}

#[tokio::test]
async fn the_monthly_limit_refuses_with_the_first_of_next_month() {
    let (adm, _guard) = admission().await;
    let tenant = TenantId::new("acme");
    let quota = TransformQuota {
        per_day: Some(10),
        per_month: Some(3),
    };
    for _ in 0..3 {
        adm.consume_transforms(&tenant, 1, quota, noon())
            .await
            .unwrap();
    }
    match adm
        .consume_transforms(&tenant, 1, quota, noon())
        .await
        .unwrap()
    {
        QuotaDecision::Exceeded {
            limit,
            resets_at,
            usage,
        } => {
            assert_eq!(limit.as_str(), "transformationsPerMonth");
            assert_eq!(
                resets_at,
                Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
            );
            assert_eq!(usage.month.used, 3, "a refusal consumes nothing");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_new_day_has_a_fresh_counter_and_counters_expire() {
    let (adm, _guard) = admission().await;
    let tenant = TenantId::new("acme");
    let quota = TransformQuota {
        per_day: Some(1),
        per_month: None,
    };
    let today = Utc::now();
    assert!(matches!(
        adm.consume_transforms(&tenant, 1, quota, today)
            .await
            .unwrap(),
        QuotaDecision::Admitted(_)
    ));
    assert!(matches!(
        adm.consume_transforms(&tenant, 1, quota, today)
            .await
            .unwrap(),
        QuotaDecision::Exceeded { .. }
    ));
    let tomorrow = today + chrono::Duration::days(1);
    assert!(matches!(
        adm.consume_transforms(&tenant, 1, quota, tomorrow)
            .await
            .unwrap(),
        QuotaDecision::Admitted(_)
    ));
    let [day_key, _] = adm.quota_keys(&tenant, &Periods::at(today));
    let ttl: i64 = redis::cmd("TTL")
        .arg(&day_key)
        .query_async(&mut adm.conn.clone())
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 86_400 + 3_600, "ttl {ttl}");
}

#[tokio::test]
async fn refunds_give_back_what_was_consumed_and_never_go_negative() {
    let (adm, _guard) = admission().await;
    let tenant = TenantId::new("acme");
    let quota = TransformQuota {
        per_day: Some(2),
        per_month: Some(2),
    };
    adm.consume_transforms(&tenant, 2, quota, noon())
        .await
        .unwrap();
    adm.refund_transforms(&tenant, 1, noon()).await.unwrap();
    assert_eq!(
        adm.quota_usage(&tenant, quota, noon())
            .await
            .unwrap()
            .day
            .used,
        1
    );
    adm.refund_transforms(&tenant, 5, noon()).await.unwrap();
    let usage = adm.quota_usage(&tenant, quota, noon()).await.unwrap();
    assert_eq!((usage.day.used, usage.month.used), (0, 0));
}

#[tokio::test]
async fn unlimited_quotas_always_admit() {
    let (adm, _guard) = admission().await;
    let tenant = TenantId::new("big");
    let d = adm
        .consume_transforms(&tenant, 1_000, TransformQuota::default(), noon())
        .await
        .unwrap();
    match d {
        QuotaDecision::Admitted(u) => assert_eq!((u.day.used, u.day.left), (1_000, None)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_rate_limit_allows_a_burst_then_names_the_wait_per_tenant() {
    let (adm, _guard) = admission().await;
    let a = TenantId::new("a");
    let b = TenantId::new("b");
    // 60 a minute = one a second, burst 5.
    let spec = RateSpec {
        per_minute: 60,
        burst: 5,
    };
    for i in 0..5u64 {
        match adm.check_rate(&a, "requests", spec).await.unwrap() {
            RateDecision::Allowed { remaining } => assert_eq!(remaining, 4 - i),
            other => panic!("request {i}: {other:?}"),
        }
    }
    match adm.check_rate(&a, "requests", spec).await.unwrap() {
        RateDecision::Limited { retry_after } => {
            assert!(retry_after > Duration::from_millis(900), "{retry_after:?}");
            assert!(retry_after <= Duration::from_secs(1), "{retry_after:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        adm.check_rate(&b, "requests", spec).await.unwrap(),
        RateDecision::Allowed { .. }
    ));
}
