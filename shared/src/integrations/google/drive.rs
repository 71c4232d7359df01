//! Drive and Docs operations: the folder path `/tenants/{tenant}/Products/{product}/` under the
//! tenant's Shared Drive root folder, one document per key (found again through
//! `appProperties.onomancerKey`, so a re-run creates no second document), and export as text.

use serde::Deserialize;
use serde_json::json;

use super::{GoogleClient, GoogleError, EXPORT_LIMIT_BYTES};
use crate::ids::TenantId;

/// MIME type of Drive folders.
pub const FOLDER_MIME: &str = "application/vnd.google-apps.folder";
/// MIME type of Google Docs.
pub const DOCUMENT_MIME: &str = "application/vnd.google-apps.document";
/// The `appProperties` key that makes a document findable by its idempotency key.
pub const KEY_PROPERTY: &str = "onomancerKey";

/// A Google Doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRef {
    /// Drive file id (also the Docs document id).
    pub id: String,
    /// File name.
    pub name: String,
    /// Link users can open.
    pub url: String,
}

impl DocumentRef {
    fn new(id: String, name: String) -> Self {
        let url = format!("https://docs.google.com/document/d/{id}/edit");
        Self { id, name, url }
    }
}

/// A document to save.
#[derive(Debug, Clone, Copy)]
pub struct NewDocument<'a> {
    /// Folder to create it in (from [`GoogleClient::ensure_product_folder`]).
    pub folder_id: &'a str,
    /// File name users see.
    pub title: &'a str,
    /// Idempotency key, e.g. `{tenant}:transform:{hash}:{persona}` or `job:{job}:{persona}`.
    pub key: &'a str,
    /// The document's text.
    pub text: &'a str,
}

/// Text formats Drive exports Google Docs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// `text/plain`.
    PlainText,
    /// `text/markdown`.
    Markdown,
}

impl ExportFormat {
    fn mime(self) -> &'static str {
        match self {
            ExportFormat::PlainText => "text/plain",
            ExportFormat::Markdown => "text/markdown",
        }
    }
}

#[derive(Deserialize)]
struct FileList {
    #[serde(default)]
    files: Vec<FileMeta>,
}

#[derive(Deserialize)]
struct FileMeta {
    id: String,
    #[serde(default)]
    name: String,
}

/// A string literal of the Drive query language.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl GoogleClient {
    /// `files.list` over every drive the account can see, oldest first.
    async fn list_files(&self, q: &str) -> Result<Vec<FileMeta>, GoogleError> {
        let url = self.drive_url("files");
        let response = self
            .send(|http| {
                http.get(&url).query(&[
                    ("q", q),
                    ("fields", "files(id,name)"),
                    ("supportsAllDrives", "true"),
                    ("includeItemsFromAllDrives", "true"),
                    ("corpora", "allDrives"),
                    ("orderBy", "createdTime"),
                    ("pageSize", "10"),
                ])
            })
            .await?;
        let list: FileList = response
            .json()
            .await
            .map_err(|e| GoogleError::BadResponse(format!("files.list: {e}")))?;
        Ok(list.files)
    }

    /// `files.create` with JSON metadata.
    async fn create_file(&self, metadata: serde_json::Value) -> Result<FileMeta, GoogleError> {
        let url = self.drive_url("files");
        let response = self
            .send(|http| {
                http.post(&url)
                    .query(&[("supportsAllDrives", "true"), ("fields", "id,name")])
                    .json(&metadata)
            })
            .await?;
        response
            .json()
            .await
            .map_err(|e| GoogleError::BadResponse(format!("files.create: {e}")))
    }

    /// The folder `name` directly under `parent`, if it exists (the oldest if several do).
    pub async fn find_folder(
        &self,
        parent: &str,
        name: &str,
    ) -> Result<Option<String>, GoogleError> {
        let q = format!(
            "name={} and {} in parents and mimeType='{FOLDER_MIME}' and trashed=false",
            quote(name),
            quote(parent)
        );
        Ok(self.list_files(&q).await?.into_iter().next().map(|f| f.id))
    }

    /// The folder `name` under `parent`, created when missing. Two workers racing may both
    /// create it; both then use the oldest, so the tree converges.
    pub async fn ensure_folder(&self, parent: &str, name: &str) -> Result<String, GoogleError> {
        if let Some(id) = self.find_folder(parent, name).await? {
            return Ok(id);
        }
        let created = self
            .create_file(json!({"name": name, "mimeType": FOLDER_MIME, "parents": [parent]}))
            .await
            .map_err(|e| self.explain_parent(e, parent))?;
        Ok(self.find_folder(parent, name).await?.unwrap_or(created.id))
    }

    /// Each segment of `path` under `root`, created when missing; returns the last folder's id.
    pub async fn ensure_folder_path(
        &self,
        root: &str,
        path: &[&str],
    ) -> Result<String, GoogleError> {
        let mut parent = root.to_owned();
        for segment in path {
            parent = self.ensure_folder(&parent, segment).await?;
        }
        Ok(parent)
    }

    /// `/tenants/{tenant}/Products/{product}/` under the tenant's root folder (`folderIds.root`).
    pub async fn ensure_product_folder(
        &self,
        root: &str,
        tenant: &TenantId,
        product: &str,
    ) -> Result<String, GoogleError> {
        self.ensure_folder_path(root, &["tenants", tenant.as_str(), "Products", product])
            .await
    }

    /// The document saved under `key` (in `folder`, or anywhere the account can see).
    pub async fn find_document(
        &self,
        key: &str,
        folder: Option<&str>,
    ) -> Result<Option<DocumentRef>, GoogleError> {
        let mut q = format!(
            "appProperties has {{ key='{KEY_PROPERTY}' and value={} }} and mimeType='{DOCUMENT_MIME}' and trashed=false",
            quote(key)
        );
        if let Some(folder) = folder {
            q.push_str(&format!(" and {} in parents", quote(folder)));
        }
        Ok(self
            .list_files(&q)
            .await?
            .into_iter()
            .next()
            .map(|f| DocumentRef::new(f.id, f.name)))
    }

    /// Creates the document unless one with the same key exists, and fills it. Returns the
    /// document and whether this call created it. A run killed between creating and filling
    /// leaves an empty document; the next run finds it empty and fills it.
    pub async fn save_document(
        &self,
        doc: &NewDocument<'_>,
    ) -> Result<(DocumentRef, bool), GoogleError> {
        if let Some(existing) = self.find_document(doc.key, Some(doc.folder_id)).await? {
            let current = self
                .export_text(&existing.id, ExportFormat::PlainText)
                .await?;
            if current.trim().is_empty() && !doc.text.is_empty() {
                self.insert_text(&existing.id, doc.text).await?;
            }
            return Ok((existing, false));
        }
        let created = self
            .create_file(json!({
                "name": doc.title,
                "mimeType": DOCUMENT_MIME,
                "parents": [doc.folder_id],
                "appProperties": { KEY_PROPERTY: doc.key },
            }))
            .await
            .map_err(|e| self.explain_parent(e, doc.folder_id))?;
        if !doc.text.is_empty() {
            self.insert_text(&created.id, doc.text).await?;
        }
        Ok((DocumentRef::new(created.id, created.name), true))
    }

    /// Docs `documents.batchUpdate` with one `insertText` at the start of the body.
    async fn insert_text(&self, document_id: &str, text: &str) -> Result<(), GoogleError> {
        let url = self.docs_url(&format!("documents/{document_id}:batchUpdate"));
        let body = json!({"requests": [{"insertText": {"location": {"index": 1}, "text": text}}]});
        self.send(|http| http.post(&url).json(&body)).await?;
        Ok(())
    }

    /// A document's text through Drive `files.export`, at most [`EXPORT_LIMIT_BYTES`].
    pub async fn export_text(
        &self,
        file_id: &str,
        format: ExportFormat,
    ) -> Result<String, GoogleError> {
        let url = self.drive_url(&format!("files/{file_id}/export"));
        let mut response = self
            .send(|http| http.get(&url).query(&[("mimeType", format.mime())]))
            .await?;
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| GoogleError::Transport(e.to_string()))?
        {
            if bytes.len() + chunk.len() > EXPORT_LIMIT_BYTES {
                return Err(GoogleError::TooLarge {
                    limit_bytes: EXPORT_LIMIT_BYTES,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A 404 on the parent of a create means the account cannot see the tenant's folder.
    fn explain_parent(&self, e: GoogleError, parent: &str) -> GoogleError {
        match e {
            GoogleError::NotFound { email, detail } => GoogleError::NoSharedDrive {
                email,
                detail: format!("folder {parent} is not visible to the service account: {detail}"),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn query_literals_are_escaped() {
        assert_eq!(quote("it's"), r"'it\'s'");
        assert_eq!(quote(r"a\b"), r"'a\\b'");
    }
}
