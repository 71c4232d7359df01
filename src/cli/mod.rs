//! Command-line parsing and dispatch.

mod bench;
mod queue_ops;
mod roles;

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
        Command::Dlq { command } => queue_ops::dlq(settings, command).await,
        Command::Bench { command } => bench::run(settings, command).await,
    }
}
