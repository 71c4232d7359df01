//! Operations endpoints: `/healthz` (the process answers), `/readyz` (Redis reachable and
//! configuration loaded; 503 otherwise) and `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use prometheus::{Encoder, TextEncoder};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`.
pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let tenants = state.tenants.tenants().count();
    let redis = state.queue.ping().await;
    match redis {
        Ok(()) if tenants > 0 => {
            Json(json!({"status": "ready", "redis": "ok", "tenants": tenants})).into_response()
        }
        Ok(()) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "redis": "ok", "tenants": 0})),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: Redis unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not_ready", "redis": "unreachable", "tenants": tenants})),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut buf = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&state.registry.gather(), &mut buf) {
        Ok(()) => (
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            buf,
        )
            .into_response(),
        Err(e) => ApiError::Internal(format!("metrics encoding failed: {e}")).into_response(),
    }
}
