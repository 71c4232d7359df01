//! The operations endpoints every role serves, one router for all: `/healthz` (the process
//! answers), `/readyz` (the role can do its work: Redis reachable, and for the gateway its
//! tenants loaded; 503 otherwise) and `/metrics` (Prometheus text). The gateway merges the router
//! into its own; workers and the scheduler serve it alone on `ONOMANCER_METRICS_ADDR`.
//!
//! `/readyz` answers the same JSON in every role: `{"status": "ready" | "not_ready",
//! "redis": "ok" | "unreachable"}`, plus `"tenants": <count>` from roles that load tenants at
//! start (the gateway).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::{Encoder, Registry, TextEncoder};

/// What a role reports at `/readyz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// Redis answers (for a worker: its claims reach Redis too).
    pub redis: bool,
    /// Tenants loaded, from roles that report them; ready only with at least one.
    pub tenants: Option<usize>,
}

impl Readiness {
    /// Whether the role can do its work.
    pub fn is_ready(&self) -> bool {
        self.redis && self.tenants.is_none_or(|n| n > 0)
    }
}

/// A readiness probe, asked at each `/readyz`.
pub type ReadyCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Readiness> + Send>> + Send + Sync>;

#[derive(Clone)]
struct OpsState {
    registry: Registry,
    ready: ReadyCheck,
}

/// Renders a registry in the Prometheus text format.
pub fn render_metrics(registry: &Registry) -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

async fn metrics(State(s): State<OpsState>) -> Response {
    let encoder = TextEncoder::new();
    let mut buf = Vec::new();
    match encoder.encode(&s.registry.gather(), &mut buf) {
        Ok(()) => (
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            buf,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics encoding failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn healthz() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz(State(s): State<OpsState>) -> Response {
    let r = (s.ready)().await;
    let mut body = serde_json::json!({
        "status": if r.is_ready() { "ready" } else { "not_ready" },
        "redis": if r.redis { "ok" } else { "unreachable" },
    });
    if let Some(n) = r.tenants {
        body["tenants"] = n.into();
    }
    let status = if r.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The ops routes, ready to serve or to merge into a role's router of any state.
pub fn router<S: Clone + Send + Sync + 'static>(
    registry: Registry,
    ready: ReadyCheck,
) -> Router<S> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(OpsState { registry, ready })
}

/// Serves the ops routes on `addr` until `shutdown` resolves. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
    ready: ReadyCheck,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app: Router = router(registry, ready);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "ops endpoint failed");
        }
    });
    Ok((bound, task))
}
