//! A small Google Docs and Drive client (reqwest, no generated google-apis crates): service-account
//! tokens, the tenant's folder tree in a Shared Drive, one document per (job, persona) found again
//! by its `appProperties` key, and reading a document's text back.
//!
//! Service accounts own no Drive storage: every write goes into a folder of a Shared Drive that the
//! tenant shared with the service account (`supportsAllDrives=true` on every call). When Google
//! answers in a way that means this was not done, the error says so ([`GoogleError::NoSharedDrive`]).

mod auth;
mod drive;
mod error;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::EncodingKey;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

pub use auth::{GrantClaims, ServiceAccountKey, DEFAULT_SCOPES, DEFAULT_TOKEN_URI};
pub use drive::{DocumentRef, ExportFormat, NewDocument, DOCUMENT_MIME, FOLDER_MIME, KEY_PROPERTY};
pub use error::{GoogleError, QUOTA_WAIT};

use auth::{CachedToken, TokenError, TokenResponse};

/// Google's Docs API origin.
pub const DEFAULT_DOCS_BASE: &str = "https://docs.googleapis.com";
/// Google's Drive API origin.
pub const DEFAULT_DRIVE_BASE: &str = "https://www.googleapis.com";
/// Drive's export limit, also ours for reading a document.
pub const EXPORT_LIMIT_BYTES: usize = 10 * 1024 * 1024;

/// Where Google is and how to authenticate.
#[derive(Clone, Debug)]
pub struct GoogleConfig {
    /// Overrides the key file's `token_uri` (tests).
    pub token_uri: Option<String>,
    /// Docs API origin (default [`DEFAULT_DOCS_BASE`]).
    pub docs_base: String,
    /// Drive API origin (default [`DEFAULT_DRIVE_BASE`]).
    pub drive_base: String,
    /// Scopes of the grant (default [`DEFAULT_SCOPES`]). `drive.file` only reaches files the app
    /// created or was given; reading arbitrary users' documents needs `drive.readonly`.
    pub scopes: String,
    /// Domain-wide delegation: act for this user (`sub`).
    pub subject: Option<String>,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
}

impl Default for GoogleConfig {
    fn default() -> Self {
        Self {
            token_uri: None,
            docs_base: DEFAULT_DOCS_BASE.to_owned(),
            drive_base: DEFAULT_DRIVE_BASE.to_owned(),
            scopes: DEFAULT_SCOPES.to_owned(),
            subject: None,
            timeout: Duration::from_secs(30),
        }
    }
}

impl GoogleConfig {
    /// Every endpoint at one origin (a local fake): token at `{origin}/token`.
    pub fn at_origin(origin: &str) -> Self {
        let origin = origin.trim_end_matches('/');
        Self {
            token_uri: Some(format!("{origin}/token")),
            docs_base: origin.to_owned(),
            drive_base: origin.to_owned(),
            ..Self::default()
        }
    }
}

/// A client for one service account (one tenant); cheap to clone, tokens shared.
#[derive(Clone)]
pub struct GoogleClient {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: GoogleConfig,
    key: ServiceAccountKey,
    encoding: EncodingKey,
    /// One refresh at a time; callers wait for it instead of each asking Google.
    token: Mutex<Option<CachedToken>>,
    /// Counts every HTTP call to Google (`onomancer_api_calls_total{service="google"}`).
    calls: std::sync::OnceLock<prometheus::IntCounter>,
    /// Shares this service account's quota answers with every worker.
    pause: std::sync::OnceLock<crate::upstream::UpstreamPause>,
}

impl std::fmt::Debug for GoogleClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleClient")
            .field("service_account", &self.inner.key.client_email)
            .finish_non_exhaustive()
    }
}

impl GoogleClient {
    /// A client for the service account `key`.
    pub fn new(config: GoogleConfig, mut key: ServiceAccountKey) -> Result<Self, GoogleError> {
        if let Some(uri) = &config.token_uri {
            key.token_uri = uri.clone();
        }
        let encoding = auth::encoding_key(&key)?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .use_rustls_tls()
            // As before reqwest could speak HTTP/2 (enabled for Claude's client).
            .http1_only()
            .build()
            .map_err(|e| GoogleError::Transport(e.to_string()))?;
        Ok(Self {
            inner: std::sync::Arc::new(Inner {
                http,
                config,
                key,
                encoding,
                token: Mutex::new(None),
                calls: std::sync::OnceLock::new(),
                pause: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Counts every call this client makes to Google (API requests, retries after a 401, token
    /// grants) in `counter`. Set once; later calls are ignored.
    pub fn count_calls_in(&self, counter: prometheus::IntCounter) {
        let _ = self.inner.calls.set(counter);
    }

    /// Shares quota answers through `pause`: a 429 or a 403 `rateLimitExceeded` pauses this
    /// service account's calls on every worker for Google's `Retry-After` (else
    /// [`QUOTA_WAIT`]), and every call checks the pause first ([`GoogleError::Paused`]). Set
    /// once; later calls are ignored.
    pub fn pause_with(&self, pause: crate::upstream::UpstreamPause) {
        let _ = self.inner.pause.set(pause);
    }

    fn pause_scope(&self) -> String {
        format!("google:{}", self.inner.key.client_email)
    }

    /// `Err(Paused)` while this service account is paused.
    async fn check_pause(&self) -> Result<(), GoogleError> {
        let Some(pause) = self.inner.pause.get() else {
            return Ok(());
        };
        match pause.current(&self.pause_scope()).await {
            Ok(Some(p)) => Err(GoogleError::Paused {
                wait: p.remaining,
                reason: p.reason,
            }),
            Ok(None) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the Google pause; calling anyway");
                Ok(())
            }
        }
    }

    /// After a quota answer: every worker waits.
    async fn note_quota(&self, err: &GoogleError) {
        if let (
            Some(pause),
            GoogleError::RateLimited {
                reason,
                retry_after,
            },
        ) = (self.inner.pause.get(), err)
        {
            pause
                .pause_or_log(
                    &self.pause_scope(),
                    retry_after.unwrap_or(QUOTA_WAIT),
                    &format!("quota: {reason}"),
                )
                .await;
        }
    }

    fn count_call(&self) {
        if let Some(c) = self.inner.calls.get() {
            c.inc();
        }
    }

    /// A client from the tenant's JSON key (`credentials.google_service_account`).
    pub fn from_key_json(
        config: GoogleConfig,
        key_json: &SecretString,
    ) -> Result<Self, GoogleError> {
        Self::new(config, ServiceAccountKey::from_json(key_json)?)
    }

    /// The service account's email (what users share their Shared Drive with).
    pub fn service_account_email(&self) -> &str {
        &self.inner.key.client_email
    }

    /// A valid access token, from the cache or a new grant.
    pub async fn access_token(&self) -> Result<SecretString, GoogleError> {
        let mut slot = self.inner.token.lock().await;
        if let Some(cached) = slot.as_ref().filter(|c| c.fresh(Instant::now())) {
            return Ok(cached.token.clone());
        }
        let now_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.check_pause().await?;
        let assertion = auth::sign_grant(
            &self.inner.key,
            &self.inner.encoding,
            &self.inner.config.scopes,
            self.inner.config.subject.as_deref(),
            now_secs,
        )?;
        self.count_call();
        let response = self
            .inner
            .http
            .post(&self.inner.key.token_uri)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| GoogleError::Transport(e.to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| GoogleError::Transport(e.to_string()))?;
        if !status.is_success() {
            if status.as_u16() == 429 {
                let err = GoogleError::RateLimited {
                    reason: "token endpoint rate limit".into(),
                    retry_after: None,
                };
                self.note_quota(&err).await;
                return Err(err);
            }
            if status.is_server_error() {
                return Err(GoogleError::Server {
                    status: status.as_u16(),
                });
            }
            let err: TokenError = serde_json::from_slice(&body).unwrap_or(TokenError {
                error: format!("HTTP {status}"),
                error_description: String::new(),
            });
            return Err(GoogleError::TokenRefused {
                error: err.error,
                description: err.error_description,
            });
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| GoogleError::BadResponse(format!("token response: {e}")))?;
        let cached = CachedToken::new(parsed, Instant::now());
        let token = cached.token.clone();
        *slot = Some(cached);
        Ok(token)
    }

    /// Forgets the cached token (after Google answered 401).
    async fn drop_token(&self) {
        *self.inner.token.lock().await = None;
    }

    /// Sends an authorized request; a 401 drops the token and is retried once with a new one.
    async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, GoogleError> {
        let mut renewed = false;
        loop {
            let token = self.access_token().await?;
            self.check_pause().await?;
            self.count_call();
            let response = build(&self.inner.http)
                .bearer_auth(token.expose_secret())
                .send()
                .await
                .map_err(|e| GoogleError::Transport(e.to_string()))?;
            if response.status().as_u16() == 401 && !renewed {
                self.drop_token().await;
                renewed = true;
                continue;
            }
            if response.status().is_success() {
                return Ok(response);
            }
            let err = error::from_response(response, &self.inner.key.client_email).await;
            self.note_quota(&err).await;
            return Err(err);
        }
    }

    fn drive_url(&self, path: &str) -> String {
        format!(
            "{}/drive/v3/{path}",
            self.inner.config.drive_base.trim_end_matches('/')
        )
    }

    fn docs_url(&self, path: &str) -> String {
        format!(
            "{}/v1/{path}",
            self.inner.config.docs_base.trim_end_matches('/')
        )
    }
}
