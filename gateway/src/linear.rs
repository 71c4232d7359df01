//! `POST /webhooks/linear/{tenant}`: `Linear-Signature` (hex HMAC-SHA256), a `webhookTimestamp`
//! within 60 s of now, `Linear-Delivery` dedupe; Issue, Comment and Project changes become
//! `linear.activity` jobs.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use onomancer_shared::NewJob;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::{read_body, require_json};
use crate::error::ApiError;
use crate::extract::JsonPath;
use crate::signature::HmacCheck;
use crate::startup::{LINEAR_DEADLINE, SMALL_BODY_LIMIT};
use crate::state::AppState;
use crate::{header_str, tenant_for_webhook, valid_delivery_id};
use onomancer_shared::payloads::{bounded_body, LinearActivityJob, PAYLOAD_VERSION};

/// Deliveries stamped further than this from now are refused (replay protection).
pub const MAX_CLOCK_SKEW_MS: i64 = 60_000;

/// The entity types that become jobs.
const HANDLED: &[&str] = &["Issue", "Comment", "Project"];

/// A Linear webhook body (only the fields used).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinearWebhook {
    /// `create`, `update`, `remove`.
    pub action: String,
    /// `Issue`, `Comment`, `Project`, ...
    #[serde(rename = "type")]
    pub entity: String,
    /// The entity.
    #[serde(default)]
    pub data: LinearData,
    /// Previous values of changed fields (updates).
    #[serde(default)]
    pub updated_from: Option<BTreeMap<String, Value>>,
    /// Link to the entity.
    pub url: Option<String>,
    /// Who acted.
    pub actor: Option<Actor>,
    /// When the change happened.
    pub created_at: Option<String>,
    /// When Linear sent the delivery, ms since the epoch.
    pub webhook_timestamp: i64,
    /// The webhook's id.
    pub webhook_id: Option<String>,
}

/// The entity fields used.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinearData {
    /// Entity id.
    pub id: Option<String>,
    /// `ENG-123` (issues).
    pub identifier: Option<String>,
    /// Issue title.
    pub title: Option<String>,
    /// Project name.
    pub name: Option<String>,
    /// Comment body.
    pub body: Option<String>,
    /// Issue or project description (markdown).
    pub description: Option<String>,
    /// Issue or project labels.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// Link.
    pub url: Option<String>,
    /// Issue team.
    pub team: Option<Team>,
    /// Issue state.
    pub state: Option<WorkflowState>,
    /// The issue a comment belongs to.
    pub issue: Option<Box<LinearData>>,
}

/// A label.
#[derive(Debug, Deserialize)]
pub struct Label {
    /// Label name (`decision` marks a decision).
    pub name: String,
}

/// A team reference.
#[derive(Debug, Deserialize)]
pub struct Team {
    /// Team key (`ENG`).
    pub key: Option<String>,
}

/// A workflow state reference.
#[derive(Debug, Deserialize)]
pub struct WorkflowState {
    /// State name.
    pub name: Option<String>,
}

/// The actor.
#[derive(Debug, Deserialize)]
pub struct Actor {
    /// Display name.
    pub name: Option<String>,
}

impl LinearWebhook {
    /// The job for this delivery.
    pub fn into_job(self, delivery: &str) -> LinearActivityJob {
        let d = self.data;
        let issue = d.issue.as_deref();
        let first_line = |s: &str| s.lines().next().unwrap_or("").chars().take(200).collect();
        let title = d
            .title
            .clone()
            .or_else(|| d.name.clone())
            .or_else(|| issue.and_then(|i| i.title.clone()))
            .or_else(|| d.body.as_deref().map(first_line));
        let team = d
            .team
            .as_ref()
            .and_then(|t| t.key.clone())
            .or_else(|| {
                issue
                    .and_then(|i| i.team.as_ref())
                    .and_then(|t| t.key.clone())
            })
            .or_else(|| {
                d.identifier
                    .as_deref()
                    .or(issue.and_then(|i| i.identifier.as_deref()))
                    .and_then(|id| id.split_once('-').map(|(k, _)| k.to_owned()))
            });
        LinearActivityJob {
            v: PAYLOAD_VERSION,
            delivery: delivery.to_owned(),
            action: self.action,
            entity: self.entity,
            id: d.id,
            identifier: d
                .identifier
                .or_else(|| issue.and_then(|i| i.identifier.clone())),
            title,
            team,
            state: d.state.and_then(|s| s.name),
            url: self.url.or(d.url),
            actor: self.actor.and_then(|a| a.name),
            changed: self
                .updated_from
                .map(|m| m.into_keys().collect())
                .unwrap_or_default(),
            created_at: self.created_at,
            body: bounded_body(d.body.or(d.description)),
            labels: d.labels.into_iter().map(|l| l.name).collect(),
        }
    }
}

/// The webhook handler.
#[tracing::instrument(name = "linear_webhook", skip_all, fields(tenant = %tenant, delivery))]
pub async fn webhook(
    State(state): State<AppState>,
    JsonPath(tenant): JsonPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let tenant = tenant_for_webhook(&state, &tenant)?;
    let secret = tenant
        .credentials
        .linear_webhook_secret
        .as_ref()
        .ok_or(ApiError::Unauthorized)?;
    let mut check = HmacCheck::linear(secret, header_str(&headers, "linear-signature"))?;
    require_json(&headers, false, "Linear sends JSON")?;
    let body = read_body(
        &state,
        &headers,
        body,
        SMALL_BODY_LIMIT,
        LINEAR_DEADLINE,
        |chunk| check.update(chunk),
    )
    .await?;
    check.verify()?;

    let de = &mut serde_json::Deserializer::from_slice(&body);
    let hook: LinearWebhook = serde_path_to_error::deserialize(de).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid Linear payload: {}: {}",
            e.path(),
            e.inner()
        ))
    })?;
    let skew = (chrono::Utc::now().timestamp_millis() - hook.webhook_timestamp).abs();
    if skew > MAX_CLOCK_SKEW_MS {
        tracing::warn!(skew_ms = skew, "stale Linear delivery refused");
        return Err(ApiError::Unauthorized);
    }
    let delivery = match header_str(&headers, "linear-delivery") {
        Some(d) if valid_delivery_id(d) => d.to_owned(),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "malformed Linear-Delivery header".into(),
            ))
        }
        // Older deliveries lack the header: the webhook id and timestamp identify one.
        None => format!(
            "{}-{}",
            hook.webhook_id
                .as_deref()
                .filter(|w| valid_delivery_id(w))
                .unwrap_or("hook"),
            hook.webhook_timestamp
        ),
    };
    tracing::Span::current().record("delivery", delivery.as_str());

    if !HANDLED.contains(&hook.entity.as_str()) {
        // Ignored deliveries count against the rate too.
        state.check_rate(&tenant).await?;
        state.metrics.webhook("linear", "other", "ignored");
        return Ok((
            StatusCode::OK,
            Json(json!({"ok": true, "ignored": hook.entity})),
        )
            .into_response());
    }
    let entity = hook.entity.clone();
    let job = hook.into_job(&delivery);
    let new =
        NewJob::new(tenant.tenant_id.clone(), &job).idempotency_key(format!("linear:{delivery}"));
    let e = &state.admit_and_enqueue(&tenant, new).await?;
    state.metrics.webhook(
        "linear",
        &entity,
        if e.created { "enqueued" } else { "duplicate" },
    );
    Ok((
        StatusCode::OK,
        Json(json!({"ok": true, "duplicate": !e.created, "job_id": e.id.as_str()})),
    )
        .into_response())
}
