//! The dead-letter stream: jobs that failed terminally, ran out of attempts, or could not be read,
//! each with its reason, attempts and original payload; listed and replayed by operators.

use std::collections::HashMap;

use redis::streams::StreamRangeReply;
use redis::Value;

use crate::ids::{JobId, TenantId};
use crate::job::{Envelope, Lane};
use crate::queue::{now_ms, Queue, QueueError};

/// One dead-lettered job.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DeadLetter {
    /// The entry's id in the dead-letter stream.
    pub entry_id: String,
    /// The job's id (empty for an undecodable entry).
    pub job_id: String,
    /// Its tenant (empty when unknown).
    pub tenant: String,
    /// Its kind (empty when unknown).
    pub kind: String,
    /// Its lane.
    pub lane: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why it is here.
    pub reason: String,
    /// When it arrived, ms since the epoch.
    pub at_ms: i64,
    /// The stream it came from.
    pub source: String,
    /// Size of the original payload in bytes.
    #[serde(skip)]
    pub envelope: Vec<u8>,
}

fn field_str(f: &HashMap<String, Value>, k: &str) -> String {
    match f.get(k) {
        Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::SimpleString(s)) => s.clone(),
        _ => String::new(),
    }
}

fn field_bytes(f: &HashMap<String, Value>, k: &str) -> Vec<u8> {
    match f.get(k) {
        Some(Value::BulkString(b)) => b.clone(),
        _ => Vec::new(),
    }
}

impl Queue {
    /// Lists up to `limit` dead letters, oldest first, optionally for one tenant.
    pub async fn dlq_list(
        &self,
        tenant: Option<&TenantId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        let mut out = Vec::new();
        let mut start = "-".to_owned();
        let mut c = self.conn();
        loop {
            let page: StreamRangeReply = redis::cmd("XRANGE")
                .arg(self.keys().dead_letter())
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(500)
                .query_async(&mut c)
                .await?;
            let n = page.ids.len();
            for entry in page.ids {
                start = format!("({}", entry.id);
                let f = entry.map;
                let dl = DeadLetter {
                    entry_id: entry.id,
                    job_id: field_str(&f, "job_id"),
                    tenant: field_str(&f, "tenant"),
                    kind: field_str(&f, "kind"),
                    lane: field_str(&f, "lane"),
                    attempts: field_str(&f, "attempts").parse().unwrap_or(0),
                    reason: field_str(&f, "reason"),
                    at_ms: field_str(&f, "at").parse().unwrap_or(0),
                    source: field_str(&f, "source"),
                    envelope: field_bytes(&f, "e"),
                };
                if tenant.is_none_or(|t| t.as_str() == dl.tenant) {
                    out.push(dl);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            if n < 500 {
                return Ok(out);
            }
        }
    }

    /// Replays one dead letter (by job id or dead-letter entry id) into its lane with a fresh
    /// attempt budget. Returns false when it is not in the dead-letter stream, or cannot be
    /// replayed because its payload was undecodable (it stays, with the reason).
    pub async fn dlq_replay(&self, id: &str) -> Result<bool, QueueError> {
        let all = self.dlq_list(None, usize::MAX).await?;
        let Some(dl) = all.into_iter().find(|d| d.job_id == id || d.entry_id == id) else {
            return Ok(false);
        };
        self.replay_one(&dl).await
    }

    /// Replays every replayable dead letter; returns how many were replayed and how many were left
    /// because they cannot be decoded.
    pub async fn dlq_replay_all(&self) -> Result<(usize, usize), QueueError> {
        let all = self.dlq_list(None, usize::MAX).await?;
        let (mut done, mut left) = (0, 0);
        for dl in &all {
            if self.replay_one(dl).await? {
                done += 1;
            } else {
                left += 1;
            }
        }
        Ok((done, left))
    }

    async fn replay_one(&self, dl: &DeadLetter) -> Result<bool, QueueError> {
        let Ok(mut env) = Envelope::decode(&dl.envelope) else {
            return Ok(false);
        };
        env.attempt = 1;
        let lane: Lane = env.lane;
        let keys = self.keys();
        let id: JobId = env.id.clone();
        let replayed: i64 = self
            .scripts()
            .replay
            .key(keys.dead_letter())
            .key(keys.stream(&env.tenant, lane))
            .key(keys.status(&env.tenant, &id))
            .arg(&dl.entry_id)
            .arg(env.encode())
            .arg(env.tenant.as_str())
            .arg(now_ms())
            .arg(self.config().status_ttl.as_secs().max(1))
            .arg(id.as_str())
            .arg(keys.queue_keys_prefix())
            .arg(lane.as_str())
            .arg(super::GROUP)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(replayed == 1)
    }
}
