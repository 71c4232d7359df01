//! The Claude Messages API client: one reqwest client, configurable base URL, the key kept
//! secret. Connection failures get a short in-call retry; everything else surfaces as an
//! [`LlmError`] so the queue reschedules instead of blocking a worker.
//!
//! With a fleet-wide pause ([`ClaudeClient::with_pause`]), a 429 or 529 that names a wait
//! pauses every worker's calls on the deployment's key for that wait, and every call first
//! checks the pause: while it is in force the call is not made ([`LlmError::Paused`], a
//! deferral of the job).

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use bytes::Bytes;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};

use super::body::{JsonBody, SharedTexts};
use super::error::{parse_api_error, LlmError};
use super::types::{CountTokensRequest, CountTokensResponse, MessagesRequest, MessagesResponse};
use crate::settings::Settings;
use crate::upstream::UpstreamPause;

/// The pause scope of Claude: one API key for the whole deployment.
pub const PAUSE_SCOPE: &str = "claude";

/// Default whole-request timeout (`ANTHROPIC_TIMEOUT_SECONDS`): long generations take a while.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The API version header this client speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// How to reach Claude.
#[derive(Clone, Debug)]
pub struct ClaudeConfig {
    /// `ANTHROPIC_BASE_URL` (default `https://api.anthropic.com`); tests point it at a fake.
    pub base_url: String,
    /// `ANTHROPIC_API_KEY`; never logged (its `Debug` is redacted).
    pub api_key: SecretString,
    /// Whole-request timeout (`ANTHROPIC_TIMEOUT_SECONDS`, default [`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// TCP/TLS connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// Extra attempts after a connection error, with a short backoff (default 2).
    pub connect_retries: usize,
    /// Which HTTP version to speak (`ANTHROPIC_HTTP_VERSION`, default [`HttpVersion::Auto`]).
    pub http_version: HttpVersion,
}

/// How the client speaks HTTP to the API (`ANTHROPIC_HTTP_VERSION`).
///
/// Over HTTP/2 every call of a worker shares one connection; over HTTP/1.1 each call in flight
/// holds a connection of its own (with its buffers, and its TLS session): a worker with 1,000
/// transforms in flight held 1,000 connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpVersion {
    /// `auto`: HTTP/2 where TLS negotiates it (`https://api.anthropic.com` does), else HTTP/1.1.
    #[default]
    Auto,
    /// `http1`: HTTP/1.1 only.
    Http1,
    /// `http2`: HTTP/2 from the first byte, also over plain `http://` (a proxy or a fake that
    /// speaks HTTP/2 without TLS).
    Http2,
}

impl HttpVersion {
    /// Parses `auto`, `http1` or `http2`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(Self::Auto),
            "http1" | "http/1.1" => Some(Self::Http1),
            "http2" | "http/2" => Some(Self::Http2),
            _ => None,
        }
    }
}

impl ClaudeConfig {
    /// A configuration with the default timeouts.
    pub fn new(base_url: impl Into<String>, api_key: SecretString) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: Duration::from_secs(10),
            connect_retries: 2,
            http_version: HttpVersion::Auto,
        }
    }

    /// From the process settings; fails when `ANTHROPIC_API_KEY` is not set.
    pub fn from_settings(settings: &Settings) -> Result<Self, LlmError> {
        let key = settings
            .anthropic_api_key
            .clone()
            .ok_or_else(|| LlmError::NotConfigured("ANTHROPIC_API_KEY is not set".into()))?;
        let mut config = Self::new(settings.anthropic_base_url.clone(), key);
        config.timeout = settings.anthropic_timeout;
        config.http_version = settings.anthropic_http_version;
        Ok(config)
    }
}

/// A successful messages call.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaudeReply {
    /// The response body.
    pub message: MessagesResponse,
    /// The `request-id` header, for support and logs.
    pub request_id: Option<String>,
}

/// Calls the Messages API. Cheap to clone (one shared connection pool).
#[derive(Clone, Debug)]
pub struct ClaudeClient {
    http: reqwest::Client,
    config: Arc<ClaudeConfig>,
    pause: Option<UpstreamPause>,
}

impl ClaudeClient {
    /// Builds the HTTP client.
    pub fn new(config: ClaudeConfig) -> Result<Self, LlmError> {
        url::Url::parse(&config.base_url).map_err(|e| {
            LlmError::NotConfigured(format!("ANTHROPIC_BASE_URL is not a URL: {e}"))
        })?;
        let builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout);
        let builder = match config.http_version {
            HttpVersion::Auto => builder,
            HttpVersion::Http1 => builder.http1_only(),
            HttpVersion::Http2 => builder.http2_prior_knowledge(),
        };
        let http = builder
            .build()
            .map_err(|e| LlmError::NotConfigured(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            config: Arc::new(config),
            pause: None,
        })
    }

    /// Shares rate limits with every worker through `pause` (see the module docs).
    pub fn with_pause(mut self, pause: UpstreamPause) -> Self {
        self.pause = Some(pause);
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClaudeConfig {
        &self.config
    }

    /// `POST /v1/messages`.
    #[tracing::instrument(name = "claude.messages", skip_all, fields(model = %request.model, request_id), err(level = "warn", Display))]
    pub async fn messages(&self, request: &MessagesRequest) -> Result<ClaudeReply, LlmError> {
        let (headers, body) = self.post("/v1/messages", request).await?;
        let request_id = request_id(&headers);
        if let Some(id) = &request_id {
            tracing::Span::current().record("request_id", id.as_str());
        }
        let message: MessagesResponse =
            serde_json::from_slice(&body).map_err(|e| LlmError::Decode {
                message: e.to_string(),
                request_id: request_id.clone(),
            })?;
        let u = &message.usage;
        tracing::debug!(
            input = u.input_tokens,
            output = u.output_tokens,
            cache_creation = u.cache_creation_input_tokens.unwrap_or(0),
            cache_read = u.cache_read_input_tokens.unwrap_or(0),
            stop_reason = message.stop_reason.as_deref().unwrap_or(""),
            "claude answered"
        );
        Ok(ClaudeReply {
            message,
            request_id,
        })
    }

    /// `POST /v1/messages/count_tokens`: input tokens the request would use.
    #[tracing::instrument(name = "claude.count_tokens", skip_all, fields(model = %request.model), err(level = "warn", Display))]
    pub async fn count_tokens(&self, request: &CountTokensRequest) -> Result<u64, LlmError> {
        let (headers, body) = self.post("/v1/messages/count_tokens", request).await?;
        let parsed: CountTokensResponse =
            serde_json::from_slice(&body).map_err(|e| LlmError::Decode {
                message: e.to_string(),
                request_id: request_id(&headers),
            })?;
        Ok(parsed.input_tokens)
    }

    async fn post<T: SharedTexts + Sync>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<(HeaderMap, Bytes), LlmError> {
        if let Some(pause) = &self.pause {
            match pause.current(PAUSE_SCOPE).await {
                Ok(Some(p)) => return Err(LlmError::Paused(p)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the Claude pause; calling anyway")
                }
            }
        }
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        // Large shared texts (a transform's document) are streamed from their shared bytes
        // rather than copied into each request's body; the bytes sent are the same.
        let body = JsonBody::new(body)
            .map_err(|e| LlmError::Connection(format!("encoding the request: {e}")))?;
        let send = || async {
            self.http
                .post(&url)
                .header("x-api-key", self.config.api_key.expose_secret())
                .header("anthropic-version", ANTHROPIC_VERSION)
                .header("content-type", "application/json")
                .body(reqwest::Body::wrap(body.clone()))
                .send()
                .await
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(1))
            .with_max_times(self.config.connect_retries)
            .with_jitter();
        let response = send
            .retry(backoff)
            .when(|e: &reqwest::Error| e.is_connect() && !e.is_timeout())
            .notify(
                |e, wait| tracing::debug!(error = %e, ?wait, "claude connection failed; retrying"),
            )
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            let err = parse_api_error(status.as_u16(), &headers, &bytes, chrono::Utc::now());
            if let (Some(pause), Some(wait)) = (&self.pause, err.retry_after) {
                // The key is shared by every worker: one 429 with a wait is everyone's.
                if err.is_rate_limit() && !wait.is_zero() {
                    pause
                        .pause_or_log(
                            PAUSE_SCOPE,
                            wait,
                            &format!("{} {}", err.status, err.error_type),
                        )
                        .await;
                }
            }
            return Err(LlmError::Api(err));
        }
        Ok((headers, bytes))
    }

    fn transport_error(&self, e: reqwest::Error) -> LlmError {
        if e.is_timeout() {
            LlmError::Timeout(self.config.timeout)
        } else {
            // Strip the URL: it is ours and says nothing new; keep the cause chain.
            let e = e.without_url();
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            LlmError::Connection(message)
        }
    }
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
