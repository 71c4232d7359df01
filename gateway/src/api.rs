//! The tenant REST API (`/v1`): create transforms, read job status and usage. Callers
//! authenticate with one of their tenant's API keys as a bearer token.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use onomancer_shared::decisions::DecisionStore;
use onomancer_shared::tenant::TenantContext;
use onomancer_shared::{JobId, NewJob};
use serde::Deserialize;
use serde_json::json;

use crate::body::{read_body, require_json};
use crate::error::{rfc3339, ApiError};
use crate::extract::{JsonPath, JsonQuery};
use crate::startup::{DEFAULT_DEADLINE, SMALL_BODY_LIMIT};
use crate::state::{transform_quota, AppState};
use crate::{header_str, valid_delivery_id};
use onomancer_shared::payloads::PAYLOAD_VERSION;
use onomancer_shared::transform_job::{DocumentSource, Origin, TransformJob};

/// The tenant behind the request's bearer key.
pub struct ApiTenant(pub Arc<TenantContext>);

impl FromRequestParts<AppState> for ApiTenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = header_str(&parts.headers, "authorization")
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let tenant = state
            .tenants
            .by_api_key(bearer)
            .ok_or(ApiError::Unauthorized)?;
        tracing::Span::current().record("tenant", tenant.tenant_id.as_str());
        Ok(ApiTenant(tenant))
    }
}

/// `POST /v1/transforms` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformRequest {
    /// The document inline.
    pub text: Option<String>,
    /// Or a link to it.
    pub url: Option<String>,
    /// Personas (default: the tenant's).
    #[serde(default)]
    pub personas: Vec<String>,
    /// Product key.
    pub product: Option<String>,
}

/// `POST /v1/transforms` -> 202 `{ "job_id": .. }`. The bearer key (an extractor, run before
/// this) and the JSON content type are checked before the body is read.
#[tracing::instrument(name = "api_transform", skip_all, fields(tenant))]
pub async fn create_transform(
    State(state): State<AppState>,
    ApiTenant(tenant): ApiTenant,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("tenant", tenant.tenant_id.as_str());
    require_json(&headers, true, "the body is a JSON object")?;
    let body = read_body(
        &state,
        &headers,
        body,
        SMALL_BODY_LIMIT,
        DEFAULT_DEADLINE,
        |_| {},
    )
    .await?;
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let req: TransformRequest = serde_path_to_error::deserialize(de)
        .map_err(|e| ApiError::BadRequest(format!("invalid body: {}: {}", e.path(), e.inner())))?;
    let source = match (req.text, req.url) {
        (Some(text), None) if !text.trim().is_empty() => DocumentSource::Text { text },
        (None, Some(url)) => {
            let parsed = url::Url::parse(&url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("url: {url:?} is not an http(s) URL"))
                })?;
            DocumentSource::Url {
                url: parsed.to_string(),
            }
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give either text or url, not both".into(),
            ))
        }
        _ => {
            return Err(ApiError::BadRequest(
                "text or url is required (text must not be empty)".into(),
            ))
        }
    };
    let mut personas = Vec::new();
    for (i, p) in req.personas.iter().enumerate() {
        let p = onomancer_shared::Persona::parse(p)
            .map_err(|e| ApiError::BadRequest(format!("personas[{i}]: {e}")))?;
        personas.push(p.as_str().to_owned());
    }
    if let Some(product) = &req.product {
        if !tenant.config.products.is_empty() && !tenant.config.products.contains_key(product) {
            return Err(ApiError::BadRequest(format!(
                "product: {product:?} is not one of this tenant's products"
            )));
        }
    }
    let idempotency = match header_str(&headers, "idempotency-key") {
        Some(k) if valid_delivery_id(k) => Some(k.to_owned()),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "Idempotency-Key: 1 to 128 letters, digits, '-', '_' or '.'".into(),
            ))
        }
        None => None,
    };

    state.check_rate(&tenant).await?;
    let now = Utc::now();
    state.consume_transform(&tenant, now).await?;
    let job = TransformJob {
        v: PAYLOAD_VERSION,
        source,
        personas,
        product: req.product,
        origin: Origin::Api,
        user: None,
        title: None,
    };
    let mut new = NewJob::new(tenant.tenant_id.clone(), &job);
    if let Some(k) = idempotency {
        new = new.idempotency_key(format!("api:{k}"));
    }
    let done = state
        .enqueue_with_refund(&tenant, vec![new], Some((0, now)))
        .await?;
    let id = done[0].id.as_str();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job_id": id, "status_url": format!("/v1/jobs/{id}"), "created": done[0].created})),
    )
        .into_response())
}

/// `GET /v1/jobs/{id}`: the caller's job, or 404 (also for other tenants' jobs).
#[tracing::instrument(name = "api_job", skip_all, fields(tenant))]
pub async fn job_status(
    State(state): State<AppState>,
    ApiTenant(tenant): ApiTenant,
    JsonPath(id): JsonPath<String>,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("tenant", tenant.tenant_id.as_str());
    state.check_rate(&tenant).await?;
    let id = JobId::parse(&id).map_err(|_| ApiError::NotFound)?;
    let status = state
        .queue
        .status(&tenant.tenant_id, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(status).into_response())
}

/// `GET /v1/usage` query.
#[derive(Debug, Deserialize)]
pub struct UsageQuery {
    /// Start, RFC 3339 or `YYYY-MM-DD` (default: the first of this month).
    pub from: Option<String>,
    /// End, exclusive (default: now).
    pub to: Option<String>,
}

fn parse_time(name: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Utc.from_utc_datetime(&d))
        .ok_or_else(|| {
            ApiError::BadRequest(format!("{name}: {v:?} is neither RFC 3339 nor YYYY-MM-DD"))
        })
}

/// `GET /v1/usage?from=&to=`: usage over the range, plus quota used and left now.
#[tracing::instrument(name = "api_usage", skip_all, fields(tenant))]
pub async fn usage(
    State(state): State<AppState>,
    ApiTenant(tenant): ApiTenant,
    JsonQuery(q): JsonQuery<UsageQuery>,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("tenant", tenant.tenant_id.as_str());
    state.check_rate(&tenant).await?;
    let now = Utc::now();
    let from = match q.from.as_deref() {
        Some(v) => parse_time("from", v)?,
        None => onomancer_shared::admission::Periods::at(now).month_started_at,
    };
    let to = match q.to.as_deref() {
        Some(v) => parse_time("to", v)?,
        None => now,
    };
    if from >= to {
        return Err(ApiError::BadRequest("from must be before to".into()));
    }
    let quota = state
        .admission
        .quota_usage(&tenant.tenant_id, transform_quota(&tenant.quotas), now)
        .await?;
    let mut body = json!({
        "tenant": tenant.tenant_id.as_str(),
        "tier": tenant.tier,
        "from": rfc3339(from),
        "to": rfc3339(to),
        "quota": quota,
    });
    match &state.usage {
        Some(store) => {
            let summary = store
                .summary(&tenant.tenant_id, from, to)
                .await
                .map_err(|e| ApiError::Unavailable(e.to_string()))?;
            let total_input = summary.tokens.total_input();
            body["prompt_cache_hit_rate"] = if total_input == 0 {
                serde_json::Value::Null
            } else {
                json!(summary.tokens.cache_read as f64 / total_input as f64)
            };
            body["usage"] =
                serde_json::to_value(&summary).map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        None => body["usage"] = serde_json::Value::Null,
    }
    Ok(Json(body).into_response())
}

/// Most decisions one `GET /v1/decisions` returns.
pub const MAX_DECISIONS: usize = 50;

/// `GET /v1/decisions` query.
#[derive(Debug, Deserialize)]
pub struct DecisionsQuery {
    /// What to look for (absent or blank: the latest decisions).
    pub q: Option<String>,
    /// How many, 1 to [`MAX_DECISIONS`] (default 10).
    pub limit: Option<usize>,
}

/// `GET /v1/decisions?q=&limit=`: the tenant's recorded decisions best matching `q`, each with
/// its link for citing. The search `/decisions` runs, without Claude's summary (the gateway never
/// calls Claude).
#[tracing::instrument(name = "api_decisions", skip_all, fields(tenant))]
pub async fn decisions(
    State(state): State<AppState>,
    ApiTenant(tenant): ApiTenant,
    JsonQuery(q): JsonQuery<DecisionsQuery>,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("tenant", tenant.tenant_id.as_str());
    let limit = q.limit.unwrap_or(10);
    if !(1..=MAX_DECISIONS).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_DECISIONS}"
        )));
    }
    state.check_rate(&tenant).await?;
    let store = state
        .usage
        .as_ref()
        .map(|u| DecisionStore::new(u.database().clone()))
        .ok_or_else(|| ApiError::Unavailable("no database: decisions cannot be read".into()))?;
    let query = q.q.as_deref().unwrap_or("").trim();
    let found = store
        .search(&tenant.tenant_id, query, limit)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let decisions: Vec<serde_json::Value> = found
        .iter()
        .map(|d| {
            let id = d.id;
            let d = &d.decision;
            json!({
                "id": id,
                "source": d.source.as_str(),
                "title": d.title,
                "text": d.text,
                "url": d.url,
                "author": d.author,
                "decided_at": rfc3339(d.decided_at),
            })
        })
        .collect();
    Ok(Json(json!({
        "tenant": tenant.tenant_id.as_str(),
        "query": query,
        "decisions": decisions,
    }))
    .into_response())
}
