//! `onomancer transform --dry-run`: the content hash, which tier would serve each persona, and
//! the token and cost estimate, without calling Claude (and without promoting cache entries or
//! counting metrics).

use serde::Serialize;

use onomancer_shared::cache::{
    content_hash, template_fingerprint, CacheKey, DataType, Expectation,
};
use onomancer_shared::usage::{cost_micros, format_dollars, TokenCounts};
use onomancer_shared::{JobError, Persona, TenantId};

use super::engine::TransformEngine;
use super::summarize::{estimate_tokens, split_sections};

/// Below this many tokens a prefix is not cached by the API (the smallest model minimum).
const MIN_CACHEABLE_TOKENS: u64 = 1024;

/// One persona in a dry run.
#[derive(Clone, Debug, Serialize)]
pub struct DryRunPersona {
    /// The persona.
    pub persona: String,
    /// `l1`, `l2`, `l3` when cached, else `claude`.
    pub served_by: String,
    /// Estimated billed tokens.
    pub tokens: TokenCounts,
    /// Estimated cost in micro-dollars.
    pub cost_micros: i64,
}

/// What a transform would do.
#[derive(Clone, Debug, Serialize)]
pub struct DryRunReport {
    /// Content hash of the document (the cache key part).
    pub content_hash: String,
    /// Estimated tokens of the document.
    pub document_tokens: u64,
    /// Whether it is over the input budget and would be summarized first.
    pub summarized_first: bool,
    /// Section summaries that would need a Claude call.
    pub summaries_to_compute: usize,
    /// Estimated cost of those summaries, in micro-dollars.
    pub summary_cost_micros: i64,
    /// Per persona.
    pub personas: Vec<DryRunPersona>,
    /// Total estimated cost in micro-dollars.
    pub cost_micros: i64,
    /// Total estimated cost in dollars.
    pub cost: String,
}

/// Estimates a transform of `text` for `personas` in `tenant`.
pub async fn dry_run(
    engine: &TransformEngine,
    tenant: &TenantId,
    text: &str,
    personas: &[Persona],
) -> Result<DryRunReport, JobError> {
    let settings = engine.settings()?;
    let hash = content_hash(text);
    let (system, plans) = engine.plan(tenant, &hash, personas)?;
    let document_tokens = estimate_tokens(text);
    let summarized_first = document_tokens > settings.input_budget_tokens;
    let price = |model: &str, t: &TokenCounts| {
        engine
            .claude
            .prices
            .get(model)
            .map(|p| cost_micros(t, p))
            .unwrap_or(0)
    };

    let mut summaries_to_compute = 0;
    let mut summary_cost = 0;
    let mut doc_tokens_for_personas = document_tokens;
    if summarized_first {
        let prompt = engine
            .prompts
            .summarize()
            .map_err(|e| JobError::terminal(e.to_string()))?;
        let model = &engine.models.summarize;
        let expect = Expectation::new(
            model.clone(),
            template_fingerprint(&prompt, model, settings.summary_max_tokens),
        );
        doc_tokens_for_personas = 0;
        for section in split_sections(text, settings.section_max_chars) {
            let t = estimate_tokens(&section);
            let out = (t / 4).clamp(1, u64::from(settings.summary_max_tokens));
            doc_tokens_for_personas += out;
            let key = CacheKey::new(
                tenant.clone(),
                DataType::Summary,
                content_hash(&section).to_string(),
            );
            if engine.cache.peek(&key, &expect).await.is_none() {
                summaries_to_compute += 1;
                let tokens = TokenCounts {
                    input: t + estimate_tokens(&prompt),
                    output: out,
                    ..Default::default()
                };
                summary_cost += price(model, &tokens);
            }
        }
    }

    let prefix = estimate_tokens(&system) + doc_tokens_for_personas + 4;
    let model = &engine.models.transform;
    let mut prompt_cache_written = false;
    let mut out = Vec::with_capacity(plans.len());
    for plan in &plans {
        if let Some(tier) = engine.cache.peek(&plan.key, &plan.expect).await {
            out.push(DryRunPersona {
                persona: plan.persona.to_string(),
                served_by: tier.as_str().to_owned(),
                tokens: TokenCounts::default(),
                cost_micros: 0,
            });
            continue;
        }
        let ask = estimate_tokens(&plan.instructions) + 12;
        let mut tokens = TokenCounts {
            input: ask,
            output: settings.expected_output_tokens,
            ..Default::default()
        };
        if prefix < MIN_CACHEABLE_TOKENS {
            tokens.input += prefix;
        } else if prompt_cache_written {
            tokens.cache_read = prefix;
        } else {
            tokens.cache_creation = prefix;
            prompt_cache_written = true;
        }
        out.push(DryRunPersona {
            persona: plan.persona.to_string(),
            served_by: "claude".into(),
            cost_micros: price(model, &tokens),
            tokens,
        });
    }
    let cost = summary_cost + out.iter().map(|p| p.cost_micros).sum::<i64>();
    Ok(DryRunReport {
        content_hash: hash.to_string(),
        document_tokens,
        summarized_first,
        summaries_to_compute,
        summary_cost_micros: summary_cost,
        personas: out,
        cost_micros: cost,
        cost: format_dollars(cost),
    })
}
