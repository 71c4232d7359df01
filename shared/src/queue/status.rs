//! Job status by id (queued, running, retrying, succeeded, dead), kept in a per-job hash with a
//! TTL and served by `GET /v1/jobs/{id}`.

use std::collections::HashMap;

use serde::Serialize;

use crate::ids::{JobId, TenantId};
use crate::job::Lane;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// In a stream (or delayed by a rate limit), waiting for a worker.
    Queued,
    /// Claimed by a worker.
    Running,
    /// Failed with a retryable error; waiting for its next attempt.
    Retrying,
    /// Done.
    Succeeded,
    /// In the dead-letter stream.
    Dead,
}

impl JobState {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "retrying" => Self::Retrying,
            "succeeded" => Self::Succeeded,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
}

/// A job's status as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobStatus {
    /// The job.
    pub id: JobId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its kind.
    pub kind: String,
    /// Its lane.
    pub lane: Lane,
    /// Where it is.
    pub state: JobState,
    /// The current (or last) attempt, from 1.
    pub attempt: u32,
    /// How many times a worker completed it (more than 1 means at-least-once redelivery ran it again).
    pub completions: u32,
    /// How many times its current attempt was handed to a worker: 1, or more when a worker died
    /// (or stalled past the claim-idle time) while running it and a peer took it over.
    pub deliveries: u32,
    /// First enqueue, ms since the epoch.
    pub created_ms: i64,
    /// Last change, ms since the epoch.
    pub updated_ms: i64,
    /// When a retrying or deferred job runs next, ms since the epoch.
    pub next_run_ms: Option<i64>,
    /// The last error, for retrying and dead jobs.
    pub error: Option<String>,
    /// The handler's result, for succeeded jobs.
    pub result: Option<serde_json::Value>,
    /// What a running job has finished so far (e.g. a transform's personas), if it reports it.
    pub progress: Option<serde_json::Value>,
}

impl JobStatus {
    /// Builds a status from the hash fields; `None` when the hash is empty or unreadable.
    pub(crate) fn from_fields(
        tenant: &TenantId,
        id: &JobId,
        f: HashMap<String, String>,
    ) -> Option<Self> {
        let num = |k: &str| f.get(k).and_then(|v| v.parse::<i64>().ok());
        Some(Self {
            id: id.clone(),
            tenant: tenant.clone(),
            kind: f.get("kind")?.clone(),
            lane: Lane::parse(f.get("lane")?)?,
            state: JobState::parse(f.get("state")?)?,
            attempt: num("attempt").unwrap_or(1) as u32,
            completions: num("completions").unwrap_or(0) as u32,
            deliveries: num("deliveries").unwrap_or(0) as u32,
            created_ms: num("created").unwrap_or(0),
            updated_ms: num("updated").unwrap_or(0),
            next_run_ms: num("next_run"),
            error: f.get("error").filter(|e| !e.is_empty()).cloned(),
            result: f.get("result").and_then(|r| serde_json::from_str(r).ok()),
            progress: f.get("progress").and_then(|r| serde_json::from_str(r).ok()),
        })
    }
}
