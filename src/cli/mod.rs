//! Command-line parsing and dispatch.

mod admin;
mod bench;
mod queue_ops;
mod roles;
mod transform;

use clap::{Parser, Subcommand};
use onomancer_shared::settings::Settings;

/// Onomancer: documents and GitHub/Linear activity, written for every audience.
#[derive(Parser, Debug)]
#[command(name = "onomancer", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the gateway, a worker and the scheduler in one process (the single-machine default).
    Up,
    /// Runs only the gateway (HTTP: webhooks, Discord interactions, REST API).
    Gateway,
    /// Runs only a worker.
    Worker,
    /// Runs only the scheduler.
    Scheduler,
    /// Queue inspection.
    Queue {
        #[command(subcommand)]
        command: queue_ops::QueueCommand,
    },
    /// Dead-letter stream: list and replay.
    Dlq {
        #[command(subcommand)]
        command: queue_ops::DlqCommand,
    },
    /// Discord administration (command registration).
    Discord {
        #[command(subcommand)]
        command: admin::DiscordCommand,
    },
    /// Encrypts tenant credentials with ONOMANCER_MASTER_KEY.
    Secret {
        #[command(subcommand)]
        command: admin::SecretCommand,
    },
    /// A tenant's usage and estimated cost (default: the default tenant, this month).
    Usage {
        /// Tenant id (default: the default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// First day, inclusive (YYYY-MM-DD; default: the 1st of this month).
        #[arg(long)]
        from: Option<String>,
        /// Last day, exclusive (YYYY-MM-DD; default: now).
        #[arg(long)]
        to: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Writes a document for each persona through the queue (`--dry-run`: estimate only).
    Transform(transform::TransformArgs),
    /// Benchmarks against the configured Redis (isolated keys, cleaned up afterwards).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

/// Runs a parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    match cli.command {
        Command::Up => roles::up(settings).await,
        Command::Gateway => roles::gateway(settings).await,
        Command::Worker => roles::worker(settings).await,
        Command::Scheduler => roles::scheduler(settings).await,
        Command::Queue { command } => queue_ops::queue(settings, command).await,
        Command::Transform(args) => transform::run(settings, args).await,
        Command::Dlq { command } => queue_ops::dlq(settings, command).await,
        Command::Bench { command } => bench::run(settings, command).await,
        Command::Discord { command } => admin::discord(settings, command).await,
        Command::Secret { command } => admin::secret(settings, command).await,
        Command::Usage {
            tenant,
            from,
            to,
            json,
        } => admin::usage(settings, tenant, from, to, json).await,
    }
}
