//! `onomancer queue stats`, `onomancer dlq list`, `onomancer dlq replay <id>|--all`.

use anyhow::Context;
use clap::Subcommand;
use onomancer_shared::queue::{Queue, QueueConfig};
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::Defaults;
use onomancer_shared::TenantId;

/// Queue inspection commands.
#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// Depth per lane (queued, pending, kept), delayed jobs and dead letters.
    Stats {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Dead-letter commands.
#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// Lists dead letters, oldest first.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Puts dead letters back in their lanes with a fresh attempt budget.
    Replay {
        /// A job id or dead-letter entry id.
        id: Option<String>,
        /// Replay every dead letter.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

async fn connect(settings: &Settings) -> anyhow::Result<Queue> {
    let defaults = Defaults::load(&settings.config_dir)?;
    let config = QueueConfig::from(&defaults.queue);
    Queue::connect(
        &settings.redis_url,
        settings.key_space(),
        config,
        &prometheus::Registry::new(),
    )
    .await
    .context("connecting to Redis")
}

/// Runs a queue command.
pub async fn queue(settings: Settings, cmd: QueueCommand) -> anyhow::Result<()> {
    let q = connect(&settings).await?;
    match cmd {
        QueueCommand::Stats { json } => {
            let s = q.stats().await?;
            if json {
                println!("{}", serde_json::to_string(&s)?);
                return Ok(());
            }
            println!(
                "{:<12} {:>10} {:>10} {:>10} {:>8}",
                "lane", "queued", "pending", "kept", "tenants"
            );
            for l in &s.lanes {
                println!(
                    "{:<12} {:>10} {:>10} {:>10} {:>8}",
                    l.lane, l.queued, l.pending, l.length, l.tenants
                );
            }
            println!("delayed: {}   dead letters: {}", s.delayed, s.dead);
        }
    }
    Ok(())
}

/// Runs a dead-letter command.
pub async fn dlq(settings: Settings, cmd: DlqCommand) -> anyhow::Result<()> {
    let q = connect(&settings).await?;
    match cmd {
        DlqCommand::List {
            tenant,
            limit,
            json,
        } => {
            let tenant = tenant.map(|t| TenantId::parse(&t)).transpose()?;
            let list = q.dlq_list(tenant.as_ref(), limit).await?;
            if list.is_empty() && !json {
                println!("the dead-letter stream is empty");
            }
            for d in list {
                if json {
                    println!("{}", serde_json::to_string(&d)?);
                } else {
                    println!(
                        "{}  job {}  tenant {}  kind {}  attempts {}  reason: {}",
                        d.entry_id, d.job_id, d.tenant, d.kind, d.attempts, d.reason
                    );
                }
            }
        }
        DlqCommand::Replay {
            id: Some(id),
            all: false,
        } => {
            if q.dlq_replay(&id).await? {
                println!("replayed {id}");
            } else {
                anyhow::bail!("{id} is not a replayable dead letter (unknown id, or its payload cannot be decoded)");
            }
        }
        DlqCommand::Replay { all: true, .. } => {
            let (done, left) = q.dlq_replay_all().await?;
            println!("replayed {done}; left {left} that cannot be decoded");
        }
        DlqCommand::Replay {
            id: None,
            all: false,
        } => {
            anyhow::bail!("give a job id to replay, or --all");
        }
    }
    Ok(())
}
