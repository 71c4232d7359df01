//! Guarded fetching of user-supplied documents. Links come from users, so every fetch is checked:
//! only the allowed hosts of each source kind, `https` only, DNS resolved here and refused when it
//! points inside (loopback, private, link-local, unique-local, CGNAT, multicast, unspecified), the
//! connection pinned to the checked addresses (no DNS rebinding), redirects re-checked hop by hop,
//! the body streamed up to a size cap, and only text accepted. Every refusal is a
//! [`FetchError`] with a message a user can act on; refusals are terminal for the job.

mod guard;
mod http;
mod source;

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::google::{ExportFormat, GoogleClient, GoogleError};
use crate::job::JobError;

pub use guard::forbidden_reason;
pub use source::{ParsedSource, SourceError, SourceKind};

/// Default size cap (Google's export limit as well).
pub const DEFAULT_MAX_BYTES: usize = 10 * 1024 * 1024;
/// Default time budget of one fetch, redirects included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Network failures on an allowed host are retried until this attempt, then reported.
pub const NETWORK_RETRY_ATTEMPTS: u32 = 3;

/// What may be fetched.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Exact host names (lower case) each source kind may be fetched from.
    pub allowed_hosts: BTreeMap<SourceKind, Vec<String>>,
    /// Size cap of a document in bytes.
    pub max_bytes: usize,
    /// Time budget of one fetch.
    pub timeout: Duration,
    /// Accept loopback and private addresses, for hosts listed exactly in `allowed_hosts` (tests
    /// pointing a source at a local fake). Never set in production.
    pub allow_private: bool,
    /// Hosts where plain `http` is accepted (tests). Empty in production.
    pub insecure_http_hosts: Vec<String>,
    /// Replaces the scheme, host and port (and prefixes the path) of the URL fetched for a kind:
    /// how tests point a source at a local fake.
    pub base_overrides: BTreeMap<SourceKind, Url>,
    /// With a token, GitHub files are read through the contents API (private repositories
    /// too); without one, from `raw.githubusercontent.com` (public repositories only).
    pub github: Option<GitHubAuth>,
}

/// A GitHub token for reading files through the contents API.
#[derive(Debug, Clone)]
pub struct GitHubAuth {
    /// Fine-grained or app token with `contents: read`.
    pub token: SecretString,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        let hosts = |list: &[&str]| list.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>();
        Self {
            allowed_hosts: BTreeMap::from([
                (
                    SourceKind::DiscordAttachment,
                    hosts(&["cdn.discordapp.com", "media.discordapp.net"]),
                ),
                (
                    SourceKind::GitHubFile,
                    hosts(&["github.com", "raw.githubusercontent.com", "api.github.com"]),
                ),
                (
                    SourceKind::GoogleDoc,
                    hosts(&["docs.google.com", "www.googleapis.com"]),
                ),
            ]),
            max_bytes: DEFAULT_MAX_BYTES,
            timeout: DEFAULT_TIMEOUT,
            allow_private: false,
            insecure_http_hosts: Vec::new(),
            base_overrides: BTreeMap::new(),
            github: None,
        }
    }
}

impl FetchPolicy {
    /// Whether `host` is allowed for `kind`.
    pub fn host_allowed(&self, kind: SourceKind, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed_hosts
            .get(&kind)
            .is_some_and(|hosts| hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)))
    }

    /// Points `kind` at `base` (a local fake): its host is allowed, plain http and private
    /// addresses accepted for it.
    pub fn with_override(mut self, kind: SourceKind, base: Url) -> Self {
        if let Some(host) = base.host_str() {
            self.allowed_hosts
                .entry(kind)
                .or_default()
                .push(host.to_ascii_lowercase());
            if base.scheme() == "http" {
                self.insecure_http_hosts.push(host.to_ascii_lowercase());
            }
            self.allow_private = true;
        }
        self.base_overrides.insert(kind, base);
        self
    }

    /// `url` with the origin of the override for `kind`, if any.
    fn rewrite(&self, kind: SourceKind, url: &Url) -> Url {
        let Some(base) = self.base_overrides.get(&kind) else {
            return url.clone();
        };
        let mut out = base.clone();
        let prefix = base.path().trim_end_matches('/');
        out.set_path(&format!("{prefix}{}", url.path()));
        out.set_query(url.query());
        out
    }
}

/// A document's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedDocument {
    /// The text.
    pub text: String,
    /// Where it came from (the user's link; "pasted text" for inline text).
    pub origin: String,
    /// The `Content-Type` the server sent, if any.
    pub content_type: Option<String>,
    /// Size in bytes before decoding.
    pub bytes: usize,
    /// Set when the bytes were not valid UTF-8 and invalid sequences were replaced.
    pub note: Option<String>,
}

/// Why a document could not be read. Messages are shown to users.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The input is not a supported source.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A policy refusal: host, scheme, address, redirect.
    #[error("{0}")]
    Refused(String),
    /// Over the size cap.
    #[error("refused: the document is larger than the {} limit", human_size(*limit))]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// Not a text document.
    #[error("refused: {0}")]
    NotText(String),
    /// The server answered with an error status.
    #[error("{origin} could not be read: HTTP {status}{}", hint_for(*status))]
    Status {
        /// HTTP status.
        status: u16,
        /// The host that answered.
        origin: String,
    },
    /// The server asked to slow down (429; a 503 with `Retry-After`; GitHub's 403 rate limits):
    /// the job is deferred for `wait`, no attempt spent.
    #[error("{origin} is rate limiting (HTTP {status}); trying again in {wait:?}")]
    RateLimited {
        /// HTTP status.
        status: u16,
        /// The host that answered.
        origin: String,
        /// How long it asked to wait.
        wait: Duration,
    },
    /// The time budget ran out.
    #[error("timed out after {0:?} reading the document")]
    Timeout(Duration),
    /// Connection or DNS failure on an allowed host.
    #[error("network error reading the document: {0}")]
    Network(String),
    /// A Google Doc link, but no Google client for the tenant.
    #[error("Google Docs are not configured for this tenant (no service account)")]
    GoogleNotConfigured,
    /// The Google client failed.
    #[error(transparent)]
    Google(#[from] GoogleError),
}

/// `10 MB`, `512 KB`, `100 bytes`.
fn human_size(bytes: usize) -> String {
    const MB: usize = 1024 * 1024;
    match bytes {
        b if b >= MB && b % MB == 0 => format!("{} MB", b / MB),
        b if b >= 1024 && b % 1024 == 0 => format!("{} KB", b / 1024),
        b => format!("{b}-byte"),
    }
}

fn hint_for(status: u16) -> &'static str {
    match status {
        404 => " (not found: check the link; private GitHub repositories and expired Discord attachment links cannot be read)",
        401 | 403 => " (access denied: the file must be public)",
        429 => " (rate limited; will retry)",
        _ => "",
    }
}

impl FetchError {
    /// The job error for attempt `attempt`: a rate limit defers the job for its wait (no attempt
    /// spent); refusals and client errors are terminal; timeouts, network errors and 5xx are
    /// retryable until [`NETWORK_RETRY_ATTEMPTS`].
    pub fn into_job_error(self, attempt: u32) -> JobError {
        let transient = matches!(&self, FetchError::Timeout(_) | FetchError::Network(_))
            || matches!(&self, FetchError::Status { status, .. } if *status >= 500);
        match self {
            FetchError::Google(g) => g.into(),
            FetchError::RateLimited { wait, .. } => {
                let reason = self.to_string();
                JobError::upstream_deferred(wait, reason)
            }
            other if transient && attempt < NETWORK_RETRY_ATTEMPTS => {
                JobError::retryable(other.to_string())
            }
            other => JobError::terminal(other.to_string()),
        }
    }
}

impl From<FetchError> for JobError {
    fn from(e: FetchError) -> Self {
        e.into_job_error(1)
    }
}

/// Reads documents under a [`FetchPolicy`].
#[derive(Debug, Clone, Default)]
pub struct Fetcher {
    policy: FetchPolicy,
}

impl Fetcher {
    /// A fetcher with `policy`.
    pub fn new(policy: FetchPolicy) -> Self {
        Self { policy }
    }

    /// The policy.
    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// Reads `source`. Google Docs need the tenant's `google` client.
    pub async fn fetch(
        &self,
        source: &ParsedSource,
        google: Option<&GoogleClient>,
    ) -> Result<FetchedDocument, FetchError> {
        let url = match source {
            ParsedSource::Pasted(text) => {
                if text.len() > self.policy.max_bytes {
                    return Err(FetchError::TooLarge {
                        limit: self.policy.max_bytes,
                    });
                }
                return Ok(FetchedDocument {
                    text: text.clone(),
                    origin: "pasted text".into(),
                    content_type: None,
                    bytes: text.len(),
                    note: None,
                });
            }
            ParsedSource::DiscordAttachment { url }
            | ParsedSource::GitHubFile { url, .. }
            | ParsedSource::GoogleDoc { url, .. } => url,
        };
        let kind = source.kind().expect("linked sources have a kind");
        self.check_link(kind, url)?;
        match source {
            ParsedSource::GoogleDoc { id, .. } => {
                let google = google.ok_or(FetchError::GoogleNotConfigured)?;
                let text = tokio::time::timeout(
                    self.policy.timeout,
                    google.export_text(id, ExportFormat::Markdown),
                )
                .await
                .map_err(|_| FetchError::Timeout(self.policy.timeout))??;
                if text.len() > self.policy.max_bytes {
                    return Err(FetchError::TooLarge {
                        limit: self.policy.max_bytes,
                    });
                }
                Ok(FetchedDocument {
                    bytes: text.len(),
                    text,
                    origin: url.to_string(),
                    content_type: Some("text/markdown".into()),
                    note: None,
                })
            }
            ParsedSource::GitHubFile { .. } => {
                let auth = self.policy.github.as_ref();
                let direct = match auth {
                    Some(_) => source.github_contents_url(),
                    None => source.github_raw_url(),
                };
                let direct = direct.ok_or_else(|| {
                    FetchError::Refused(format!("refused: {url} is not a valid GitHub file link"))
                })?;
                let target = self.policy.rewrite(kind, &direct);
                self.get(kind, target, url.to_string(), auth).await
            }
            _ => {
                let target = self.policy.rewrite(kind, url);
                self.get(kind, target, url.to_string(), None).await
            }
        }
    }

    /// Scheme and host checks on a URL (the user's link, a rewritten target, a redirect).
    fn check_link(&self, kind: SourceKind, url: &Url) -> Result<(), FetchError> {
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let scheme_ok = url.scheme() == "https"
            || (url.scheme() == "http"
                && self
                    .policy
                    .insecure_http_hosts
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(host)));
        if !scheme_ok {
            return Err(FetchError::Refused(format!(
                "refused: {}:// links are not allowed (https only)",
                url.scheme()
            )));
        }
        if !self.policy.host_allowed(kind, host) {
            return Err(FetchError::Refused(format!(
                "refused: host {host} is not allowed for {}",
                kind.label()
            )));
        }
        Ok(())
    }
}
