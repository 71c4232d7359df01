//! Building and running the gateway: the router with its per-route body limits and deadlines,
//! and [`Application`] (build on a port, possibly 0, then run until a shutdown future resolves)
//! so tests and the binary start the same server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use onomancer_shared::admission::Admission;
use onomancer_shared::integrations::discord::DiscordConfig;
use onomancer_shared::ops_http;
use onomancer_shared::queue::{Queue, QueueConfig};
use onomancer_shared::settings::{DiscordInteractions, Settings};
use onomancer_shared::tenant::TenantRegistry;
use onomancer_shared::usage::UsageStore;
use onomancer_shared::KeySpace;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::ApiError;
use crate::http_settings::HttpSettings;
use crate::metrics::GatewayMetrics;
use crate::signature::DiscordVerifier;
use crate::state::{AppState, AppStateInner};
use crate::{api, discord, extract, github, linear, serve};

/// GitHub payloads are at most 25 MB.
pub const GITHUB_BODY_LIMIT: usize = 25 * 1024 * 1024;
/// Linear and REST bodies.
pub const SMALL_BODY_LIMIT: usize = 1024 * 1024;
/// Discord interactions are small (a command and its options, or one resolved message).
pub const DISCORD_BODY_LIMIT: usize = 128 * 1024;

/// Discord's answer deadline: a margin under its 3 s.
pub const DISCORD_DEADLINE: Duration = Duration::from_millis(2_500);
/// Linear's: a margin under its 5 s.
pub const LINEAR_DEADLINE: Duration = Duration::from_millis(4_500);
/// GitHub's (10 s) and every other route's.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(9);

/// Answer deadlines, a margin under each caller's own (Discord 3 s, Linear 5 s, GitHub 10 s).
fn deadline(route: &str) -> Duration {
    if route.starts_with("/discord") {
        DISCORD_DEADLINE
    } else if route.starts_with("/webhooks/linear") {
        LINEAR_DEADLINE
    } else {
        DEFAULT_DEADLINE
    }
}

/// The request span, metrics, and the caller's deadline (a late answer is a 503: the caller
/// would have given up anyway, and a job stored meanwhile is deduplicated on redelivery).
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let delivery = req
        .headers()
        .get("x-github-delivery")
        .or_else(|| req.headers().get("linear-delivery"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    // `tenant` is filled in by whoever resolves it (the API-key extractor records it here).
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = %route,
        delivery = %delivery,
        tenant = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = match tokio::time::timeout(
        deadline(&route),
        next.run(req).instrument(span.clone()),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => {
            span.in_scope(|| tracing::error!("deadline passed before an answer"));
            ApiError::Unavailable("deadline passed".into()).into_response()
        }
    };
    let status = response.status();
    state
        .metrics
        .requests
        .with_label_values(&[route.as_str(), status.as_str()])
        .inc();
    state
        .metrics
        .duration
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    if status.is_server_error() {
        span.in_scope(|| tracing::warn!(status = status.as_u16(), "request failed"));
    }
    response
}

/// The gateway's routes over `state`. Handlers that take a body read it themselves (`body.rs`:
/// limits, timeout, streaming signature checks) once the request is authenticated as far as
/// its headers allow; every refusal, axum's own included, is a JSON error.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/webhooks/github/{tenant}", post(github::webhook))
        .route("/webhooks/linear/{tenant}", post(linear::webhook))
        .route("/discord/interactions", post(discord::interactions))
        .route("/v1/transforms", post(api::create_transform))
        .route("/v1/jobs/{id}", get(api::job_status))
        .route("/v1/usage", get(api::usage))
        .route("/v1/decisions", get(api::decisions))
        .merge(ops_http::router(state.registry.clone(), readiness(&state)))
        .method_not_allowed_fallback(extract::wrong_method)
        .fallback(extract::no_route)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The gateway's `/readyz`: Redis reachable and tenants loaded.
fn readiness(state: &AppState) -> ops_http::ReadyCheck {
    let (queue, tenants) = (state.queue.clone(), state.tenants.clone());
    Arc::new(move || {
        let (queue, tenants) = (queue.clone(), tenants.clone());
        Box::pin(async move {
            let redis = match queue.ping().await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "not ready: Redis unreachable");
                    false
                }
            };
            ops_http::Readiness {
                redis,
                tenants: Some(tenants.tenants().count()),
            }
        })
    })
}

/// What the gateway needs to start.
pub struct GatewayConfig {
    /// Listen address (port 0 picks a free one).
    pub addr: SocketAddr,
    /// `REDIS_URL`.
    pub redis_url: String,
    /// Key namespace.
    pub keys: KeySpace,
    /// Loaded tenants.
    pub tenants: Arc<TenantRegistry>,
    /// Queue tuning.
    pub queue: QueueConfig,
    /// `DISCORD_PUBLIC_KEY` (hex); `None` refuses every interaction with 401.
    pub discord_public_key: Option<String>,
    /// The usage store for `/v1/usage`.
    pub usage: Option<UsageStore>,
    /// Header and body timeouts, connection cap.
    pub http: HttpSettings,
}

/// The gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Redis could not be reached.
    #[error("cannot connect to Redis: {0}")]
    Redis(#[from] onomancer_shared::queue::QueueError),
    /// Metric names collide in the registry.
    #[error("metrics registration failed: {0}")]
    Metrics(#[from] prometheus::Error),
    /// `DISCORD_PUBLIC_KEY` is malformed.
    #[error(transparent)]
    DiscordKey(#[from] crate::signature::InvalidPublicKey),
    /// The Discord signature verifier's thread could not be started.
    #[error("cannot start the Discord signature verifier thread: {0}")]
    VerifierThread(std::io::Error),
    /// The listen address is taken or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A bound, not yet running gateway.
pub struct Application {
    listener: TcpListener,
    port: u16,
    state: AppState,
}

impl Application {
    /// Connects to Redis, registers metrics and binds the listener.
    pub async fn build(config: GatewayConfig) -> Result<Self, StartupError> {
        let registry = prometheus::Registry::new();
        let queue = Queue::connect(
            &config.redis_url,
            config.keys.clone(),
            config.queue,
            &registry,
        )
        .await?;
        let state = AppState::new(AppStateInner {
            tenants: config.tenants,
            admission: Admission::new(queue.conn(), config.keys),
            queue,
            metrics: GatewayMetrics::register(&registry)?,
            registry,
            discord: config
                .discord_public_key
                .as_deref()
                .map(DiscordVerifier::from_hex)
                .transpose()?
                .map(DiscordVerifier::batched)
                .transpose()
                .map_err(StartupError::VerifierThread)?,
            usage: config.usage,
            http: config.http,
        });
        Self::with_state(state, config.addr).await
    }

    /// Binds a listener for an already assembled state.
    pub async fn with_state(state: AppState, addr: SocketAddr) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?
            .port();
        Ok(Self {
            listener,
            port,
            state,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The state handlers share (tests read the queue and metrics through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (http, metrics) = (self.state.http, self.state.metrics.clone());
        serve::serve(self.listener, router(self.state), http, metrics, shutdown).await
    }
}

/// Runs the gateway from process settings until `shutdown` is cancelled (the binary calls
/// this): loads the tenants, then [`run_with_tenants`].
pub async fn run(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let tenants = Arc::new(
        TenantRegistry::load(&settings.config_dir)
            .with_context(|| format!("loading tenants from {}", settings.config_dir.display()))?,
    );
    run_with_tenants(settings, tenants, shutdown).await
}

/// Runs the gateway with the configuration its process loaded once (`onomancer up` shares it
/// with the other roles) until `shutdown` is cancelled. Waits for Redis when it is not up yet.
pub async fn run_with_tenants(
    settings: &Settings,
    tenants: Arc<TenantRegistry>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let websocket = match settings.discord_interactions {
        DiscordInteractions::Http => None,
        DiscordInteractions::Gateway => Some(
            DiscordConfig::from_settings(settings, &tenants.defaults().rate_limits).context(
                "DISCORD_INTERACTIONS=gateway needs DISCORD_BOT_TOKEN and DISCORD_APPLICATION_ID",
            )?,
        ),
    };
    let queue = QueueConfig::from(&tenants.defaults().queue);
    let http = HttpSettings::from_env()?;
    let usage = match onomancer_shared::db::Database::open(&settings.database_url).await {
        Ok(db) => Some(UsageStore::new(db)),
        Err(e) => {
            tracing::error!(error = %e, "usage database unavailable: /v1/usage reports quotas only");
            None
        }
    };
    let build = || {
        Application::build(GatewayConfig {
            addr: settings.http_addr,
            redis_url: settings.redis_url.clone(),
            keys: settings.key_space(),
            tenants: tenants.clone(),
            queue: queue.clone(),
            discord_public_key: settings.discord_public_key.clone(),
            usage: usage.clone(),
            http,
        })
    };
    let started = onomancer_shared::redis_conn::wait_for_redis(
        &settings.redis_url,
        &shutdown,
        build,
        |e: &StartupError| matches!(e, StartupError::Redis(_)),
    )
    .await?;
    let Some(app) = started else {
        return Ok(());
    };
    tracing::info!(
        addr = %settings.http_addr,
        port = app.port(),
        tenants = tenants.tenants().count(),
        header_timeout_ms = http.header_timeout.as_millis() as u64,
        body_timeout_ms = http.body_timeout.as_millis() as u64,
        max_connections = http.max_connections,
        "gateway listening"
    );
    let websocket = websocket.map(|config| {
        tokio::spawn(discord::ws::run(
            config,
            app.state().clone(),
            shutdown.clone(),
        ))
    });
    let stop = shutdown.clone();
    let server = app.run_until_stopped(async move { stop.cancelled().await });
    match websocket {
        None => server.await.context("gateway server failed"),
        Some(ws) => {
            tokio::pin!(server);
            tokio::select! {
                served = &mut server => served.context("gateway server failed"),
                // A rejected bot token ends the process: a broken config must not look healthy.
                ended = ws => {
                    let outcome = ended.context("Discord Gateway task panicked")?;
                    if let Err(e) = outcome {
                        shutdown.cancel();
                        server.await.ok();
                        return Err(e);
                    }
                    server.await.context("gateway server failed")
                }
            }
        }
    }
}
