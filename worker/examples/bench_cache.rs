//! Cache and transform-cost benchmark. Run in release mode on the machine's Redis:
//!
//! ```text
//! cargo run --release -p onomancer-worker --example bench_cache
//! ```
//!
//! Prints one JSON object: normalize+hash throughput, L1 and L2 hit latency (p50/p99), and the
//! cost of a four-persona transform of a 12,000-token PRD through the real pipeline (cache,
//! prompt caching, usage store) against the Claude fake, at the prices in `config/defaults.json`.
//! Keys live in an isolated namespace deleted at the end.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use onomancer_shared::cache::{
    content_hash, CacheConfig, CacheKey, Clock, Computed, Expectation, SqlL3, TieredCache,
};
use onomancer_shared::llm::{ClaudeClient, ClaudeConfig, TokenCounts};
use onomancer_shared::tenant::TenantRegistry;
use onomancer_shared::usage::UsageStore;
use onomancer_shared::{JobId, Persona, TenantId};
use onomancer_testkit::{ClaudeFake, TestDb, TestRedis};
use onomancer_worker::billed::BilledClaude;
use onomancer_worker::transform::wiring::models_and_prices;
use onomancer_worker::transform::{PromptStore, RunContext, TransformEngine};
use serde_json::json;

fn percentiles(mut ns: Vec<u128>) -> serde_json::Value {
    ns.sort_unstable();
    let at = |p: f64| ns[((ns.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;
    json!({"p50_us": at(0.50), "p90_us": at(0.90), "p99_us": at(0.99), "samples": ns.len()})
}

/// ~`bytes` of Markdown with the whitespace mix of real documents (CRLF, tabs, runs of spaces).
fn document(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 200);
    let mut i = 0u64;
    while s.len() < bytes {
        i += 1;
        s.push_str(&format!(
            "## Section {i}\r\n\r\nThe checkout service  must answer within {} ms for\t{} users; owner: team-{}.  \n- item one\n- item ’two’ — with unicode\n\n",
            100 + i % 50,
            i * 37,
            i % 7
        ));
    }
    s
}

fn throughput(doc: &str) -> serde_json::Value {
    let _ = content_hash(doc); // warm up
    let runs = 5;
    let t = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(content_hash(std::hint::black_box(doc)));
    }
    let secs = t.elapsed().as_secs_f64();
    json!({"bytes": doc.len(), "runs": runs, "mb_per_s": (doc.len() * runs) as f64 / secs / 1e6})
}

fn bench_hash() -> serde_json::Value {
    // Worst case: CRLF, tabs and double spaces on every line.
    let messy = document(64 * 1024 * 1024);
    // Typical prose: single spaces, LF line endings.
    let line = "The checkout redesign ships in two phases; the payments team owns the card vault migration.\n";
    let prose = line.repeat(64 * 1024 * 1024 / line.len());
    json!({"messy_whitespace": throughput(&messy), "prose": throughput(&prose)})
}

async fn bench_tiers(redis: &TestRedis) -> serde_json::Value {
    let tenant = TenantId::new("thj");
    let expect = Expectation::new("m", "f");
    let value = "x".repeat(8000); // a 2,000-token persona text
    let warm = TieredCache::builder(redis.conn.clone(), redis.keys.clone())
        .build(&prometheus::Registry::new())
        .unwrap();
    let keys: Vec<CacheKey> = (0..50)
        .map(|i| {
            CacheKey::transform(
                &tenant,
                &content_hash(&format!("doc {i}")),
                &Persona::new("devrel"),
            )
        })
        .collect();
    for k in &keys {
        warm.put(
            k,
            warm.entry_for(
                &expect,
                Computed {
                    value: value.clone(),
                    usage: TokenCounts::default(),
                },
            ),
        )
        .await;
    }
    let mut l1 = Vec::with_capacity(200_000);
    for i in 0..200_000 {
        let k = &keys[i % keys.len()];
        let t = Instant::now();
        let hit = warm.get(k, &expect).await;
        l1.push(t.elapsed().as_nanos());
        assert!(hit.is_some());
    }
    // L2: an L1 whose entries are always expired, so every lookup reads Redis (and promotes).
    let cold = TieredCache::builder(redis.conn.clone(), redis.keys.clone())
        .config(CacheConfig {
            l1: onomancer_shared::cache::config::L1Config {
                max_size: 100,
                ttl_ms: 0,
            },
            ..Default::default()
        })
        .clock(Clock::System)
        .build(&prometheus::Registry::new())
        .unwrap();
    let mut l2 = Vec::with_capacity(20_000);
    for i in 0..20_000 {
        let k = &keys[i % keys.len()];
        let t = Instant::now();
        let hit = cold.get(k, &expect).await;
        l2.push(t.elapsed().as_nanos());
        assert_eq!(hit.unwrap().1, onomancer_shared::cache::Tier::L2);
    }
    json!({"value_bytes": value.len(), "l1_hit": percentiles(l1), "l2_hit": percentiles(l2)})
}

async fn bench_cost(redis: &TestRedis) -> serde_json::Value {
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let tenants = TenantRegistry::load(&config_dir).expect("shipped config");
    let (models, prices) = models_and_prices(tenants.defaults());
    let db = TestDb::sqlite().await;
    let claude = ClaudeFake::start().await;
    // Realistic replies: ~2,000 output tokens per persona (the fake counts 4 characters a token).
    claude.set_responder(|body| {
        let mut text = onomancer_testkit::claude_fake::default_reply(body);
        while text.len() < 8000 {
            text.push_str(" The plan ships in two phases with owners named.");
        }
        text.truncate(8000);
        text
    });
    let engine = TransformEngine {
        cache: TieredCache::builder(redis.conn.clone(), redis.keys.clone())
            .redis_url(onomancer_testkit::redis_ns::redis_url())
            .l3(Arc::new(SqlL3::from(&db.db)))
            .build(&prometheus::Registry::new())
            .unwrap(),
        claude: Arc::new(BilledClaude {
            client: ClaudeClient::new(ClaudeConfig::new(
                claude.base_url(),
                "bench".to_string().into(),
            ))
            .unwrap(),
            limiter: None,
            usage: UsageStore::new(db.db.clone()),
            prices,
        }),
        models,
        prompts: PromptStore::new(config_dir.join("prompts")),
        duration: None,
    };
    // A PRD whose calls carry ~12,000 input tokens each (document + instructions).
    let mut prd = String::from("# PRD: Checkout redesign\n\n");
    let mut i = 0;
    while prd.len() < 11_300 * 4 {
        i += 1;
        prd.push_str(&format!(
            "## Requirement {i}\n\nThe checkout flow must complete in under {} seconds for {} concurrent buyers. Owner: payments team. Target: sprint {}. Risk: the card vault migration may slip.\n\n",
            2 + i % 5, 1000 + i * 10, 3 + i % 4
        ));
    }
    let personas: Vec<Persona> = tenants.defaults().default_personas.clone();
    let tenant = TenantId::new("thj");
    let job = JobId::generate();
    let ctx = RunContext {
        tenant: &tenant,
        job: &job,
        user: None,
        progress: None,
    };
    let started = Instant::now();
    let run = engine
        .transform(&ctx, &prd, &personas)
        .await
        .expect("transform");
    let elapsed = started.elapsed();
    let total: i64 = run.personas.iter().map(|p| p.cost_micros).sum();
    let input_per_call: Vec<u64> = run
        .personas
        .iter()
        .map(|p| p.tokens.total_input())
        .collect();
    // The seed's uncached figure, from the same token counts at the same prices.
    let price = engine.claude.prices.get(&engine.models.transform).unwrap();
    let uncached: f64 = run
        .personas
        .iter()
        .map(|p| {
            (p.tokens.total_input() as f64 * price.input + p.tokens.output as f64 * price.output)
                / 1e6
        })
        .sum();
    // Again: every persona from cache.
    let job2 = JobId::generate();
    let ctx2 = RunContext {
        tenant: &tenant,
        job: &job2,
        user: None,
        progress: None,
    };
    let again = engine
        .transform(&ctx2, &prd, &personas)
        .await
        .expect("transform");
    json!({
        "model": engine.models.transform,
        "document_chars": prd.len(),
        "claude_calls": claude.calls(),
        "input_tokens_per_call": input_per_call,
        "personas": run.personas.iter().map(|p| json!({
            "persona": p.persona, "served_by": p.served_by, "tokens": p.tokens,
            "cost_usd": p.cost_micros as f64 / 1e6})).collect::<Vec<_>>(),
        "four_persona_cost_usd": total as f64 / 1e6,
        "same_tokens_without_prompt_caching_usd": uncached,
        "seed_uncached_usd": 0.28,
        "target_usd": 0.18,
        "pipeline_ms_against_fake": elapsed.as_millis(),
        "second_run_served_by": again.personas.iter().map(|p| p.served_by.clone()).collect::<Vec<_>>(),
        "second_run_cost_usd": again.personas.iter().map(|p| p.cost_micros).sum::<i64>() as f64 / 1e6,
    })
}

#[tokio::main]
async fn main() {
    let redis = TestRedis::new().await;
    let hash = bench_hash();
    let tiers = bench_tiers(&redis).await;
    let cost = bench_cost(&redis).await;
    redis.cleanup().await;
    let out = json!({"normalize_hash": hash, "tiers": tiers, "transform_cost": cost});
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
