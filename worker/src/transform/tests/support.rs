//! Builds a [`TransformEngine`] on a test Redis namespace, a fresh SQLite database and the
//! Claude fake; generates realistic documents.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use onomancer_shared::cache::{SqlL3, TieredCache};
use onomancer_shared::llm::{ClaudeClient, ClaudeConfig, ModelPrice, ModelRoutes, Prices};
use onomancer_shared::usage::UsageStore;
use onomancer_testkit::{ClaudeFake, TestDb, TestRedis};

use crate::billed::BilledClaude;
use crate::transform::{PromptStore, TransformEngine};

pub const TRANSFORM_MODEL: &str = "claude-sonnet-test";
pub const SUMMARIZE_MODEL: &str = "claude-haiku-test";

/// The shipped prompts folder.
pub fn shipped_prompts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/prompts")
}

/// The seed's prices: $3/M input, $15/M output, cache writes 1.25x, reads 0.1x.
pub fn seed_prices() -> Prices {
    let mut p = Prices::default();
    for (model, input, output) in [(TRANSFORM_MODEL, 3.0, 15.0), (SUMMARIZE_MODEL, 1.0, 5.0)] {
        p.insert(
            model,
            ModelPrice {
                input,
                output,
                cache_write_5m_multiplier: 1.25,
                cache_write_1h_multiplier: 2.0,
                cache_read_multiplier: 0.1,
            },
        );
    }
    p
}

pub struct Harness {
    pub redis: TestRedis,
    pub db: TestDb,
    pub claude: ClaudeFake,
    pub engine: Arc<TransformEngine>,
}

impl Harness {
    pub async fn new(prompts: &Path) -> Self {
        let redis = TestRedis::new().await;
        let db = TestDb::sqlite().await;
        let claude = ClaudeFake::start().await;
        let engine = Arc::new(engine_on(&redis, &db, &claude, prompts));
        Self {
            redis,
            db,
            claude,
            engine,
        }
    }

    /// Another worker: same Redis, database and Claude, its own L1.
    pub fn another_engine(&self, prompts: &Path) -> Arc<TransformEngine> {
        Arc::new(engine_on(&self.redis, &self.db, &self.claude, prompts))
    }
}

pub fn engine_on(
    redis: &TestRedis,
    db: &TestDb,
    claude: &ClaudeFake,
    prompts: &Path,
) -> TransformEngine {
    let cache = TieredCache::builder(redis.conn.clone(), redis.keys.clone())
        .redis_url(onomancer_testkit::redis_ns::redis_url())
        .l3(Arc::new(SqlL3::from(&db.db)))
        .build(&prometheus::Registry::new())
        .expect("metrics");
    let mut config = ClaudeConfig::new(claude.base_url(), "test-key".to_string().into());
    config.connect_retries = 0;
    TransformEngine {
        cache,
        claude: Arc::new(BilledClaude {
            client: ClaudeClient::new(config).expect("client"),
            limiter: None,
            usage: UsageStore::new(db.db.clone()),
            prices: seed_prices(),
        }),
        models: ModelRoutes {
            transform: TRANSFORM_MODEL.into(),
            validation: SUMMARIZE_MODEL.into(),
            summarize: SUMMARIZE_MODEL.into(),
        },
        prompts: PromptStore::new(prompts),
        duration: None,
    }
}

/// A PRD of about `tokens` tokens (4 characters each), in Markdown sections.
pub fn prd(tokens: usize, seed: &str) -> String {
    let mut out = format!("# PRD: {seed}\n\n");
    let mut section = 0;
    while out.len() < tokens * 4 {
        section += 1;
        out.push_str(&format!("## Section {section}\n\n"));
        for i in 0..6 {
            out.push_str(&format!(
                "Requirement {section}.{i}: the {seed} service must answer within {} ms for {} users, \
                 owned by team {}, due in sprint {}. ",
                100 + i * 7,
                1000 * (section + i),
                section % 5,
                section % 9
            ));
        }
        out.push_str("\n\n");
    }
    out.truncate(tokens * 4);
    out
}

/// Replies of about `tokens` output tokens (the fake counts 4 characters a token).
pub fn replies_of(claude: &ClaudeFake, tokens: usize) {
    claude.set_responder(move |body| {
        let head = onomancer_testkit::claude_fake::default_reply(body);
        let mut text = head.clone();
        while text.len() < tokens * 4 {
            text.push_str(" lorem ipsum dolor");
        }
        text.truncate(tokens * 4);
        text
    });
}
