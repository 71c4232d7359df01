//! `onomancer transform FILE [--persona P]... [--tenant T] [--product X] [--dry-run]`: runs a
//! real transform through the queue (a worker must be running, e.g. `onomancer up`) and shows
//! its progress; `--dry-run` prints the content hash, which tier would serve each persona and
//! the token and cost estimate, without calling Claude.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use onomancer_shared::db::Database;
use onomancer_shared::llm::{ClaudeClient, ClaudeConfig};
use onomancer_shared::queue::{JobState, Queue, QueueConfig};
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::TenantRegistry;
use onomancer_shared::usage::{format_dollars, UsageStore};
use onomancer_shared::Persona;
use onomancer_worker::billed::BilledClaude;
use onomancer_worker::transform::progress::{enqueue_transform, follow_job};
use onomancer_worker::transform::wiring::{build_cache, google_clients, models_and_prices};
use onomancer_worker::transform::{
    dry_run, DocumentSource, Origin, PromptStore, TransformEngine, TransformJob,
};

/// Arguments of `onomancer transform`.
#[derive(clap::Args, Debug)]
pub struct TransformArgs {
    /// The document (Markdown or text).
    file: PathBuf,
    /// A persona to write for (repeatable; default: the tenant's default personas).
    #[arg(long = "persona")]
    personas: Vec<String>,
    /// Tenant id (default: the default tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// Product (Google Drive folder `/tenants/{tenant}/Products/{product}/`).
    #[arg(long)]
    product: Option<String>,
    /// Estimate only: content hash, cache tier per persona, tokens and cost; no Claude call.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `onomancer transform`.
pub async fn run(settings: Settings, args: TransformArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let tenants = Arc::new(TenantRegistry::load(&settings.config_dir)?);
    let tenant = match &args.tenant {
        Some(t) => tenants.get_tenant_context(t)?,
        None => tenants.default_tenant(),
    };
    let personas: Vec<Persona> = if args.personas.is_empty() {
        tenant.config.default_personas.clone()
    } else {
        args.personas
            .iter()
            .map(|p| Persona::parse(p))
            .collect::<Result<_, _>>()?
    };
    let config = QueueConfig::from(&tenants.defaults().queue);
    let registry = prometheus::Registry::new();
    let queue = Queue::connect(&settings.redis_url, settings.key_space(), config, &registry)
        .await
        .context("connecting to Redis")?;

    if args.dry_run {
        let db = Database::open(&settings.database_url).await?;
        let google = google_clients(&tenants, None)?;
        let (models, prices) = models_and_prices(tenants.defaults());
        let engine = TransformEngine {
            cache: build_cache(&settings, &tenants, &queue, &db, &google, &registry)?,
            // Never called by a dry run.
            claude: Arc::new(BilledClaude {
                client: ClaudeClient::new(ClaudeConfig::new(
                    settings.anthropic_base_url.clone(),
                    "dry-run".to_string().into(),
                ))?,
                limiter: None,
                usage: UsageStore::new(db.clone()),
                prices,
            }),
            models,
            prompts: PromptStore::new(settings.config_dir.join("prompts")),
            duration: None,
        };
        let report = dry_run(&engine, &tenant.tenant_id, &text, &personas)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(());
        }
        println!("content hash  {}", report.content_hash);
        println!(
            "document      ~{} tokens{}",
            report.document_tokens,
            if report.summarized_first {
                format!(
                    " (over budget: {} section summaries to compute, ${})",
                    report.summaries_to_compute,
                    format_dollars(report.summary_cost_micros)
                )
            } else {
                String::new()
            }
        );
        println!(
            "{:<12} {:<8} {:>8} {:>8} {:>8} {:>8} {:>9}",
            "persona", "served", "input", "write", "read", "output", "cost"
        );
        for p in &report.personas {
            let t = &p.tokens;
            println!(
                "{:<12} {:<8} {:>8} {:>8} {:>8} {:>8} {:>9}",
                p.persona,
                p.served_by,
                t.input,
                t.cache_creation,
                t.cache_read,
                t.output,
                format!("${}", format_dollars(p.cost_micros))
            );
        }
        println!("estimated total ${}", report.cost);
        return Ok(());
    }

    let job = TransformJob {
        v: 1,
        source: DocumentSource::Text { text },
        personas: personas.iter().map(|p| p.to_string()).collect(),
        product: args.product.clone(),
        origin: Origin::Api,
        user: Some("cli".into()),
        title: args
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned()),
    };
    let id = enqueue_transform(&queue, &tenant.tenant_id, &job).await?;
    eprintln!(
        "job {id} queued for tenant {} ({} personas)",
        tenant.tenant_id,
        personas.len()
    );
    let mut shown = 0;
    let mut last_state = (JobState::Queued, 0);
    let status = follow_job(
        &queue,
        &tenant.tenant_id,
        &id,
        Duration::from_millis(250),
        |s| {
            let done = s
                .progress
                .as_ref()
                .and_then(|p| p["personas_done"].as_array().cloned())
                .unwrap_or_default();
            while shown < done.len() {
                let p = &done[shown];
                eprintln!(
                    "  {} done ({}, ${})",
                    p["persona"].as_str().unwrap_or("?"),
                    p["served_by"].as_str().unwrap_or("?"),
                    p["cost"].as_str().unwrap_or("?")
                );
                shown += 1;
            }
            if (s.state, s.attempt) != last_state {
                last_state = (s.state, s.attempt);
                eprintln!(
                    "  {:?} (attempt {}){}",
                    s.state,
                    s.attempt,
                    s.error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                );
            }
        },
    )
    .await?
    .context("the job's status disappeared")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else if let Some(result) = &status.result {
        for doc in result["documents"].as_array().into_iter().flatten() {
            for p in doc["personas"].as_array().into_iter().flatten() {
                println!(
                    "{:<12} {:<8} ${:<8} {}",
                    p["persona"].as_str().unwrap_or(""),
                    p["served_by"].as_str().unwrap_or(""),
                    p["cost"].as_str().unwrap_or(""),
                    p["doc_link"].as_str().unwrap_or("")
                );
            }
        }
        println!("total ${}", result["cost"].as_str().unwrap_or("0.00"));
    }
    match status.state {
        JobState::Succeeded => Ok(()),
        _ => anyhow::bail!(
            "the transform failed: {}",
            status.error.unwrap_or_else(|| "unknown reason".into())
        ),
    }
}
