//! Administration: `onomancer discord register`, `onomancer secret encrypt`, `onomancer usage`.

use anyhow::{bail, Context};
use chrono::{DateTime, Datelike, TimeZone, Utc};
use clap::Subcommand;
use onomancer_shared::db::Database;
use onomancer_shared::integrations::discord::{DiscordConfig, DiscordPoster};
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::{encrypt_secret, TenantRegistry};
use onomancer_shared::usage::UsageStore;
use onomancer_shared::RedisConn;

/// Discord administration.
#[derive(Subcommand, Debug)]
pub enum DiscordCommand {
    /// Registers the slash commands (/transform, /digest, /decisions, /usage, /status, /help).
    Register {
        /// Register in one guild (instant; for testing) instead of globally (up to an hour).
        #[arg(long)]
        guild: Option<u64>,
    },
}

/// Secret handling.
#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Encrypts a credential with ONOMANCER_MASTER_KEY for a tenant file
    /// (`{"encrypted": "v1:..."}`). Reads the secret from standard input.
    Encrypt,
}

/// Runs a Discord command.
pub async fn discord(settings: Settings, cmd: DiscordCommand) -> anyhow::Result<()> {
    let DiscordCommand::Register { guild } = cmd;
    // Registering commands posts to no channel: Discord's documented limits do.
    let config = DiscordConfig::from_settings(&settings, &Default::default())
        .context("DISCORD_BOT_TOKEN and DISCORD_APPLICATION_ID must be set to register commands")?;
    let conn = RedisConn::connect(&settings.redis_url)
        .await
        .context("connecting to Redis")?;
    let poster = DiscordPoster::new(config, conn, settings.key_space())?;
    let created = onomancer_gateway::discord::commands::register_commands(
        poster.http(),
        guild.map(serenity::all::GuildId::new),
    )
    .await
    .context("registering commands with Discord")?;
    let names: Vec<String> = created.iter().map(|c| format!("/{}", c.name)).collect();
    match guild {
        Some(g) => println!("registered {} in guild {g}", names.join(", ")),
        None => println!(
            "registered {} globally (may take up to an hour to appear)",
            names.join(", ")
        ),
    }
    Ok(())
}

/// Runs a secret command.
pub async fn secret(settings: Settings, cmd: SecretCommand) -> anyhow::Result<()> {
    let SecretCommand::Encrypt = cmd;
    let Some(master) = settings.master_key.as_ref() else {
        bail!("ONOMANCER_MASTER_KEY is not set");
    };
    let mut plaintext = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut plaintext)?;
    let plaintext = plaintext.trim_end_matches(['\n', '\r']);
    if plaintext.is_empty() {
        bail!("nothing to encrypt: pipe the secret on standard input");
    }
    println!(
        "{{\"encrypted\": \"{}\"}}",
        encrypt_secret(master, plaintext)
    );
    Ok(())
}

fn parse_day(s: &str) -> anyhow::Result<DateTime<Utc>> {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("{s:?} is not a date like 2026-11-01"))?;
    Ok(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight")))
}

/// `onomancer usage`: a tenant's usage and estimated cost for a period (default: this month).
pub async fn usage(
    settings: Settings,
    tenant: Option<String>,
    from: Option<String>,
    to: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let tenants =
        TenantRegistry::load(&settings.config_dir).context("loading tenant configuration")?;
    let ctx = match tenant {
        Some(t) => tenants.get_tenant_context(&t)?,
        None => tenants.default_tenant(),
    };
    let now = Utc::now();
    let from = match from {
        Some(f) => parse_day(&f)?,
        None => Utc
            .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
            .single()
            .expect("valid"),
    };
    let to = match to {
        Some(t) => parse_day(&t)?,
        None => now,
    };
    let db = Database::open(&settings.database_url)
        .await
        .context("opening the database")?;
    let summary = UsageStore::new(db)
        .summary(&ctx.tenant_id, from, to)
        .await?;
    if json {
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    let t = &summary.tokens;
    println!(
        "tenant {}  {} .. {}",
        summary.tenant,
        from.format("%Y-%m-%d"),
        to.format("%Y-%m-%d %H:%M")
    );
    println!(
        "transforms: {}   api calls: {}",
        summary.transforms, summary.api_calls
    );
    println!(
        "tokens: input {}  output {}  cache writes {}  cache reads {}",
        t.input, t.output, t.cache_creation, t.cache_read
    );
    println!("estimated cost: ${}", summary.estimated_cost);
    for op in &summary.by_operation {
        println!("  {:<12} ${}", op.operation, op.estimated_cost);
    }
    Ok(())
}
