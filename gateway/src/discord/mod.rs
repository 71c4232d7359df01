//! Discord interactions: PING -> PONG, slash and message commands answered with a deferred reply
//! (type 5) plus an interactive-lane job, or refused at once with an ephemeral message that says
//! why. They arrive on `POST /discord/interactions` (Ed25519-checked, here) or, in websocket mode,
//! over Discord's Gateway (`ws.rs`); both go through [`respond`].

pub mod commands;
pub mod interaction;
pub mod ws;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::Utc;
use onomancer_shared::NewJob;

use crate::body::{read_body, require_json};
use crate::error::{quota_message, rate_message, ApiError};
use crate::header_str;
use crate::signature::DiscordSignature;
use crate::startup::{DISCORD_BODY_LIMIT, DISCORD_DEADLINE};
use crate::state::AppState;
use commands::{CommandKind, CommandSpec};
use interaction::{deferred, ephemeral, pong, CommandData, Interaction, APPLICATION_COMMAND, PING};
use onomancer_shared::payloads::{DiscordCommandJob, PAYLOAD_VERSION};
use onomancer_shared::transform_job::{DocumentSource, Origin, TransformJob};
use serde_json::Value;

/// The interactions handler. The verifier and well-formed signature headers are required
/// before the body is read; Ed25519 needs the whole body, which is capped small.
#[tracing::instrument(
    name = "discord_interaction",
    skip_all,
    fields(tenant, command, interaction)
)]
pub async fn interactions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let verifier = state.discord.as_ref().ok_or(ApiError::Unauthorized)?;
    let signed = DiscordSignature::parse(
        header_str(&headers, "x-signature-ed25519"),
        header_str(&headers, "x-signature-timestamp"),
    )?;
    require_json(&headers, false, "Discord sends JSON")?;
    let body = read_body(
        &state,
        &headers,
        body,
        DISCORD_BODY_LIMIT,
        DISCORD_DEADLINE,
        |_| {},
    )
    .await?;
    verifier.verify_signed(&signed, &body).await?;
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let ix: Interaction = serde_path_to_error::deserialize(de).map_err(|e| {
        ApiError::BadRequest(format!("invalid interaction: {}: {}", e.path(), e.inner()))
    })?;
    respond(&state, ix).await.map(Json)
}

/// The response body for an authenticated interaction, however it arrived: PONG, a deferred
/// reply once its job is stored, or an ephemeral refusal saying why.
pub async fn respond(state: &AppState, ix: Interaction) -> Result<Value, ApiError> {
    match ix.kind {
        PING => Ok(pong()),
        APPLICATION_COMMAND => command(state, ix).await,
        other => Err(ApiError::BadRequest(format!(
            "interaction type {other} is not handled"
        ))),
    }
}

/// How a user invokes `spec` (`/usage`, *Record decision*).
fn shown(spec: &CommandSpec) -> String {
    match spec.kind {
        CommandKind::Slash => format!("/{}", spec.name),
        CommandKind::Message { .. } => format!("Apps → {}", spec.name),
    }
}

fn reply(content: &str) -> Result<Value, ApiError> {
    Ok(ephemeral(content))
}

async fn command(state: &AppState, ix: Interaction) -> Result<Value, ApiError> {
    let span = tracing::Span::current();
    span.record("interaction", ix.id.as_str());
    let Some(data) = ix.data.as_ref() else {
        return Err(ApiError::BadRequest(
            "command interaction without data".into(),
        ));
    };
    span.record("command", data.name.as_str());
    let Some(spec) = commands::command(&data.name, data.kind) else {
        return reply(&format!("Unknown command `{}`.", data.name));
    };
    if spec.name == "help" {
        return reply(&commands::help_text());
    }
    let Some(guild) = ix.guild_id.as_deref() else {
        return reply("Onomancer commands work inside a server that is set up for Onomancer, not in direct messages.");
    };
    let Some(tenant) = state.tenants.by_discord_guild(guild) else {
        return reply("This server is not set up for Onomancer (no tenant is configured for its server id). Ask an administrator to add it.");
    };
    span.record("tenant", tenant.tenant_id.as_str());
    if !tenant
        .config
        .discord
        .command_allowed(spec.key(), ix.roles())
    {
        return reply(&format!(
            "You lack a role allowed to run `{}` in this server; ask an administrator for one of the roles configured for it.",
            shown(spec)
        ));
    }
    let options = match spec.kind {
        CommandKind::Slash => data.options_map(),
        CommandKind::Message { .. } => {
            let Some(message) = data.target_message() else {
                return Err(ApiError::BadRequest(
                    "message command without its resolved target message".into(),
                ));
            };
            if message["content"]
                .as_str()
                .is_none_or(|c| c.trim().is_empty())
            {
                return reply("That message has no text to record as a decision.");
            }
            BTreeMap::from([("message".to_owned(), message)])
        }
    };
    // `/transform` consumes quota, which a rate-refused request must not spend: rate, quota,
    // then enqueue. Every other command counts the rate and enqueues in one call below.
    let consumes_quota = spec.name == "transform";
    if consumes_quota {
        match state.check_rate(&tenant).await {
            Ok(()) => {}
            Err(ApiError::RateLimited { retry_after }) => return reply(&rate_message(retry_after)),
            Err(e) => return Err(e),
        }
    }

    let mut transform = None;
    let mut consumed_at = None;
    if consumes_quota {
        let source = match transform_source(data) {
            Ok(s) => s,
            Err(message) => return reply(&message),
        };
        let personas = match parse_personas(data.string("personas")) {
            Ok(p) => p,
            Err(message) => return reply(&message),
        };
        let now = Utc::now();
        match state.consume_transform(&tenant, now).await {
            Ok(_) => consumed_at = Some((0, now)),
            Err(ApiError::QuotaExceeded { limit, resets_at }) => {
                return reply(&quota_message(limit, resets_at))
            }
            Err(e) => return Err(e),
        }
        let title = match &source {
            DocumentSource::DiscordAttachment { filename, .. } => Some(filename.clone()),
            _ => None,
        };
        transform = Some(TransformJob {
            v: PAYLOAD_VERSION,
            user: ix.user_id(),
            title,
            source,
            personas,
            product: data.string("product").map(str::to_owned),
            origin: Origin::Discord {
                application_id: ix.application_id.clone(),
                token: ix.token.clone(),
                channel_id: ix.channel_id.clone(),
            },
        });
    }
    let job = DiscordCommandJob {
        v: PAYLOAD_VERSION,
        interaction_id: ix.id.clone(),
        application_id: ix.application_id.clone(),
        token: ix.token.clone(),
        command: spec.key().to_owned(),
        options,
        guild_id: guild.to_owned(),
        channel_id: ix.channel_id.clone(),
        user_id: ix.user_id(),
        quota_consumed: consumed_at.is_some(),
        transform,
    };
    let new =
        NewJob::new(tenant.tenant_id.clone(), &job).idempotency_key(format!("discord:{}", ix.id));
    if consumes_quota {
        state
            .enqueue_with_refund(&tenant, vec![new], consumed_at)
            .await?;
    } else {
        match state.admit_and_enqueue(&tenant, new).await {
            Ok(_) => {}
            Err(ApiError::RateLimited { retry_after }) => return reply(&rate_message(retry_after)),
            Err(e) => return Err(e),
        }
    }
    Ok(deferred())
}

fn transform_source(data: &CommandData) -> Result<DocumentSource, String> {
    match (data.string("link"), data.attachment("file")) {
        (Some(_), Some(_)) => Err("Give either a link or a file, not both.".into()),
        (Some(link), None) => {
            let url = url_ok(link).ok_or_else(|| format!("`{link}` is not an http(s) link."))?;
            Ok(DocumentSource::Url { url })
        }
        (None, Some(a)) => Ok(DocumentSource::DiscordAttachment {
            url: a.url.clone(),
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
        }),
        (None, None) => {
            Err("`/transform` needs a document: a `link` or an attached `file`.".into())
        }
    }
}

fn url_ok(s: &str) -> Option<String> {
    let u = url::Url::parse(s).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.to_string())
}

/// Parses a comma-separated persona list (empty means the tenant's defaults).
pub fn parse_personas(list: Option<&str>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for p in list
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let p = p.to_ascii_lowercase();
        onomancer_shared::Persona::parse(&p).map_err(|e| e.to_string())?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}
