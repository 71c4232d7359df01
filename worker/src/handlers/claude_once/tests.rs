//! [`ClaudeOnce`]: a kept text costs nothing, every paid call is a usage row keyed by its
//! message (a step repeated after its text was lost is a second row), failures are not billed.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;

use onomancer_shared::db::Database;
use onomancer_shared::llm::{ClaudeClient, ClaudeConfig, Message, MessagesRequest};
use onomancer_shared::usage::{ops, UsageStore};
use onomancer_shared::{JobError, JobId, JobKind, Lane, NewJob, TenantId};
use onomancer_testkit::claude_fake::{ClaudeFake, Fault};
use onomancer_testkit::{TestDb, TestRedis};

use super::ClaudeOnce;
use crate::billed::BilledClaude;
use crate::transform::tests::support::{seed_prices, TRANSFORM_MODEL};

#[tokio::test]
async fn a_kept_text_costs_nothing_and_a_step_repeated_after_losing_it_is_billed_again() {
    let redis = TestRedis::new().await;
    let db = TestDb::sqlite().await;
    let claude = ClaudeFake::start().await;
    let mut config = ClaudeConfig::new(claude.base_url(), "test-key".to_string().into());
    config.connect_retries = 0;
    let once = ClaudeOnce {
        claude: Some(Arc::new(BilledClaude {
            client: ClaudeClient::new(config).unwrap(),
            limiter: None,
            usage: UsageStore::new(db.db.clone()),
            prices: seed_prices(),
        })),
        model: TRANSFORM_MODEL.into(),
        redis: redis.conn.clone(),
        keys: redis.keys.clone(),
    };
    let job = NewJob::untyped(TenantId::new("thj"), JobKind::Digest, Lane::Default, &())
        .into_envelope(JobId::generate(), chrono::Utc::now().timestamp_millis());
    let ask = || {
        once.ask(
            &job,
            "digest",
            ops::DIGEST,
            "the digest",
            Duration::from_secs(60),
            |model| async move {
                Ok(MessagesRequest::new(
                    model,
                    200,
                    vec![Message::user("Persona: leadership. Write the digest.")],
                ))
            },
        )
    };

    // A rate limit is not billed, leaves nothing behind and defers the job (no attempt spent).
    claude.fail_next(
        Fault::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        },
        1,
    );
    assert!(matches!(
        ask().await.unwrap_err(),
        JobError::Deferred { .. }
    ));
    let first = ask().await.unwrap();
    assert!(!first.reused);
    let again = ask().await.unwrap();
    assert!(again.reused, "the kept text is used");
    assert_eq!(again.text, first.text);
    assert_eq!(claude.answered_calls(), 1);

    // The text was lost (a crash between the answer and keeping it): the step pays again,
    // and the bill shows both calls.
    let mut conn = redis.conn.clone();
    let _: () = conn.del(once.text_key(&job, "digest")).await.unwrap();
    assert!(!ask().await.unwrap().reused);
    assert_eq!(claude.answered_calls(), 2);
    let Database::Sqlite(pool) = &db.db else {
        unreachable!()
    };
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT job_id, step, idempotency_key, cost_micros FROM usage_records ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let answered = claude.answered();
    assert_eq!(rows.len(), 2);
    for (row, call) in rows.iter().zip(&answered) {
        assert_eq!(row.0, job.id.to_string());
        assert_eq!(row.1, "digest");
        assert_eq!(row.2, format!("claude:{}", call.id));
    }
    let billed: i64 = rows.iter().map(|r| r.3).sum();
    assert_eq!(billed, claude.answered_cost(&seed_prices()));
}
