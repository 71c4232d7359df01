//! `POST /webhooks/github/{tenant}`: verify, dedupe on `X-GitHub-Delivery`, classify, admit and
//! enqueue. GitHub never retries on its own, so an accepted delivery is always stored first.
//!
//! The tenant and a well-formed `X-Hub-Signature-256` are required before the body is read; the
//! body is then streamed into the HMAC under the 25 MB limit.

pub mod events;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use onomancer_shared::NewJob;
use serde_json::json;

use crate::body::{read_body, require_json};
use crate::error::ApiError;
use crate::extract::JsonPath;
use crate::signature::HmacCheck;
use crate::startup::{DEFAULT_DEADLINE, GITHUB_BODY_LIMIT};
use crate::state::AppState;
use crate::{header_str, tenant_for_webhook, valid_delivery_id};
use events::{classify, Classified};

/// Bodies above this are parsed on the blocking pool so a 25 MB payload never stalls the
/// reactor.
const INLINE_PARSE_LIMIT: usize = 256 * 1024;

/// The webhook handler.
#[tracing::instrument(name = "github_webhook", skip_all, fields(tenant = %tenant, delivery, event))]
pub async fn webhook(
    State(state): State<AppState>,
    JsonPath(tenant): JsonPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let tenant = tenant_for_webhook(&state, &tenant)?;
    let secret = tenant
        .credentials
        .github_webhook_secret
        .as_ref()
        .ok_or(ApiError::Unauthorized)?;
    let mut check = HmacCheck::github(secret, header_str(&headers, "x-hub-signature-256"))?;
    require_json(
        &headers,
        false,
        "set the webhook's content type to application/json",
    )?;
    let body = read_body(
        &state,
        &headers,
        body,
        GITHUB_BODY_LIMIT,
        DEFAULT_DEADLINE,
        |chunk| check.update(chunk),
    )
    .await?;
    check.verify()?;

    let event = header_str(&headers, "x-github-event")
        .ok_or_else(|| ApiError::BadRequest("missing X-GitHub-Event header".into()))?
        .to_owned();
    let delivery = header_str(&headers, "x-github-delivery")
        .filter(|d| valid_delivery_id(d))
        .ok_or_else(|| {
            ApiError::BadRequest("missing or malformed X-GitHub-Delivery header".into())
        })?
        .to_owned();
    let span = tracing::Span::current();
    span.record("delivery", delivery.as_str());
    span.record("event", event.as_str());

    // No request-rate refusal here: GitHub never retries a delivery on its own, so a 429 would
    // lose the event. Deliveries are bounded by repository activity, and transforms created by
    // pushes still consume the tenant's transform quota.

    let classified = {
        let large = body.len() > INLINE_PARSE_LIMIT;
        let (event, delivery, tenant) = (event.clone(), delivery.clone(), tenant.clone());
        let run = move || {
            classify(&event, &delivery, &body, |p| {
                tenant.config.github.is_document(p)
            })
        };
        if large {
            tokio::task::spawn_blocking(run)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
        } else {
            run()
        }
    }
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;

    let tid = tenant.tenant_id.clone();
    let key = |job: &str| format!("github:{delivery}:{job}");
    let (jobs, transform_at) = match classified {
        Classified::Ping => {
            state.metrics.webhook("github", "ping", "ping");
            return Ok((StatusCode::OK, Json(json!({"ok": true, "event": "ping"}))).into_response());
        }
        Classified::Ignored => {
            state.metrics.webhook("github", &event, "ignored");
            return Ok(
                (StatusCode::OK, Json(json!({"ok": true, "ignored": event}))).into_response(),
            );
        }
        Classified::BuildStatus(job) => (
            vec![NewJob::new(tid, &job).idempotency_key(key("build_status"))],
            None,
        ),
        Classified::Activity(activity, transform) => {
            let mut jobs =
                vec![NewJob::new(tid.clone(), &*activity).idempotency_key(key("activity"))];
            let mut transform_at = None;
            if let Some(t) = transform {
                let now = Utc::now();
                match state.consume_transform(&tenant, now).await {
                    Ok(_) => {
                        transform_at = Some((jobs.len(), now));
                        jobs.push(NewJob::new(tid, &t).idempotency_key(key("transform")));
                    }
                    // The activity is still recorded: refusing the delivery would lose it
                    // (GitHub does not retry). The refusal is counted in the metrics.
                    Err(ApiError::QuotaExceeded { limit, .. }) => {
                        tracing::warn!(
                            limit,
                            "push touched documents but the transform quota is spent"
                        );
                    }
                    Err(e) => return Err(e),
                }
            }
            (jobs, transform_at)
        }
    };
    let done = state
        .enqueue_with_refund(&tenant, jobs, transform_at)
        .await?;
    let created = done.iter().any(|e| e.created);
    state.metrics.webhook(
        "github",
        &event,
        if created { "enqueued" } else { "duplicate" },
    );
    let jobs: Vec<_> = done
        .iter()
        .map(|e| json!({"id": e.id.as_str(), "created": e.created}))
        .collect();
    Ok((
        if created {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        },
        Json(json!({"ok": true, "duplicate": !created, "jobs": jobs})),
    )
        .into_response())
}
