//! L3 on a tenant's own Google Workspace: each entry is a Google Doc under
//! `/tenants/{tenant}/Cache/`, found again by its `appProperties` key
//! `{tenant}:{type}:{id}:{fingerprint}`. The fingerprint (which covers the prompt and the model)
//! is part of the key, so a changed prompt finds no document: a miss, never a stale hit.

use futures::future::BoxFuture;
use tokio::sync::OnceCell;

use crate::ids::TenantId;
use crate::integrations::google::{ExportFormat, GoogleClient, GoogleError, NewDocument};

use super::entry::{CacheEntry, CacheKey, Expectation};
use super::l3::{L3Error, L3Store};

/// The permanent tier in one tenant's Google Drive.
pub struct GoogleDocsL3 {
    client: GoogleClient,
    tenant: TenantId,
    /// The tenant's root folder (`folderIds.root`).
    root_folder: String,
    /// `/tenants/{tenant}/Cache/`, resolved once.
    folder: OnceCell<String>,
}

impl GoogleDocsL3 {
    /// A store for `tenant` under its root folder.
    pub fn new(client: GoogleClient, tenant: TenantId, root_folder: impl Into<String>) -> Self {
        Self {
            client,
            tenant,
            root_folder: root_folder.into(),
            folder: OnceCell::new(),
        }
    }

    fn doc_key(key: &CacheKey, fingerprint: &str) -> String {
        format!("{}:{}:{fingerprint}", key.tenant, key.local_key())
    }

    async fn folder(&self) -> Result<&str, GoogleError> {
        self.folder
            .get_or_try_init(|| async {
                self.client
                    .ensure_folder_path(
                        &self.root_folder,
                        &["tenants", self.tenant.as_str(), "Cache"],
                    )
                    .await
            })
            .await
            .map(String::as_str)
    }

    async fn read(
        &self,
        key: &CacheKey,
        expect: &Expectation,
    ) -> Result<Option<CacheEntry>, GoogleError> {
        let folder = self.folder().await?;
        let Some(doc) = self
            .client
            .find_document(&Self::doc_key(key, &expect.fingerprint), Some(folder))
            .await?
        else {
            return Ok(None);
        };
        let text = self
            .client
            .export_text(&doc.id, ExportFormat::PlainText)
            .await?;
        let text = text.trim_start_matches('\u{feff}').trim_end();
        if text.is_empty() {
            return Ok(None); // created but never filled (a run died in between)
        }
        Ok(Some(CacheEntry {
            value: text.to_owned(),
            model: expect.model.clone(),
            fingerprint: expect.fingerprint.clone(),
            created_ms: chrono::Utc::now().timestamp_millis(),
            usage: crate::llm::TokenCounts::default(),
        }))
    }

    async fn write(&self, key: &CacheKey, entry: &CacheEntry) -> Result<(), GoogleError> {
        let folder = self.folder().await?;
        let doc_key = Self::doc_key(key, &entry.fingerprint);
        let title = format!("{} ({})", key.id, key.data_type.config_name());
        self.client
            .save_document(&NewDocument {
                folder_id: folder,
                title: &title,
                key: &doc_key,
                text: &entry.value,
            })
            .await?;
        Ok(())
    }
}

fn backend(e: GoogleError) -> L3Error {
    L3Error::Backend {
        backend: "google-docs",
        message: e.to_string(),
    }
}

impl L3Store for GoogleDocsL3 {
    fn name(&self) -> &'static str {
        "google-docs"
    }

    fn get<'a>(
        &'a self,
        key: &'a CacheKey,
        expect: &'a Expectation,
    ) -> BoxFuture<'a, Result<Option<CacheEntry>, L3Error>> {
        Box::pin(async move { self.read(key, expect).await.map_err(backend) })
    }

    fn put<'a>(
        &'a self,
        key: &'a CacheKey,
        entry: &'a CacheEntry,
    ) -> BoxFuture<'a, Result<(), L3Error>> {
        Box::pin(async move { self.write(key, entry).await.map_err(backend) })
    }
}
