//! `onomancer bench lanes`: `--tenants` tenants with a backlog of long bulk jobs saturating every
//! slot bulk may use, then interactive and default jobs arriving at a steady pace; the wait
//! (enqueue to start) of each lane's jobs. `--no-reserve` runs the same without reserved slots,
//! to show what the reserves buy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use onomancer_shared::queue::{Queue, QueueConfig, ReservedShare};
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::Defaults;
use onomancer_shared::Lane;

use super::{percentile_ms, probe_job, tenants, BenchHandler, Workers};

/// Options of `onomancer bench lanes`.
#[derive(Args, Debug)]
pub struct LanesArgs {
    /// Worker runtimes.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Jobs in flight per worker.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Tenants with a bulk backlog.
    #[arg(long, default_value_t = 10)]
    tenants: usize,
    /// Run time of each bulk job, ms.
    #[arg(long, default_value_t = 2000)]
    bulk_ms: u64,
    /// Interactive jobs (and as many default jobs) arriving.
    #[arg(long, default_value_t = 100)]
    arrivals: usize,
    /// Time between two arrivals of a lane, ms.
    #[arg(long, default_value_t = 100)]
    every_ms: u64,
    /// No reserved slots (every lane may use every slot), for comparison.
    #[arg(long)]
    no_reserve: bool,
}

fn lane_figures(handler: &BenchHandler, lane: Lane) -> serde_json::Value {
    let w = handler.waits(lane);
    serde_json::json!({
        "samples": w.len(),
        "p50_ms": percentile_ms(&w, 0.50),
        "p99_ms": percentile_ms(&w, 0.99),
        "max_ms": percentile_ms(&w, 1.0),
    })
}

pub async fn measure(
    settings: &Settings,
    queue: &Queue,
    a: &LanesArgs,
) -> anyhow::Result<serde_json::Value> {
    let defaults = Defaults::load(&settings.config_dir)?;
    let mut config = QueueConfig::from(&defaults.queue).with_settings(settings);
    if a.no_reserve {
        config.reserved = ReservedShare::NONE;
    }
    let (ri, rd) = config.reserved.slots(a.concurrency);
    let bulk_slots = a.workers * (a.concurrency - ri - rd);
    // Enough bulk work to keep every bulk slot busy through the arrivals, and then some.
    let span_ms = a.arrivals as u64 * a.every_ms + 2 * a.bulk_ms;
    let backlog = bulk_slots * (span_ms.div_ceil(a.bulk_ms.max(1)) as usize + 1);
    let tenants = tenants(a.tenants);
    let bulk: Vec<_> = (0..backlog)
        .map(|i| probe_job(&tenants[i % tenants.len()], Lane::Bulk, a.bulk_ms))
        .collect();
    for chunk in bulk.chunks(1000) {
        queue.enqueue_many(chunk.to_vec()).await?;
    }
    let handler = Arc::new(BenchHandler::default());
    let workers = Workers::start(
        settings,
        queue.keys(),
        &config,
        &handler,
        a.workers,
        a.concurrency,
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while handler.waits(Lane::Bulk).len() < bulk_slots && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Arrivals at a steady pace, interactive and default alternating, tenants in turn.
    let mut tick = tokio::time::interval(Duration::from_millis(a.every_ms.max(1)));
    for i in 0..a.arrivals {
        tick.tick().await;
        let tenant = &tenants[i % tenants.len()];
        queue
            .enqueue_many(vec![
                probe_job(tenant, Lane::Interactive, 0),
                probe_job(tenant, Lane::Default, 0),
            ])
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while (handler.waits(Lane::Interactive).len() < a.arrivals
        || handler.waits(Lane::Default).len() < a.arrivals)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let out = serde_json::json!({
        "workers": a.workers,
        "concurrency": a.concurrency,
        "reserved_interactive": ri,
        "reserved_default": rd,
        "bulk_slots": bulk_slots,
        "bulk_ms": a.bulk_ms,
        "tenants": tenants.len(),
        "interactive": lane_figures(&handler, Lane::Interactive),
        "default": lane_figures(&handler, Lane::Default),
    });
    workers.stop().await?;
    Ok(out)
}
