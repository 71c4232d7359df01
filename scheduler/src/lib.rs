//! The scheduler role: turns cron schedules into jobs (weekly per-persona digests) and keeps the
//! queue healthy (promotes due delayed jobs, trims acknowledged entries, publishes depth gauges).
//! Several may run; a Redis lease makes exactly one act at a time.

pub mod cron_jobs;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use onomancer_shared::queue::{Queue, QueueConfig};
use onomancer_shared::settings::Settings;
use onomancer_shared::tenant::TenantRegistry;
use tokio_util::sync::CancellationToken;

pub use cron_jobs::{DigestSchedule, DueJobs};

/// How long a leader's lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(10);

/// The scheduler's loop, testable without a process.
pub struct Scheduler {
    queue: Queue,
    instance: String,
    schedules: Vec<DigestSchedule>,
    due: DueJobs,
    /// How often upkeep runs.
    pub tick: Duration,
    /// How often trimming and depth gauges run.
    pub upkeep_every: Duration,
}

impl Scheduler {
    /// A scheduler over `queue` firing `schedules`.
    pub fn new(queue: Queue, schedules: Vec<DigestSchedule>) -> Self {
        Self {
            queue,
            instance: uuid::Uuid::new_v4().to_string(),
            schedules,
            due: DueJobs::starting_now(),
            tick: Duration::from_millis(250),
            upkeep_every: Duration::from_secs(10),
        }
    }

    /// Takes or renews leadership; true while this instance leads.
    pub async fn lead(&self) -> Result<bool, onomancer_shared::queue::QueueError> {
        let key = self.queue.keys().scheduler_leader();
        Ok(self
            .queue
            .leases()
            .hold(&key, &self.instance, LEASE)
            .await?)
    }

    /// This instance's lease token.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// One pass of the leader's work: promote due jobs, fire due cron schedules.
    pub async fn tick_once(&mut self) -> anyhow::Result<()> {
        self.queue.promote_due().await?;
        let jobs = self.due.collect(&self.schedules, chrono::Utc::now());
        if !jobs.is_empty() {
            let n = jobs.len();
            let out = self.queue.enqueue_many(jobs).await?;
            let created = out.iter().filter(|e| e.created).count();
            tracing::info!(due = n, created, "scheduled jobs enqueued");
        }
        Ok(())
    }

    /// Runs until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut last_upkeep = tokio::time::Instant::now() - self.upkeep_every;
        let mut leading = false;
        let mut last_lead_check = tokio::time::Instant::now() - LEASE;
        loop {
            if last_lead_check.elapsed() >= LEASE / 3 {
                match self.lead().await {
                    Ok(now_leading) => {
                        if now_leading != leading {
                            tracing::info!(
                                instance = self.instance,
                                leading = now_leading,
                                "scheduler leadership changed"
                            );
                            if now_leading {
                                self.due = DueJobs::starting_now();
                            }
                        }
                        leading = now_leading;
                    }
                    Err(e) => {
                        leading = false;
                        tracing::error!(error = %e, "scheduler cannot reach Redis");
                    }
                }
                last_lead_check = tokio::time::Instant::now();
            }
            if leading {
                if let Err(e) = self.tick_once().await {
                    tracing::warn!(error = %e, "scheduler tick failed");
                }
                if last_upkeep.elapsed() >= self.upkeep_every {
                    match self.queue.trim_acknowledged().await {
                        Ok(n) if n > 0 => {
                            tracing::debug!(trimmed = n, "trimmed acknowledged entries")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "trimming failed"),
                    }
                    if let Err(e) = self.queue.stats().await {
                        tracing::warn!(error = %e, "reading queue depth failed");
                    }
                    last_upkeep = tokio::time::Instant::now();
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.tick) => {}
            }
        }
        if leading {
            // By token: a lease that expired while this instance stalled may be another's now.
            let key = self.queue.keys().scheduler_leader();
            if let Err(e) = self.queue.leases().release(&key, &self.instance).await {
                tracing::warn!(error = %e, "could not release leadership; it expires with its lease");
            }
        }
        tracing::info!("scheduler stopped");
    }
}

/// One weekly digest schedule per tenant, for each of its default personas, from the `digest`
/// section of `config/defaults.json`.
pub fn digest_schedules(tenants: &TenantRegistry) -> anyhow::Result<Vec<DigestSchedule>> {
    let schedule = tenants
        .defaults()
        .digest
        .schedule()
        .context("defaults.json: digest.cron")?;
    Ok(tenants
        .tenants()
        .map(|t| DigestSchedule {
            tenant: t.tenant_id.clone(),
            personas: t.config.default_personas.clone(),
            schedule: schedule.clone(),
        })
        .collect())
}

/// Runs a scheduler process until `shutdown` is cancelled: loads the tenants, then
/// [`run_with_tenants`].
pub async fn run(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let tenants =
        TenantRegistry::load(&settings.config_dir).context("loading tenant configuration")?;
    run_with_tenants(settings, &tenants, shutdown).await
}

/// Runs a scheduler with the configuration its process loaded once (`onomancer up` shares it
/// with the other roles) until `shutdown` is cancelled.
pub async fn run_with_tenants(
    settings: &Settings,
    tenants: &TenantRegistry,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let schedules = digest_schedules(tenants)?;
    let registry = prometheus::Registry::new();
    let queue_config = QueueConfig::from(&tenants.defaults().queue);
    let Some(queue) = Queue::connect_waiting(settings, queue_config, &registry, &shutdown)
        .await
        .context("connecting to Redis")?
    else {
        return Ok(());
    };
    if let Some(addr) = settings.metrics_addr {
        let q = queue.clone();
        let ready: onomancer_shared::ops_http::ReadyCheck = Arc::new(move || {
            let q = q.clone();
            Box::pin(async move {
                onomancer_shared::ops_http::Readiness {
                    redis: q.ping().await.is_ok(),
                    tenants: None,
                }
            })
        });
        let token = shutdown.clone();
        onomancer_shared::ops_http::serve(
            addr,
            registry,
            ready,
            async move { token.cancelled().await },
        )
        .await
        .with_context(|| format!("binding the metrics address {addr}"))?;
    }
    Scheduler::new(queue, schedules).run(shutdown).await;
    Ok(())
}
