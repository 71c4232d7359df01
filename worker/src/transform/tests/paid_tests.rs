//! Paid Claude work is never thrown away and always billed: four-persona transforms against a
//! Claude fake injecting 429/529 (with and without `retry-after`), hangs and failed summaries.
//! Every call the fake answered has exactly one usage row, the usage table's cost equals the
//! fake's answered cost to the micro-dollar, and within a job no persona is paid twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use onomancer_shared::db::Database;
use onomancer_shared::llm::{ClaudeClient, ClaudeConfig};
use onomancer_shared::{JobError, JobId, Persona, TenantId};
use onomancer_testkit::claude_fake::{Fault, FaultMix};

use super::support::*;
use crate::billed::BilledClaude;
use crate::transform::{RunContext, TransformEngine, TransformRun};

fn personas() -> Vec<Persona> {
    ["leadership", "product", "marketing", "devrel"]
        .map(Persona::new)
        .to_vec()
}

/// One usage row: (job, step, idempotency key, cost).
type Row = (Option<String>, Option<String>, String, i64);

async fn usage_rows(db: &Database) -> Vec<Row> {
    let sql = "SELECT job_id, step, idempotency_key, cost_micros FROM usage_records ORDER BY id";
    db.fetch_all(sql, &[]).await.unwrap()
}

/// Asserts the bill matches what the fake answered: one row per answered message, keyed by
/// its id, and the same total cost to the micro-dollar. Returns the rows.
async fn assert_every_answered_call_is_billed_once(h: &Harness) -> Vec<Row> {
    let rows = usage_rows(&h.db.db).await;
    let answered = h.claude.answered();
    assert_eq!(
        rows.len(),
        answered.len(),
        "one usage row per answered call"
    );
    let keys: BTreeSet<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    let expected: BTreeSet<String> = answered
        .iter()
        .map(|c| format!("claude:{}", c.id))
        .collect();
    assert_eq!(
        keys,
        expected.iter().map(String::as_str).collect(),
        "rows are keyed by the answered messages"
    );
    let billed: i64 = rows.iter().map(|r| r.3).sum();
    assert_eq!(billed, h.claude.answered_cost(&seed_prices()));
    rows
}

/// Runs the job until it succeeds (the queue's retries, without their waits), at most 40 times.
async fn run_to_success(
    engine: &TransformEngine,
    tenant: &TenantId,
    job: &JobId,
    doc: &str,
) -> (TransformRun, u32) {
    let ctx = RunContext {
        tenant,
        job,
        user: None,
        progress: None,
    };
    for attempt in 1..=40 {
        match engine.transform(&ctx, doc, &personas()).await {
            Ok(run) => return (run, attempt),
            Err(JobError::Terminal { message }) => panic!("terminal: {message}"),
            Err(_) => continue,
        }
    }
    panic!("job {job} did not succeed in 40 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_30_percent_429_and_529_every_answered_call_is_billed_once_and_no_persona_twice() {
    const JOBS: usize = 40;
    let h = Harness::new(&shipped_prompts()).await;
    replies_of(&h.claude, 300);
    // Errors come back at once while answers take a while: a failing persona always fails
    // while its siblings are being paid for.
    h.claude.set_answer_delay(Duration::from_millis(30));
    h.claude.inject(Some(
        FaultMix::new(2024)
            .with(
                Fault::RateLimited {
                    retry_after: Some(Duration::from_secs(3)),
                },
                0.10,
            )
            .with(Fault::RateLimited { retry_after: None }, 0.05)
            .with(Fault::Overloaded, 0.15),
    ));
    let tenant = TenantId::new("thj");
    let jobs: Vec<(JobId, String)> = (0..JOBS)
        .map(|i| (JobId::generate(), prd(1_500, &format!("service {i}"))))
        .collect();
    let runs: Vec<(TransformRun, u32)> = stream::iter(&jobs)
        .map(|(job, doc)| run_to_success(&h.engine, &tenant, job, doc))
        .buffer_unordered(8)
        .collect()
        .await;

    let faults = h.claude.faults();
    let injected: usize = faults.values().sum();
    assert!(injected >= 30, "faults were injected: {faults:?}");
    assert!(faults.contains_key("rate_limited") && faults.contains_key("overloaded"));
    let retried = runs.iter().filter(|(_, attempts)| *attempts > 1).count();
    assert!(retried >= 10, "{retried} jobs needed a retry");
    // A retry reuses what earlier attempts paid for.
    assert!(runs
        .iter()
        .filter(|(_, attempts)| *attempts > 1)
        .any(|(run, _)| run.personas.iter().any(|p| p.served_by == "l1")));

    // Exactly the needed calls were paid: one per persona and job, none twice.
    assert_eq!(h.claude.answered_calls(), 4 * JOBS);
    let rows = assert_every_answered_call_is_billed_once(&h).await;
    let mut per_step: BTreeMap<(Option<String>, Option<String>), usize> = BTreeMap::new();
    for (job, step, _, _) in &rows {
        *per_step.entry((job.clone(), step.clone())).or_default() += 1;
    }
    assert_eq!(per_step.len(), 4 * JOBS);
    assert!(per_step.values().all(|n| *n == 1), "{per_step:?}");
}

#[tokio::test]
async fn a_hung_persona_costs_nothing_and_its_siblings_answers_are_kept() {
    let h = Harness::new(&shipped_prompts()).await;
    let mut engine = (*h.engine).clone();
    let mut config = ClaudeConfig::new(h.claude.base_url(), "test-key".to_string().into());
    config.timeout = Duration::from_millis(300);
    config.connect_retries = 0;
    engine.claude = Arc::new(BilledClaude {
        client: ClaudeClient::new(config).unwrap(),
        ..(*engine.claude).clone()
    });
    // The first persona (alone) is answered; one of the three siblings hangs.
    h.claude.fail_next(Fault::Slow(Duration::ZERO), 1);
    h.claude.fail_next(Fault::Hang, 1);
    let tenant = TenantId::new("thj");
    let job = JobId::generate();
    let ctx = RunContext {
        tenant: &tenant,
        job: &job,
        user: None,
        progress: None,
    };
    let doc = prd(1_500, "hang");
    let err = engine.transform(&ctx, &doc, &personas()).await.unwrap_err();
    assert!(matches!(err, JobError::Retryable { .. }), "{err:?}");
    assert_eq!((h.claude.hanging(), h.claude.answered_calls()), (1, 3));
    assert_eq!(assert_every_answered_call_is_billed_once(&h).await.len(), 3);

    let run = engine.transform(&ctx, &doc, &personas()).await.unwrap();
    let served: Vec<&str> = run.personas.iter().map(|p| p.served_by.as_str()).collect();
    assert_eq!(
        served.iter().filter(|s| **s == "claude").count(),
        1,
        "{served:?}"
    );
    assert_eq!(
        served.iter().filter(|s| **s == "l1").count(),
        3,
        "{served:?}"
    );
    assert_eq!(h.claude.answered_calls(), 4);
    assert_every_answered_call_is_billed_once(&h).await;
}

#[tokio::test]
async fn a_failed_section_summary_keeps_the_other_summaries() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(shipped_prompts()).unwrap() {
        let e = entry.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    std::fs::write(
        dir.path().join("transform.json"),
        r#"{"inputBudgetTokens": 3000, "sectionMaxChars": 4000}"#,
    )
    .unwrap();
    let h = Harness::new(dir.path()).await;
    let doc = prd(8_000, "ledger");
    let sections = crate::transform::summarize::split_sections(&doc, 4000).len();
    h.claude.set_answer_delay(Duration::from_millis(20));
    h.claude.fail_next(Fault::Overloaded, 1);
    let tenant = TenantId::new("thj");
    let job = JobId::generate();
    let ctx = RunContext {
        tenant: &tenant,
        job: &job,
        user: None,
        progress: None,
    };
    let one = [Persona::new("product")];
    let err = h.engine.transform(&ctx, &doc, &one).await.unwrap_err();
    // An overload defers the job (no attempt spent); the answered sections are kept.
    assert!(matches!(err, JobError::Deferred { .. }), "{err:?}");
    assert_eq!(
        h.claude.answered_calls(),
        sections - 1,
        "every other section was paid and kept"
    );
    assert_every_answered_call_is_billed_once(&h).await;

    let run = h.engine.transform(&ctx, &doc, &one).await.unwrap();
    assert!(run.summarized);
    // The retry paid for the missing summary and the persona only.
    assert_eq!(h.claude.answered_calls(), sections + 1);
    let rows = assert_every_answered_call_is_billed_once(&h).await;
    let steps: BTreeSet<Option<String>> = rows.iter().map(|r| r.1.clone()).collect();
    assert_eq!(
        steps.len(),
        sections + 1,
        "one row per section and the persona"
    );
}
