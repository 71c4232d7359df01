//! The engine: prompt caching across personas, cost from usage fields, cache reuse, changed
//! prompts, Claude errors, long documents.

use std::sync::Arc;
use std::time::Duration;

use onomancer_shared::{JobError, JobId, Persona, TenantId};

use super::support::*;
use crate::billed::BilledClaude;
use crate::transform::{dry_run, RunContext};

fn personas() -> Vec<Persona> {
    ["leadership", "product", "marketing", "devrel"]
        .map(Persona::new)
        .to_vec()
}

#[tokio::test]
async fn four_personas_pay_for_the_document_once_and_cost_matches_usage() {
    let h = Harness::new(&shipped_prompts()).await;
    replies_of(&h.claude, 2000);
    let tenant = TenantId::new("thj");
    let job = JobId::generate();
    let ctx = RunContext {
        tenant: &tenant,
        job: &job,
        user: Some("u1"),
        progress: None,
    };
    let doc = prd(11_500, "checkout");
    let run = h.engine.transform(&ctx, &doc, &personas()).await.unwrap();

    assert_eq!(h.claude.calls(), 4);
    let reqs = h.claude.requests();
    // Every call carries the shared system prefix with the document marked for caching.
    for r in &reqs {
        let system = r.body["system"].as_array().unwrap();
        assert_eq!(
            system[1]["cache_control"],
            serde_json::json!({"type": "ephemeral"})
        );
        assert!(system[1]["text"].as_str().unwrap().contains("Section 1"));
    }
    let written: Vec<u64> = run
        .personas
        .iter()
        .map(|p| p.tokens.cache_creation)
        .collect();
    let read: Vec<u64> = run.personas.iter().map(|p| p.tokens.cache_read).collect();
    assert_eq!(written.iter().filter(|w| **w > 0).count(), 1, "{written:?}");
    assert_eq!(read.iter().filter(|r| **r > 0).count(), 3, "{read:?}");

    // Cost equals the hand computation from the usage fields at the seed's prices.
    let mut hand = 0.0;
    for p in &run.personas {
        assert_eq!(p.served_by, "claude");
        let t = &p.tokens;
        let dollars = t.input as f64 * 3.0 / 1e6
            + t.cache_creation as f64 * 3.0 * 1.25 / 1e6
            + t.cache_read as f64 * 3.0 * 0.1 / 1e6
            + t.output as f64 * 15.0 / 1e6;
        hand += dollars;
        assert!((p.cost_micros as f64 - dollars * 1e6).abs() <= 1.0, "{p:?}");
    }
    let total: i64 = run.personas.iter().map(|p| p.cost_micros).sum();
    assert!((total as f64 - hand * 1e6).abs() <= 4.0);
    // The seed's uncached figure is $0.28; sharing the document brings it under $0.18.
    assert!(total < 180_000, "four personas cost {total} micro-dollars");
    let summary = h
        .engine
        .claude
        .usage
        .summary(
            &tenant,
            chrono::Utc::now() - chrono::Duration::hours(1),
            chrono::Utc::now() + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(summary.estimated_cost_micros, total);
    assert_eq!(summary.api_calls, 4);

    // The same document again (whitespace changed, another job): all from cache, no call.
    let job2 = JobId::generate();
    let ctx2 = RunContext {
        tenant: &tenant,
        job: &job2,
        user: None,
        progress: None,
    };
    let again = h
        .engine
        .transform(&ctx2, &doc.replace("\n\n", "\r\n\r\n  "), &personas())
        .await
        .unwrap();
    assert_eq!(h.claude.calls(), 4);
    assert!(again
        .personas
        .iter()
        .all(|p| p.served_by == "l1" && p.cost_micros == 0));
    // A new worker (cold L1) reads L2.
    let other = h.another_engine(&shipped_prompts());
    let cold = other.transform(&ctx2, &doc, &personas()).await.unwrap();
    assert!(
        cold.personas.iter().all(|p| p.served_by == "l2"),
        "{:?}",
        cold.personas
    );
    assert_eq!(run.personas[0].text, cold.personas[0].text);
}

#[tokio::test]
async fn an_edited_persona_prompt_recomputes_only_that_persona() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(shipped_prompts()).unwrap() {
        let e = entry.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    let h = Harness::new(dir.path()).await;
    let tenant = TenantId::new("thj");
    let job = JobId::generate();
    let ctx = RunContext {
        tenant: &tenant,
        job: &job,
        user: None,
        progress: None,
    };
    let doc = prd(2000, "search");
    h.engine.transform(&ctx, &doc, &personas()).await.unwrap();
    assert_eq!(h.claude.calls(), 4);
    let path = dir.path().join("marketing.md");
    let edited = std::fs::read_to_string(&path).unwrap() + "\nAlways end with a call to action.\n";
    std::fs::write(&path, edited).unwrap();
    let job2 = JobId::generate();
    let ctx2 = RunContext {
        tenant: &tenant,
        job: &job2,
        user: None,
        progress: None,
    };
    let run = h.engine.transform(&ctx2, &doc, &personas()).await.unwrap();
    assert_eq!(h.claude.calls(), 5);
    let served: Vec<&str> = run.personas.iter().map(|p| p.served_by.as_str()).collect();
    assert_eq!(served, vec!["l1", "l1", "claude", "l1"]);
}

#[tokio::test]
async fn claude_errors_map_to_retry_or_terminal() {
    let h = Harness::new(&shipped_prompts()).await;
    let tenant = TenantId::new("thj");
    let job = JobId::generate();
    let ctx = RunContext {
        tenant: &tenant,
        job: &job,
        user: None,
        progress: None,
    };
    let one = [Persona::new("devrel")];
    let body = |t: &str, m: &str| onomancer_testkit::claude_fake::error_body(t, m);

    h.claude.push_failure(
        429,
        &[("retry-after", "7")],
        body("rate_limit_error", "slow down"),
    );
    // Rate limits and overload defer the job (no attempt spent) for Claude's wait.
    match h.engine.transform(&ctx, "doc a", &one).await.unwrap_err() {
        JobError::Deferred { wait, .. } => assert_eq!(wait, Duration::from_secs(7)),
        other => panic!("{other:?}"),
    }
    h.claude
        .push_failure(529, &[], body("overloaded_error", "Overloaded"));
    assert!(matches!(
        h.engine.transform(&ctx, "doc a", &one).await.unwrap_err(),
        JobError::Deferred { wait, .. } if wait == onomancer_shared::llm::error::UNHINTED_WAIT
    ));
    h.claude.push_failure(
        400,
        &[],
        body(
            "invalid_request_error",
            "prompt is too long: 250000 tokens > 200000 maximum",
        ),
    );
    match h.engine.transform(&ctx, "doc a", &one).await.unwrap_err() {
        JobError::Terminal { message } => {
            assert!(
                message.contains("Claude rejected the request (400 invalid_request_error)"),
                "{message}"
            );
            assert!(message.contains("prompt is too long"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Nothing was cached by the failures: the next try calls Claude and succeeds.
    let run = h.engine.transform(&ctx, "doc a", &one).await.unwrap();
    assert_eq!(run.personas[0].served_by, "claude");
    assert_eq!(h.claude.calls(), 4);
}

fn summary_calls(h: &Harness) -> usize {
    h.claude
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/messages" && r.body["model"] == SUMMARIZE_MODEL)
        .count()
}

#[tokio::test]
async fn an_edited_section_of_a_long_document_costs_one_summary() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(shipped_prompts()).unwrap() {
        let e = entry.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    // A small budget so a test-sized document counts as long.
    std::fs::write(
        dir.path().join("transform.json"),
        r#"{"inputBudgetTokens": 3000, "sectionMaxChars": 4000}"#,
    )
    .unwrap();
    let h = Harness::new(dir.path()).await;
    let tenant = TenantId::new("thj");
    let doc = prd(8000, "billing");
    let sections = crate::transform::summarize::split_sections(&doc, 4000).len();
    assert!(sections > 5, "{sections}");
    let one = [Persona::new("product")];
    let job = JobId::generate();
    let ctx = RunContext {
        tenant: &tenant,
        job: &job,
        user: None,
        progress: None,
    };
    let run = h.engine.transform(&ctx, &doc, &one).await.unwrap();
    assert!(run.summarized);
    assert_eq!(summary_calls(&h), sections);
    // The persona saw the summaries, not the whole document.
    let last = h.claude.requests().last().unwrap().body.clone();
    let sent = last["system"][1]["text"].as_str().unwrap().len();
    assert!(sent < doc.len() / 2, "sent {sent} of {}", doc.len());

    let edited = doc.replacen("Section 3\n", "Section 3 (revised)\n", 1);
    let job2 = JobId::generate();
    let ctx2 = RunContext {
        tenant: &tenant,
        job: &job2,
        user: None,
        progress: None,
    };
    let dry = dry_run(&h.engine, &tenant, &edited, &one).await.unwrap();
    assert_eq!((dry.summarized_first, dry.summaries_to_compute), (true, 1));
    h.engine.transform(&ctx2, &edited, &one).await.unwrap();
    assert_eq!(summary_calls(&h), sections + 1);
}

#[tokio::test]
async fn dry_run_names_tiers_and_estimates_without_calling_claude() {
    let h = Harness::new(&shipped_prompts()).await;
    let tenant = TenantId::new("thj");
    let doc = prd(11_500, "dry");
    let report = dry_run(&h.engine, &tenant, &doc, &personas())
        .await
        .unwrap();
    assert_eq!(h.claude.calls(), 0);
    assert_eq!(
        report.content_hash,
        onomancer_shared::cache::content_hash(&doc).to_string()
    );
    assert!(report.personas.iter().all(|p| p.served_by == "claude"));
    assert!(report.personas[0].tokens.cache_creation > 11_000);
    assert!(report.personas[1..]
        .iter()
        .all(|p| p.tokens.cache_read > 11_000));
    assert!(
        report.cost_micros > 150_000 && report.cost_micros < 180_000,
        "{}",
        report.cost_micros
    );

    let job = JobId::generate();
    let ctx = RunContext {
        tenant: &tenant,
        job: &job,
        user: None,
        progress: None,
    };
    h.engine
        .transform(&ctx, &doc, &personas()[..2])
        .await
        .unwrap();
    let report = dry_run(&h.engine, &tenant, &doc, &personas())
        .await
        .unwrap();
    let served: Vec<&str> = report
        .personas
        .iter()
        .map(|p| p.served_by.as_str())
        .collect();
    assert_eq!(served, vec!["l1", "l1", "claude", "claude"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_workers_sending_twenty_requests_each_make_one_call_per_persona() {
    let h = Harness::new(&shipped_prompts()).await;
    // Calls take a while, so the 80 requests overlap.
    h.claude.set_delay(Some(Duration::from_millis(150)));
    let workers: Vec<_> = (0..4)
        .map(|_| h.another_engine(&shipped_prompts()))
        .collect();
    let doc = prd(3000, "concurrency");
    let tenant = TenantId::new("thj");
    let mut tasks = Vec::new();
    for engine in &workers {
        for _ in 0..20 {
            let engine = engine.clone();
            let doc = doc.clone();
            let tenant = tenant.clone();
            tasks.push(tokio::spawn(async move {
                let job = JobId::generate();
                let ctx = RunContext {
                    tenant: &tenant,
                    job: &job,
                    user: None,
                    progress: None,
                };
                engine.transform(&ctx, &doc, &personas()).await.unwrap()
            }));
        }
    }
    let mut paid = 0;
    let mut texts = std::collections::BTreeSet::new();
    for t in tasks {
        let run = t.await.unwrap();
        paid += run
            .personas
            .iter()
            .filter(|p| p.served_by == "claude")
            .count();
        for p in &run.personas {
            texts.insert((p.persona.clone(), p.text.to_string()));
        }
    }
    assert_eq!(h.claude.calls(), 4, "one Claude call per persona");
    assert_eq!(paid, 4);
    assert_eq!(
        texts.len(),
        4,
        "every request got the same text per persona"
    );
    let per_persona: std::collections::BTreeMap<String, usize> =
        h.claude
            .requests()
            .iter()
            .fold(Default::default(), |mut m, r| {
                let ask = r.body["messages"][0]["content"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                let persona = ask.split_whitespace().nth(1).unwrap_or("").to_owned();
                *m.entry(persona).or_default() += 1;
                m
            });
    assert!(per_persona.values().all(|n| *n == 1), "{per_persona:?}");
}

#[tokio::test]
async fn the_claude_rate_limit_defers_the_job() {
    use onomancer_shared::queue::{Queue, QueueConfig, RateLimit, RateLimiter};
    let h = Harness::new(&shipped_prompts()).await;
    let queue = Queue::connect(
        &onomancer_testkit::redis_ns::redis_url(),
        h.redis.keys.clone(),
        QueueConfig::default(),
        &prometheus::Registry::new(),
    )
    .await
    .unwrap();
    let tenant = TenantId::new("thj");
    let limiter = RateLimiter::new(queue, Default::default()).with_tenant_limit(
        tenant.clone(),
        "claude",
        RateLimit::new(2, Duration::from_secs(60)),
    );
    let mut engine = (*h.engine).clone();
    engine.claude = Arc::new(BilledClaude {
        limiter: Some(limiter),
        ..(*engine.claude).clone()
    });
    let job = JobId::generate();
    let ctx = RunContext {
        tenant: &tenant,
        job: &job,
        user: None,
        progress: None,
    };
    match engine
        .transform(&ctx, &prd(1500, "limited"), &personas())
        .await
        .unwrap_err()
    {
        JobError::Deferred { wait, reason, .. } => {
            assert!(
                wait > Duration::ZERO && wait <= Duration::from_secs(60),
                "{wait:?}"
            );
            assert!(reason.contains("claude"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Two calls fit in the window; the personas they wrote are cached for the retry.
    assert_eq!(h.claude.calls(), 2);
}
