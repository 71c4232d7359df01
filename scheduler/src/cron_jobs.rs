//! Cron schedules to jobs: each weekly digest fire becomes one bulk-lane job per (tenant, persona),
//! with an idempotency key naming the fire time, so a leader change never fires twice.

use std::str::FromStr;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use onomancer_shared::payloads::DigestPayload;
use onomancer_shared::{NewJob, Persona, TenantId};

/// One tenant's digest schedule.
#[derive(Clone, Debug)]
pub struct DigestSchedule {
    /// The tenant.
    pub tenant: TenantId,
    /// Personas that get a digest.
    pub personas: Vec<Persona>,
    /// When (cron crate syntax with seconds, e.g. `0 0 9 * * Mon`).
    pub schedule: cron::Schedule,
}

impl DigestSchedule {
    /// Parses a cron expression, naming it in the error.
    pub fn new(tenant: TenantId, personas: Vec<Persona>, expr: &str) -> Result<Self, String> {
        let schedule = cron::Schedule::from_str(expr)
            .map_err(|e| format!("digest cron expression {expr:?} is invalid: {e}"))?;
        Ok(Self {
            tenant,
            personas,
            schedule,
        })
    }
}

/// Finds fires between the last check and now.
pub struct DueJobs {
    last: DateTime<Utc>,
}

/// Fires missed while no scheduler led are caught up to this far back.
const CATCH_UP: i64 = 3600;

impl DueJobs {
    /// Starts counting from now (minus a catch-up window for a leader that just took over).
    pub fn starting_now() -> Self {
        Self::starting_at(Utc::now() - ChronoDuration::seconds(CATCH_UP))
    }

    /// Starts counting from `t`.
    pub fn starting_at(t: DateTime<Utc>) -> Self {
        Self { last: t }
    }

    /// Jobs for every fire in (last, now]; advances `last` to `now`.
    pub fn collect(&mut self, schedules: &[DigestSchedule], now: DateTime<Utc>) -> Vec<NewJob> {
        let mut jobs = Vec::new();
        for s in schedules {
            for fire in s.schedule.after(&self.last).take_while(|t| *t <= now) {
                let week_before = fire - ChronoDuration::days(7);
                for persona in &s.personas {
                    let payload = DigestPayload {
                        persona: persona.clone(),
                        period_start: week_before,
                        period_end: fire,
                        interaction_token: None,
                    };
                    jobs.push(
                        NewJob::new(s.tenant.clone(), &payload)
                            .idempotency_key(format!("digest:{persona}:{}", fire.to_rfc3339())),
                    );
                }
            }
        }
        self.last = now;
        jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn one_weekly_fire_gives_one_job_per_persona() {
        let personas = ["leadership", "product", "marketing", "devrel"]
            .map(Persona::new)
            .to_vec();
        let s = DigestSchedule::new(TenantId::new("thj"), personas, "0 0 9 * * Mon").unwrap();
        // Sunday 2026-11-29 .. Tuesday 2026-12-01 covers Monday 09:00 once.
        let mut due = DueJobs::starting_at(Utc.with_ymd_and_hms(2026, 11, 29, 0, 0, 0).unwrap());
        let jobs = due.collect(
            std::slice::from_ref(&s),
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
        );
        assert_eq!(jobs.len(), 4);
        assert_eq!(
            (&jobs[0].kind, jobs[0].lane),
            (
                &onomancer_shared::JobKind::Digest,
                onomancer_shared::Lane::Bulk
            )
        );
        assert!(jobs[0]
            .idempotency_key
            .as_deref()
            .unwrap()
            .starts_with("digest:leadership:2026-11-30T09:00:00"));
        // Nothing more until next week.
        assert!(due
            .collect(&[s], Utc.with_ymd_and_hms(2026, 12, 7, 8, 0, 0).unwrap())
            .is_empty());
    }

    #[test]
    fn bad_cron_is_named() {
        let e = DigestSchedule::new(TenantId::new("thj"), vec![], "every monday").unwrap_err();
        assert!(e.contains("every monday"), "{e}");
    }
}
