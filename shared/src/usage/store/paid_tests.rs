//! Paid Claude calls in the usage store, on SQLite and PostgreSQL: keyed by message id, every
//! paid call is a row (a repeated job step included), the same answer stored twice is one, and
//! rows written before keep their job step for reports.

use chrono::{Duration, Utc};
use onomancer_testkit::db::TestDb;

use super::*;
use crate::db::Database;
use crate::ids::{JobId, TenantId};
use crate::llm::pricing::{ModelPrice, Prices};
use crate::usage::{ops, TokenCounts, UsageRecord};

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

fn paid(job: &JobId, step: &str, message_id: &str, input: u64) -> UsageRecord {
    UsageRecord::claude_call(
        TenantId::new("thj"),
        ops::TRANSFORM,
        "big-model",
        TokenCounts {
            input,
            output: 100,
            ..Default::default()
        },
        &prices(),
        UsageRecord::message_key(message_id),
    )
    .job_step(job.clone(), step)
}

/// (job_id, step, idempotency_key) of every row, in insertion order.
async fn rows(db: &Database) -> Vec<(Option<String>, Option<String>, String)> {
    let sql = "SELECT job_id, step, idempotency_key FROM usage_records ORDER BY id";
    db.fetch_all(sql, &[]).await.unwrap()
}

async fn execute(db: &Database, sql: &str) {
    db.execute(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn a_repeated_job_step_is_a_second_paid_row_and_the_same_answer_counts_once() {
    for t in TestDb::both().await {
        let db = Database::open(&t.url).await.unwrap();
        let store = UsageStore::new(db.clone());
        let job = JobId::new("job-1");
        let first = paid(&job, "transform:devrel", "msg_01A", 1_000);
        assert!(store.record_paid(&first).await.unwrap());
        // The same answer stored again (a retry of the store): one row.
        assert!(!store.record_paid(&first).await.unwrap());
        // The step ran again and Claude billed another message: a second row.
        let repeat = paid(&job, "transform:devrel", "msg_01B", 1_200);
        assert!(store.record_paid(&repeat).await.unwrap());
        let now = Utc::now();
        let s = store
            .summary(
                &TenantId::new("thj"),
                now - Duration::hours(1),
                now + Duration::hours(1),
            )
            .await
            .unwrap();
        assert_eq!(s.api_calls, 2);
        assert_eq!(s.tokens.input, 2_200);
        assert_eq!(
            s.estimated_cost_micros,
            first.cost_micros + repeat.cost_micros
        );
        assert_eq!(s.transforms, 1, "still one transform job");
        let step = Some("transform:devrel".to_owned());
        assert_eq!(
            rows(&db).await,
            vec![
                (Some("job-1".into()), step.clone(), "claude:msg_01A".into()),
                (Some("job-1".into()), step, "claude:msg_01B".into()),
            ]
        );
    }
}

#[test]
fn a_message_without_an_id_is_never_merged_with_another() {
    let a = UsageRecord::message_key("");
    let b = UsageRecord::message_key("  ");
    assert!(a.starts_with("claude:no-id:"), "{a}");
    assert_ne!(a, b);
    assert_eq!(UsageRecord::message_key("msg_1"), "claude:msg_1");
}

#[tokio::test]
async fn rows_keyed_by_job_step_before_the_migration_keep_their_step() {
    for t in TestDb::both().await {
        let db = Database::open(&t.url).await.unwrap();
        // Back to the schema before 0005, with a row written then.
        for sql in [
            "DROP INDEX usage_records_tenant_job",
            "ALTER TABLE usage_records DROP COLUMN step",
            "DELETE FROM _sqlx_migrations WHERE version = 5",
        ] {
            execute(&db, sql).await;
        }
        execute(
            &db,
            "INSERT INTO usage_records (tenant_id, occurred_at_ms, operation, service, \
             job_id, idempotency_key) VALUES \
             ('thj', 1, 'transform', 'claude', 'j-1', 'job:j-1:transform:devrel'), \
             ('thj', 2, 'query', 'claude', NULL, 'q1'), \
             ('thj', 3, 'digest', 'claude', 'j-2', 'other:j-2')",
        )
        .await;
        db.migrate().await.unwrap();
        assert_eq!(
            rows(&db).await,
            vec![
                (
                    Some("j-1".into()),
                    Some("transform:devrel".into()),
                    "job:j-1:transform:devrel".into()
                ),
                (None, None, "q1".into()),
                (Some("j-2".into()), None, "other:j-2".into()),
            ]
        );
    }
}
