//! The `transform` job: read the document (pasted, Discord attachment, GitHub file, Google Doc)
//! through the guarded fetcher, write every persona's version through [`TransformEngine`], save
//! one Google Doc per persona when the tenant has a Workspace, post once to Discord, and report
//! per persona which tier served it (or `claude`), tokens, cost and the document link.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;
use serde_json::json;

use onomancer_shared::integrations::discord::{DiscordPoster, PostTarget};
use onomancer_shared::integrations::fetch::{Fetcher, ParsedSource};
use onomancer_shared::integrations::google::{GoogleClient, NewDocument};
use onomancer_shared::tenant::{TenantContext, TenantRegistry};
use onomancer_shared::usage::format_dollars;
use onomancer_shared::{Envelope, JobError, JobOutcome, Persona, SharedText, TenantId};

use crate::transform::{
    DocumentSource, Origin, ProgressSink, RunContext, TransformEngine, TransformJob, TransformRun,
};

/// Runs `transform` jobs. Cheap to clone.
#[derive(Clone)]
pub struct TransformHandler {
    /// Cache + Claude + usage.
    pub engine: Arc<TransformEngine>,
    /// Tenant settings (default personas, channels, Drive folders).
    pub tenants: Arc<TenantRegistry>,
    /// Reads linked documents safely.
    pub fetcher: Fetcher,
    /// Posts results (`None`: Discord not configured; Discord-origin jobs then fail clearly).
    pub discord: Option<DiscordPoster>,
    /// Google clients of tenants with a Workspace.
    pub google: BTreeMap<TenantId, GoogleClient>,
    /// Where finished personas are reported while a job runs (`None`: not reported).
    pub progress: Option<onomancer_shared::queue::Queue>,
}

struct Document {
    title: String,
    /// A pasted document is a view into the job's payload (see [`TransformJob::decode_shared`]).
    text: SharedText,
}

impl TransformHandler {
    /// Runs one job.
    #[tracing::instrument(name = "transform", skip_all, fields(tenant = %job.tenant, job = %job.id, attempt = job.attempt))]
    pub async fn handle(&self, job: &Envelope) -> Result<JobOutcome, JobError> {
        let (payload, pasted) = TransformJob::decode_shared(job)?;
        let tenant = self
            .tenants
            .get_tenant_context(job.tenant.as_str())
            .map_err(|e| JobError::terminal(e.to_string()))?;
        let personas = personas_for(&payload, &tenant)?;
        let documents = self.read_documents(job, &payload, pasted).await?;
        let sink = self
            .progress
            .as_ref()
            .map(|q| ProgressSink::new(q.clone(), job.tenant.clone(), job.id.clone()));
        let ctx = RunContext {
            tenant: &job.tenant,
            job: &job.id,
            user: payload.user.as_deref(),
            progress: sink.as_ref(),
        };
        let mut runs = Vec::with_capacity(documents.len());
        for doc in &documents {
            let mut run = self
                .engine
                .transform(&ctx, doc.text.clone(), &personas)
                .await?;
            self.save_documents(&tenant, &payload, doc, &mut run)
                .await?;
            runs.push(run);
        }
        let posted = self.post(job, &tenant, &payload, &documents, &runs).await?;
        Ok(JobOutcome {
            result: Some(outcome_json(&documents, &runs, posted)),
        })
    }

    async fn read_documents(
        &self,
        job: &Envelope,
        payload: &TransformJob,
        pasted: Option<SharedText>,
    ) -> Result<Vec<Document>, JobError> {
        let google = self.google.get(&job.tenant);
        let fetch = |input: String, title: String| async move {
            let source = ParsedSource::parse(&input)
                .map_err(|e| JobError::terminal(format!("cannot read the document: {e}")))?;
            let fetched = self.fetcher.fetch(&source, google).await.map_err(|e| {
                match e.into_job_error(job.attempt) {
                    JobError::Terminal { message } => {
                        JobError::terminal(format!("cannot read the document {title}: {message}"))
                    }
                    other => other,
                }
            })?;
            Ok::<_, JobError>(Document {
                title,
                text: SharedText::from(fetched.text),
            })
        };
        let docs = match &payload.source {
            DocumentSource::Text { .. } => vec![Document {
                title: payload
                    .title
                    .clone()
                    .unwrap_or_else(|| "Pasted document".into()),
                text: pasted.unwrap_or_default(),
            }],
            DocumentSource::Url { url } => {
                vec![
                    fetch(
                        url.clone(),
                        payload.title.clone().unwrap_or_else(|| url.clone()),
                    )
                    .await?,
                ]
            }
            DocumentSource::DiscordAttachment { url, filename, .. } => {
                vec![
                    fetch(
                        url.clone(),
                        payload.title.clone().unwrap_or_else(|| filename.clone()),
                    )
                    .await?,
                ]
            }
            DocumentSource::GithubFiles {
                repo, sha, paths, ..
            } => {
                let mut out = Vec::with_capacity(paths.len());
                for path in paths {
                    let url = format!("https://github.com/{repo}/blob/{sha}/{path}");
                    out.push(fetch(url, format!("{repo}/{path}")).await?);
                }
                out
            }
        };
        if let Some(empty) = docs.iter().find(|d| d.text.to_cow().trim().is_empty()) {
            return Err(JobError::terminal(format!(
                "the document {} is empty: nothing to transform",
                empty.title
            )));
        }
        Ok(docs)
    }

    /// One Google Doc per persona under `/tenants/{tenant}/Products/{product}/`, keyed by content
    /// and prompt, so re-runs find the same document instead of creating another.
    async fn save_documents(
        &self,
        tenant: &TenantContext,
        payload: &TransformJob,
        doc: &Document,
        run: &mut TransformRun,
    ) -> Result<(), JobError> {
        if tenant.config.google_workspace_id.is_none() {
            return Ok(());
        }
        let (Some(google), Some(root)) = (
            self.google.get(&tenant.tenant_id),
            tenant.config.folder_ids.get("root"),
        ) else {
            return Ok(());
        };
        let product = payload.product.as_deref().unwrap_or("General");
        let folder = google
            .ensure_product_folder(root, &tenant.tenant_id, product)
            .await?;
        for p in &mut run.personas {
            let key = format!(
                "{}:transform:{}:{}",
                tenant.tenant_id, run.content_hash, p.persona
            );
            let title = format!("{} — {}", doc.title, p.persona);
            let (saved, _) = google
                .save_document(&NewDocument {
                    folder_id: &folder,
                    title: &title,
                    key: &key,
                    text: &p.text,
                })
                .await?;
            p.doc_link = Some(saved.url);
        }
        Ok(())
    }

    /// Posts the results once (the poster remembers what this job already posted).
    async fn post(
        &self,
        job: &Envelope,
        tenant: &TenantContext,
        payload: &TransformJob,
        docs: &[Document],
        runs: &[TransformRun],
    ) -> Result<Option<usize>, JobError> {
        let target = match &payload.origin {
            Origin::Api => return Ok(None),
            Origin::Discord { token, .. } => PostTarget::Interaction {
                token: SecretString::from(token.clone()),
            },
            Origin::GithubPush { .. } => {
                let repo = match &payload.source {
                    DocumentSource::GithubFiles { repo, .. } => repo.as_str(),
                    _ => return Ok(None),
                };
                let Some(channel) = tenant
                    .config
                    .github
                    .channel_for(repo)
                    .and_then(|c| c.parse::<u64>().ok())
                else {
                    return Ok(None);
                };
                PostTarget::Channel {
                    channel_id: channel,
                }
            }
        };
        let Some(poster) = &self.discord else {
            return Err(JobError::terminal(
                "Discord is not configured on this worker (DISCORD_BOT_TOKEN, DISCORD_APPLICATION_ID)",
            ));
        };
        let content = render_post(docs, runs);
        let posted = poster
            .post_job_output(&job.tenant, &job.id, &target, &content)
            .await?;
        Ok(Some(posted.newly_posted))
    }
}

fn personas_for(payload: &TransformJob, tenant: &TenantContext) -> Result<Vec<Persona>, JobError> {
    if payload.personas.is_empty() {
        return Ok(tenant.config.default_personas.clone());
    }
    let mut out: Vec<Persona> = Vec::new();
    for p in &payload.personas {
        let persona = Persona::parse(p).map_err(|e| JobError::terminal(e.to_string()))?;
        if !out.contains(&persona) {
            out.push(persona);
        }
    }
    Ok(out)
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The Discord text: per document, per persona, a heading, the text and a link.
fn render_post(docs: &[Document], runs: &[TransformRun]) -> String {
    let mut out = String::new();
    for (doc, run) in docs.iter().zip(runs) {
        out.push_str(&format!("# {}\n", doc.title));
        for p in &run.personas {
            out.push_str(&format!(
                "\n## {}\n{}\n",
                title_case(&p.persona),
                p.text.trim()
            ));
            if let Some(link) = &p.doc_link {
                out.push_str(&format!("[Google Doc]({link})\n"));
            }
        }
        out.push('\n');
    }
    out
}

fn outcome_json(
    docs: &[Document],
    runs: &[TransformRun],
    posted: Option<usize>,
) -> serde_json::Value {
    let total: i64 = runs
        .iter()
        .flat_map(|r| &r.personas)
        .map(|p| p.cost_micros)
        .sum();
    json!({
        "documents": docs.iter().zip(runs).map(|(d, r)| json!({
            "title": d.title,
            "content_hash": r.content_hash,
            "summarized": r.summarized,
            "personas": r.personas.iter().map(|p| json!({
                "persona": p.persona,
                "served_by": p.served_by,
                "tokens": p.tokens,
                "cost_micros": p.cost_micros,
                "cost": format_dollars(p.cost_micros),
                "doc_link": p.doc_link,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "cost_micros": total,
        "cost": format_dollars(total),
        "discord_messages_posted": posted,
    })
}
