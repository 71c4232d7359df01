//! The gateway role: a stateless HTTP front (axum) that verifies webhook and interaction
//! signatures, resolves the tenant, admits (rate, quota), enqueues jobs in Redis and answers
//! within the caller's deadline. It never calls Claude; any number of instances can run behind a
//! load balancer, since every piece of state (dedupe, quotas, rates, jobs) lives in Redis.
//!
//! Invariant: a 2xx answer means every job the request created is stored in Redis.

pub mod api;
mod body;
pub mod discord;
pub mod error;
pub mod extract;
pub mod github;
pub mod http_settings;
pub mod linear;
pub mod metrics;
mod serve;
pub mod signature;
pub mod startup;
pub mod state;

use std::sync::Arc;

use axum::http::HeaderMap;
use onomancer_shared::tenant::TenantContext;

pub use http_settings::HttpSettings;
pub use startup::{router, run, Application, GatewayConfig, StartupError};
pub use state::AppState;

use error::ApiError;

/// A header as text (`None` when absent or not visible ASCII).
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Delivery and idempotency ids go into Redis keys: 1 to 128 of `[A-Za-z0-9._-]`.
pub(crate) fn valid_delivery_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The tenant named in a webhook path; unknown (or not even a valid id) is 404. Checked before
/// the body is read.
pub(crate) fn tenant_for_webhook(
    state: &AppState,
    tenant: &str,
) -> Result<Arc<TenantContext>, ApiError> {
    state
        .tenants
        .get_tenant_context(tenant)
        .map_err(|_| ApiError::UnknownTenant)
}
