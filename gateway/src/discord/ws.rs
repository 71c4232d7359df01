//! Websocket mode (`DISCORD_INTERACTIONS=gateway`), for deployments without a public URL: the
//! gateway opens Discord's Gateway with `DISCORD_BOT_TOKEN` (serenity's client, the non-privileged
//! `GUILDS` intent) and receives interactions there instead of on `POST /discord/interactions`.
//! Each one goes through the same [`respond`](super::respond) as the HTTP endpoint, and the body
//! that endpoint would have answered is sent to Discord's interaction callback instead.
//!
//! Discord delivers an application's interactions either over HTTP or over the Gateway, never
//! both. Run websocket mode in one gateway process: a second session would receive the same
//! interactions; its job would be deduplicated (`discord:<interaction id>`) and its callback
//! refused by Discord as already acknowledged, so nothing breaks, but nothing is gained.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use onomancer_shared::integrations::discord::DiscordConfig;
use serde_json::Value;
use serenity::all::{
    ClientBuilder, Context, EventHandler, GatewayIntents, Interaction as GatewayInteraction, Ready,
};
use tokio_util::sync::CancellationToken;

use super::interaction::{ephemeral, Interaction};
use crate::error::ApiError;
use crate::state::AppState;

/// What a user sees when the job store is down (over HTTP, Discord shows its own failure).
pub const UNAVAILABLE: &str = "Onomancer cannot take commands right now (its job store is \
unavailable), so nothing was queued. Try again in a minute.";

/// serenity's interaction as the shared handler reads it. serenity's model serializes back to
/// Discord's wire format, except the interaction's `type`, which it keeps as the enum variant.
pub fn to_interaction(interaction: &GatewayInteraction) -> Result<Interaction, String> {
    let mut value = serde_json::to_value(interaction).map_err(|e| e.to_string())?;
    value["type"] = Value::from(u8::from(interaction.kind()));
    serde_path_to_error::deserialize(value).map_err(|e| format!("{}: {}", e.path(), e.inner()))
}

/// The metrics route of interactions received over the Gateway (HTTP ones are counted under
/// `/discord/interactions`).
pub const METRICS_ROUTE: &str = "discord-gateway";

/// The response body for an interaction received over the Gateway, and the HTTP status
/// `POST /discord/interactions` would have answered (for the metrics): what that endpoint would
/// answer, or an ephemeral message where it would answer an error status.
pub async fn reply_for(state: &AppState, interaction: &GatewayInteraction) -> (Value, u16) {
    let ix = match to_interaction(interaction) {
        Ok(ix) => ix,
        Err(e) => {
            tracing::warn!(error = %e, "a Gateway interaction does not fit the interaction model");
            let body = ephemeral("Onomancer could not read this interaction; nothing was queued.");
            return (body, 400);
        }
    };
    match super::respond(state, ix).await {
        Ok(body) => (body, 200),
        Err(ApiError::Unavailable(e)) => {
            tracing::error!(error = %e, "refusing a Gateway interaction: Redis unavailable");
            (ephemeral(UNAVAILABLE), 503)
        }
        Err(e) => {
            tracing::warn!(error = %e, "a Gateway interaction was refused");
            let body = ephemeral(&format!("This command could not be handled: {e}"));
            (body, 400)
        }
    }
}

struct Handler {
    state: AppState,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        tracing::info!(
            bot = %ready.user.name,
            guilds = ready.guilds.len(),
            "connected to Discord's Gateway: interactions arrive over the websocket"
        );
    }

    async fn interaction_create(&self, ctx: Context, interaction: GatewayInteraction) {
        let id = interaction.id();
        let started = std::time::Instant::now();
        let (body, status) = reply_for(&self.state, &interaction).await;
        let metrics = &self.state.metrics;
        metrics
            .requests
            .with_label_values(&[METRICS_ROUTE, &status.to_string()])
            .inc();
        metrics
            .duration
            .with_label_values(&[METRICS_ROUTE])
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = ctx
            .http
            .create_interaction_response(id, interaction.token(), &body, Vec::new())
            .await
        {
            // Too late (3 s), or another session answered first. A stored job still runs; its
            // reply edit fails the same way and is reported by the worker.
            tracing::warn!(interaction = %id, error = %e, "interaction callback failed");
        }
    }
}

/// Whether serenity's error means the bot token is wrong (a broken config, not an outage).
fn is_unauthorized(e: &serenity::Error) -> bool {
    match e {
        serenity::Error::Http(h) => h.status_code().is_some_and(|s| s.as_u16() == 401),
        serenity::Error::Gateway(serenity::gateway::GatewayError::InvalidAuthentication) => true,
        _ => false,
    }
}

/// Why one Gateway session ended, when it was not a shutdown.
enum SessionEnd {
    /// The session could not be built, or Discord refused the bot token: stop.
    Fatal(anyhow::Error),
    /// The connection failed (`Some`) or ended (`None`): reconnect after a pause.
    Lost(Option<serenity::Error>),
}

/// Receives interactions over Discord's Gateway until `shutdown` is cancelled. Outages reconnect
/// with a growing pause (1 s to 60 s); a rejected bot token is an error.
pub async fn run(
    config: DiscordConfig,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let session = || async {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let (http, _) = config.http().map_err(|e| SessionEnd::Fatal(e.into()))?;
        let mut client = ClientBuilder::new_with_http(http, GatewayIntents::GUILDS)
            .event_handler(Handler {
                state: state.clone(),
            })
            .await
            .map_err(|e| SessionEnd::Fatal(e.into()))?;
        let manager = client.shard_manager.clone();
        let stop = shutdown.clone();
        let watcher = tokio::spawn(async move {
            stop.cancelled().await;
            manager.shutdown_all().await;
        });
        let result = client.start().await;
        watcher.abort();
        if shutdown.is_cancelled() {
            return Ok(());
        }
        Err(match result {
            Err(e) if is_unauthorized(&e) => SessionEnd::Fatal(anyhow::anyhow!(
                "Discord refused DISCORD_BOT_TOKEN for the Gateway: {e}"
            )),
            Err(e) => SessionEnd::Lost(Some(e)),
            Ok(()) => SessionEnd::Lost(None),
        })
    };
    let stop = shutdown.clone();
    // The pause between sessions ends early at a shutdown; the next session then returns at once.
    let pause_or_stop = move |pause: Duration| {
        let stop = stop.clone();
        async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    };
    let ended = session
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_secs(1))
                .with_max_delay(Duration::from_secs(60))
                .without_max_times(),
        )
        .sleep(pause_or_stop)
        .when(|end| matches!(end, SessionEnd::Lost(_)))
        .notify(|end, pause| match end {
            SessionEnd::Lost(Some(e)) => {
                tracing::warn!(error = %e, retry_in_s = pause.as_secs(), "Discord Gateway connection failed")
            }
            SessionEnd::Lost(None) => tracing::warn!(
                retry_in_s = pause.as_secs(),
                "Discord Gateway connection ended"
            ),
            SessionEnd::Fatal(_) => {}
        })
        .await;
    match ended {
        Err(SessionEnd::Fatal(e)) => Err(e),
        // Lost sessions are retried without limit: only a shutdown ends the loop.
        Ok(()) | Err(SessionEnd::Lost(_)) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// An `INTERACTION_CREATE` payload as Discord sends it over the Gateway.
    fn gateway_command(data: Value) -> Value {
        json!({
            "id": "900000000000000101", "application_id": "555555555555555555", "type": 2,
            "data": data, "guild_id": "111111111111111111", "channel_id": "444444444444444444",
            "channel": {"id": "444444444444444444", "type": 0, "guild_id": "111111111111111111"},
            "member": {"user": {"id": "777777777777777777", "username": "ada",
                                "discriminator": "0", "global_name": "Ada", "avatar": null},
                       "roles": ["222222222222222222"], "joined_at": "2025-01-01T00:00:00.000000+00:00",
                       "deaf": false, "mute": false, "flags": 0, "permissions": "0", "pending": false},
            "token": "tok", "version": 1, "app_permissions": "0", "locale": "en-US",
            "guild_locale": "en-US", "entitlements": [],
            "authorizing_integration_owners": {"0": "111111111111111111"}, "context": 0,
            "attachment_size_limit": 10_485_760
        })
    }

    fn convert(v: Value) -> Interaction {
        let gi: GatewayInteraction = serde_json::from_value(v).unwrap();
        to_interaction(&gi).unwrap()
    }

    #[test]
    fn a_slash_command_reads_as_over_http() {
        let ix = convert(gateway_command(
            json!({"id": "1", "name": "transform", "type": 1,
            "options": [{"name": "link", "type": 3, "value": "https://example.com/prd"},
                        {"name": "file", "type": 11, "value": "999"}],
            "resolved": {"attachments": {"999": {"id": "999", "filename": "prd.md", "size": 10,
                "url": "https://cdn.discordapp.com/prd.md", "proxy_url": "https://media/prd.md",
                "content_type": "text/markdown"}}}}),
        ));
        assert_eq!(ix.kind, 2);
        assert_eq!(ix.id, "900000000000000101");
        assert_eq!(ix.token, "tok");
        assert_eq!(ix.guild_id.as_deref(), Some("111111111111111111"));
        assert_eq!(ix.user_id().as_deref(), Some("777777777777777777"));
        assert_eq!(ix.roles(), ["222222222222222222"]);
        let data = ix.data.as_ref().unwrap();
        assert_eq!((data.name.as_str(), data.kind), ("transform", 1));
        assert_eq!(data.string("link"), Some("https://example.com/prd"));
        assert_eq!(data.attachment("file").unwrap().filename, "prd.md");
    }

    #[test]
    fn a_message_command_carries_its_target() {
        let ix = convert(gateway_command(
            json!({"id": "2", "name": "Record decision",
            "type": 3, "target_id": "321",
            "resolved": {"messages": {"321": {"id": "321", "channel_id": "444444444444444444",
                "content": "Decision: ship it", "author": {"id": "8", "username": "carol",
                "discriminator": "0", "global_name": null, "avatar": null},
                "timestamp": "2026-11-18T08:30:00+00:00", "edited_timestamp": null, "tts": false,
                "mention_everyone": false, "mentions": [], "mention_roles": [],
                "attachments": [], "embeds": [], "pinned": false, "type": 0}}}}),
        ));
        let data = ix.data.as_ref().unwrap();
        assert_eq!(data.kind, 3);
        let m = data.target_message().unwrap();
        assert_eq!(m["content"], "Decision: ship it");
        assert_eq!(m["author"], "carol");
        assert_eq!(m["channel_id"], "444444444444444444");
    }
}
