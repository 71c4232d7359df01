//! The `transform` job payload: written by the gateway (webhooks, Discord, REST), the CLI and the
//! Discord command handler, read by the transform worker. Msgpack with named fields; fields are
//! only added, never renamed, and unknown fields are ignored.

use serde::{Deserialize, Serialize};

/// Where the document comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DocumentSource {
    /// Pasted text.
    Text {
        /// The document.
        text: String,
    },
    /// A link: Google Doc, GitHub file page, Discord attachment.
    Url {
        /// The link.
        url: String,
    },
    /// Files of a GitHub repository at a commit (documents touched by a push).
    GithubFiles {
        /// `org/repo`.
        repo: String,
        /// The pushed ref.
        git_ref: String,
        /// The commit to read at.
        sha: String,
        /// Document paths.
        paths: Vec<String>,
    },
    /// A Discord attachment.
    DiscordAttachment {
        /// CDN link.
        url: String,
        /// File name.
        filename: String,
        /// MIME type, when known.
        content_type: Option<String>,
    },
}

/// Who asked, so results go back the same way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Origin {
    /// `POST /v1/transforms` or the CLI: results only in the job status.
    Api,
    /// A GitHub push: results go to the repository's channel.
    GithubPush {
        /// `X-GitHub-Delivery`.
        delivery: String,
    },
    /// A Discord `/transform`: results edit the deferred reply, then follow-ups.
    Discord {
        /// Application id.
        application_id: String,
        /// Interaction token (15 minutes; never logged).
        token: String,
        /// Channel of the command.
        channel_id: Option<String>,
    },
}

/// `transform`: one document, one version per persona.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformJob {
    /// Payload version.
    pub v: u8,
    /// The document.
    pub source: DocumentSource,
    /// Personas; empty means the tenant's `defaultPersonas`.
    #[serde(default)]
    pub personas: Vec<String>,
    /// Product key (Drive folder `/tenants/{tenant}/Products/{product}/`).
    #[serde(default)]
    pub product: Option<String>,
    /// Who asked.
    pub origin: Origin,
    /// The requesting user (Discord user id or API key name), for usage records.
    #[serde(default)]
    pub user: Option<String>,
    /// Title for posts and documents (file name, link); derived from the source when absent.
    #[serde(default)]
    pub title: Option<String>,
}
