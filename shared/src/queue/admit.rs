//! The gateway's rate check and the enqueue it guards, in one script call on a single server
//! (`admit_enqueue`, composed from `rate.lua` and `enqueue.lua` in `scripts.rs`).

use std::time::Duration;

use super::{now_ms, Enqueued, Queue, QueueError};
use crate::admission::{RateCheck, RateDecision};
use crate::ids::JobId;
use crate::job::NewJob;

/// The result of [`Queue::enqueue_admitted`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdmitOutcome {
    /// The rate admitted the request and the job is stored (`created` is false when its
    /// idempotency key matched an earlier job).
    Enqueued(Enqueued),
    /// The rate refused the request; nothing was stored.
    RateLimited {
        /// Time until the next request would be allowed.
        retry_after: Duration,
    },
}

impl Queue {
    /// Counts one request against `rate` and, only if it passes, enqueues `job` exactly as
    /// [`Queue::enqueue`] does: the same decisions as running the check and then the enqueue
    /// (a duplicate idempotency key still counts against the rate), in one script call on a
    /// single server. For callers with nothing to do between the two (no quota to consume).
    ///
    /// The rate key must live on the queue's Redis (admission shares the queue's connection). On
    /// a Cluster (the rate key and the queue keys are in different slots) and for a job without
    /// an idempotency key, the two steps run as separate calls.
    pub async fn enqueue_admitted(
        &self,
        job: NewJob,
        rate: &RateCheck,
    ) -> Result<AdmitOutcome, QueueError> {
        let keys = self.keys();
        let stream = keys.stream(&job.tenant, job.lane);
        let idem = match &job.idempotency_key {
            Some(k) if !self.inner.conn.is_cluster() => keys.idempotency(&job.tenant, k),
            _ => {
                return Ok(match rate.run(&self.inner.conn).await? {
                    RateDecision::Allowed { .. } => {
                        AdmitOutcome::Enqueued(self.enqueue(job).await?)
                    }
                    RateDecision::Limited { retry_after } => {
                        AdmitOutcome::RateLimited { retry_after }
                    }
                });
            }
        };
        let now = now_ms();
        let id = JobId::generate();
        let (tenant, kind, lane) = (job.tenant.clone(), job.kind.clone(), job.lane);
        let status = keys.status(&tenant, &id);
        let env = job.into_envelope(id.clone(), now).encode();
        let mut inv = self.scripts().admit_enqueue.prepare_invoke();
        inv.key(&rate.key)
            .arg(rate.emission_us)
            .arg(rate.tolerance_us);
        self.enqueue_script_args(
            &mut inv,
            [idem, stream, status],
            &id,
            env,
            (&tenant, &kind, lane),
            now,
        );
        let (allowed, retry_us, remaining, first_id, created): (i64, u64, u64, String, i64) =
            inv.invoke_async(&mut self.conn()).await?;
        if let RateDecision::Limited { retry_after } =
            RateDecision::from_reply(allowed, retry_us, remaining)
        {
            return Ok(AdmitOutcome::RateLimited { retry_after });
        }
        if created == 1 {
            self.inner
                .metrics
                .enqueued
                .with_label_values(&[tenant.as_str(), kind.as_str()])
                .inc();
        }
        Ok(AdmitOutcome::Enqueued(Enqueued {
            id: JobId::new(first_id),
            created: created == 1,
        }))
    }
}
