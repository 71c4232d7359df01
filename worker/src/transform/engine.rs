//! The transform engine: one document, several personas, through the tiered cache and Claude.
//!
//! Prompt caching: every persona call sends the same prefix — system = [shared instructions,
//! the document block marked `cache_control: {"type":"ephemeral"}`] — and only the user message
//! (the persona's instructions) differs. The first missing persona runs alone and writes the
//! prompt cache; the remaining ones then run together and read it, so the document is billed in
//! full once and at the cache-read rate after that.
//!
//! Paid work is never thrown away: every persona call runs to completion even when a sibling
//! fails, and each answer is stored the moment it arrives (its usage row, keyed by the billed
//! message's id, then every cache tier), so a retry or a reclaimed job pays only for what is
//! still missing. The job then fails with the first persona's error.

use std::sync::Arc;

use futures::future::join_all;
use serde::Serialize;
use tokio::sync::OnceCell;

use onomancer_shared::cache::{
    content_hash, template_fingerprint, CacheKey, Computed, Expectation, Source, TieredCache,
};
use onomancer_shared::llm::{
    CacheControl, ContentBlock, Message, MessagesRequest, ModelRoutes, SystemPrompt,
};
use onomancer_shared::usage::{cost_micros, ops, TokenCounts};
use onomancer_shared::{ContentHash, JobError, JobId, Persona, SharedText, TenantId};

use super::prompts::{PromptStore, TransformSettings};
use crate::billed::{Bill, BilledClaude};

/// Everything a transform needs; shared by all jobs of a worker.
#[derive(Clone)]
pub struct TransformEngine {
    /// The tiered cache.
    pub cache: TieredCache,
    /// Claude behind its rate limit and its bill (the worker's one client), with the prices.
    pub claude: Arc<BilledClaude>,
    /// Which model does what.
    pub models: ModelRoutes,
    /// Prompt templates.
    pub prompts: PromptStore,
    /// `onomancer_transformation_duration_seconds{persona,tenant}` (`None` in tools and tests
    /// that export no metrics).
    pub duration: Option<prometheus::HistogramVec>,
}

/// Registers the seed's `onomancer_transformation_duration_seconds{persona,tenant}` histogram.
pub fn register_duration(
    registry: &prometheus::Registry,
) -> Result<prometheus::HistogramVec, prometheus::Error> {
    let h = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new(
            "onomancer_transformation_duration_seconds",
            "Time to produce one persona's version of a document (cache hit or Claude call)",
        )
        .buckets(vec![
            0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 45.0, 60.0, 120.0,
        ]),
        &["persona", "tenant"],
    )?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

/// Who a run is for.
#[derive(Clone, Copy, Debug)]
pub struct RunContext<'a> {
    /// The tenant billed.
    pub tenant: &'a TenantId,
    /// The job (usage idempotency).
    pub job: &'a JobId,
    /// The requesting user.
    pub user: Option<&'a str>,
    /// Where finished personas are reported while the rest still run (`None`: nowhere).
    pub progress: Option<&'a ProgressSink>,
}

/// Reports each finished persona into the job's status, for `onomancer transform` and
/// `GET /v1/jobs/{id}` to show while the job runs.
pub struct ProgressSink {
    queue: onomancer_shared::queue::Queue,
    tenant: TenantId,
    job: JobId,
    done: tokio::sync::Mutex<Vec<serde_json::Value>>,
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressSink")
            .field("job", &self.job)
            .finish()
    }
}

impl ProgressSink {
    /// A sink for one job.
    pub fn new(queue: onomancer_shared::queue::Queue, tenant: TenantId, job: JobId) -> Self {
        Self {
            queue,
            tenant,
            job,
            done: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    async fn persona_done(&self, outcome: &PersonaOutcome) {
        let mut done = self.done.lock().await;
        done.push(serde_json::json!({
            "persona": outcome.persona,
            "served_by": outcome.served_by,
            "cost": onomancer_shared::usage::format_dollars(outcome.cost_micros),
        }));
        let progress = serde_json::json!({ "personas_done": *done });
        if let Err(e) = self
            .queue
            .set_progress(&self.tenant, &self.job, &progress)
            .await
        {
            // Progress is informational: the job goes on.
            tracing::debug!(error = %e, "recording transform progress failed");
        }
    }
}

/// What a Claude call is for (usage operation and idempotency key).
#[derive(Clone, Copy, Debug)]
pub enum CallKind<'a> {
    /// One persona's version of the document.
    Persona(&'a Persona),
    /// One section's summary.
    Summary {
        /// The section's content hash.
        section: &'a ContentHash,
    },
}

/// One persona's result.
#[derive(Clone, Debug, Serialize)]
pub struct PersonaOutcome {
    /// The persona.
    pub persona: String,
    /// `l1`, `l2`, `l3` (a cache tier) or `claude` (this job paid for it).
    pub served_by: String,
    /// Tokens this job was billed for it (zero on a cache hit).
    pub tokens: TokenCounts,
    /// Cost this job was billed for it, in micro-dollars.
    pub cost_micros: i64,
    /// The generated text.
    #[serde(skip)]
    pub text: Arc<str>,
    /// The Google Doc, when saved.
    pub doc_link: Option<String>,
}

/// The result of transforming one document.
#[derive(Clone, Debug, Serialize)]
pub struct TransformRun {
    /// Content hash of the source document.
    pub content_hash: String,
    /// Whether the document was summarized section by section first.
    pub summarized: bool,
    /// Per persona, in the order asked.
    pub personas: Vec<PersonaOutcome>,
}

pub(crate) struct PersonaPlan {
    pub persona: Persona,
    pub instructions: Arc<str>,
    pub key: CacheKey,
    pub expect: Expectation,
}

impl TransformEngine {
    pub(crate) fn settings(&self) -> Result<TransformSettings, JobError> {
        self.prompts
            .settings()
            .map_err(|e| JobError::terminal(e.to_string()))
    }

    /// Cache keys and expectations of `personas` for the document `hash`.
    pub(crate) fn plan(
        &self,
        tenant: &TenantId,
        hash: &ContentHash,
        personas: &[Persona],
    ) -> Result<(Arc<str>, Vec<PersonaPlan>), JobError> {
        let settings = self.settings()?;
        let system = self
            .prompts
            .system()
            .map_err(|e| JobError::terminal(e.to_string()))?;
        let model = &self.models.transform;
        let plans = personas
            .iter()
            .map(|p| {
                let instructions = self
                    .prompts
                    .persona(p)
                    .map_err(|e| JobError::terminal(e.to_string()))?;
                let template = format!("{system}\0{instructions}");
                Ok(PersonaPlan {
                    persona: p.clone(),
                    key: CacheKey::transform(tenant, hash, p),
                    expect: Expectation::new(
                        model.clone(),
                        template_fingerprint(&template, model, settings.max_tokens),
                    ),
                    instructions,
                })
            })
            .collect::<Result<Vec<_>, JobError>>()?;
        Ok((system, plans))
    }

    /// Writes `text` for every persona: cached versions are reused, missing ones cost one Claude
    /// call each (one across all workers asking at once), the document prefix billed in full once.
    /// The text is shared, never copied, from here to the requests' bodies.
    pub async fn transform(
        &self,
        ctx: &RunContext<'_>,
        text: impl Into<SharedText>,
        personas: &[Persona],
    ) -> Result<TransformRun, JobError> {
        let text: SharedText = text.into();
        let hash = content_hash(&text.to_cow());
        let (system, plans) = self.plan(ctx.tenant, &hash, personas)?;
        let settings = self.settings()?;
        // Misses first: the first of them writes the prompt cache for the others.
        let mut order: Vec<(usize, bool)> = Vec::with_capacity(plans.len());
        for (i, p) in plans.iter().enumerate() {
            order.push((i, self.cache.peek(&p.key, &p.expect).await.is_some()));
        }
        order.sort_by_key(|(_, cached)| *cached);
        let document: OnceCell<(SharedText, bool)> = OnceCell::new();
        let system = SharedText::from(system);
        let run_one =
            |plan| self.run_persona(ctx, &text, plan, &system, &document, settings.max_tokens);
        let mut results: Vec<Option<PersonaOutcome>> = vec![None; plans.len()];
        let mut rest = order.iter().map(|(i, _)| *i);
        if let Some(first) = rest.next() {
            results[first] = Some(run_one(&plans[first]).await?);
        }
        let rest: Vec<usize> = rest.collect();
        // All of them to completion: a sibling's failure must not drop answers being paid for.
        let outcomes = join_all(rest.iter().map(|&i| run_one(&plans[i]))).await;
        let mut errors = Vec::new();
        for (i, o) in rest.into_iter().zip(outcomes) {
            match o {
                Ok(o) => results[i] = Some(o),
                Err(e) => {
                    tracing::info!(persona = %plans[i].persona, error = %e, "persona failed; the others are kept");
                    errors.push(e);
                }
            }
        }
        // One error for the job: a sibling's different failure never hides an upstream's wait.
        if let Some(e) = JobError::combine_all(errors) {
            return Err(e);
        }
        Ok(TransformRun {
            content_hash: hash.to_string(),
            summarized: document.get().is_some_and(|(_, s)| *s),
            personas: results
                .into_iter()
                .map(|o| o.expect("every persona ran"))
                .collect(),
        })
    }

    async fn run_persona(
        &self,
        ctx: &RunContext<'_>,
        text: &SharedText,
        plan: &PersonaPlan,
        system: &SharedText,
        document: &OnceCell<(SharedText, bool)>,
        max_tokens: u32,
    ) -> Result<PersonaOutcome, JobError> {
        let started = std::time::Instant::now();
        let lookup = self
            .cache
            .get_or_compute(&plan.key, &plan.expect, || async {
                let (doc, _) = document
                    .get_or_try_init(|| self.document_for_personas(ctx, text))
                    .await?;
                // The persona's instructions shared from the prompt store, not copied per call.
                let ask = SharedText::concat([
                    SharedText::from(plan.instructions.clone()),
                    SharedText::from(format!(
                        "\n\nWrite the {} version of the document now.",
                        plan.persona
                    )),
                ]);
                self.call_claude(
                    ctx,
                    CallKind::Persona(&plan.persona),
                    &self.models.transform,
                    max_tokens,
                    system,
                    doc,
                    ask,
                )
                .await
            })
            .await?;
        if let Some(h) = &self.duration {
            h.with_label_values(&[plan.persona.as_str(), ctx.tenant.as_str()])
                .observe(started.elapsed().as_secs_f64());
        }
        let (served_by, tokens) = match lookup.source {
            Source::Computed => ("claude".to_owned(), lookup.entry.usage),
            Source::Cache(t) => (t.as_str().to_owned(), TokenCounts::default()),
        };
        let cost = self
            .claude
            .prices
            .get(&lookup.entry.model)
            .map(|p| cost_micros(&tokens, p))
            .unwrap_or(0);
        let outcome = PersonaOutcome {
            persona: plan.persona.to_string(),
            served_by,
            tokens,
            cost_micros: cost,
            text: Arc::from(lookup.entry.value.as_str()),
            doc_link: None,
        };
        if let Some(sink) = ctx.progress {
            sink.persona_done(&outcome).await;
        }
        Ok(outcome)
    }

    /// One Claude call through the worker's [`BilledClaude`]: rate limit, call, usage row as
    /// soon as the answer arrives (keyed by the billed message's id, with the job and step as
    /// columns: a repeat of the step after a failure is another paid call and another row).
    #[allow(
        clippy::too_many_arguments,
        reason = "each argument is one part of the request or its bill"
    )]
    pub(crate) async fn call_claude(
        &self,
        ctx: &RunContext<'_>,
        kind: CallKind<'_>,
        model: &str,
        max_tokens: u32,
        instructions: &SharedText,
        document: &SharedText,
        ask: SharedText,
    ) -> Result<Computed, JobError> {
        // The document's own bytes between the tags: no copy per call.
        let doc_block = SharedText::concat([
            SharedText::from_static("<document>\n"),
            document.clone(),
            SharedText::from_static("\n</document>"),
        ]);
        let (operation, step, doc_block) = match kind {
            // The document is the shared prefix of the persona calls: cache it.
            CallKind::Persona(p) => (
                ops::TRANSFORM,
                format!("transform:{p}"),
                ContentBlock::cached_text(doc_block, CacheControl::ephemeral()),
            ),
            // Each section is read once: a cache write would only cost more.
            CallKind::Summary { section } => (
                ops::SUMMARIZE,
                format!("summarize:{section}"),
                ContentBlock::text(doc_block),
            ),
        };
        let request = MessagesRequest::new(model, max_tokens, vec![Message::user(ask)]).system(
            SystemPrompt::Blocks(vec![ContentBlock::text(instructions.clone()), doc_block]),
        );
        let bill = Bill {
            tenant: ctx.tenant,
            job: ctx.job,
            step: &step,
            operation,
            user: ctx.user,
        };
        let message = self.claude.call(bill, &request).await?;
        let tokens = message.usage.tokens();
        Ok(Computed {
            value: message.text(),
            // As the entry stores them: the 1-hour share of cache writes is not kept.
            usage: TokenCounts {
                cache_creation_1h: 0,
                ..tokens
            },
        })
    }
}
