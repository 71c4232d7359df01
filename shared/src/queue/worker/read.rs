//! Reading what a claim planned: the planned streams in plain `XREADGROUP` calls (one per
//! distinct count, pipelined: entries go to the worker without passing through Lua), then, in
//! one round trip, the jobs marked running (plain commands) and one `settle.lua` call that
//! records the streams read and settles the tenants whose read came up short (they leave the
//! ready index only if their stream is really drained). Per job, Redis runs only plain commands.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use redis::streams::StreamReadReply;

use super::finish::Claimed;
use crate::ids::{JobId, TenantId};
use crate::job::{Envelope, Lane};
use crate::queue::{now_ms, Queue, QueueError, GROUP};

/// One tenant stream a claim plans to read, and how many entries at most.
pub(crate) struct Planned {
    pub lane: Lane,
    pub tenant: TenantId,
    pub count: usize,
}

fn take_bytes(map: &mut HashMap<String, redis::Value>, field: &str) -> Option<Vec<u8>> {
    match map.remove(field) {
        Some(redis::Value::BulkString(b)) => Some(b),
        _ => None,
    }
}

/// Reads the planned streams for `consumer`; returns the entries, and whether some stream came
/// up short (the claim may have room left that other tenants could fill).
pub(crate) async fn read_planned(
    queue: &Queue,
    consumer: &Arc<str>,
    plan: &[Planned],
) -> Result<(Vec<Claimed>, bool), QueueError> {
    if plan.is_empty() {
        return Ok((Vec::new(), false));
    }
    let keys = queue.keys();
    let streams: Vec<String> = plan
        .iter()
        .map(|p| keys.stream(&p.tenant, p.lane))
        .collect();
    let mut by_count: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (p, s) in plan.iter().zip(&streams) {
        by_count.entry(p.count).or_default().push(s);
    }
    let mut pipe = redis::pipe();
    for (count, group) in &by_count {
        pipe.cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(&**consumer)
            .arg("COUNT")
            .arg(*count)
            .arg("STREAMS")
            .arg(group)
            .arg(vec![">"; group.len()]);
    }
    let replies: Vec<Option<StreamReadReply>> = match pipe.query_async(&mut queue.conn()).await {
        Ok(r) => r,
        // A planned stream lost its group (deleted and re-created): settling makes it again.
        Err(e) if e.code() == Some("NOGROUP") => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let index: HashMap<&str, usize> = streams
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut got = vec![0usize; plan.len()];
    let mut out = Vec::new();
    for reply in replies.into_iter().flatten() {
        for key in reply.keys {
            let Some(&i) = index.get(key.key.as_str()) else {
                continue;
            };
            got[i] += key.ids.len();
            for mut e in key.ids {
                let raw = take_bytes(&mut e.map, "e").unwrap_or_default();
                let id = take_bytes(&mut e.map, "i").and_then(|b| String::from_utf8(b).ok());
                let marked = id.is_some();
                let job_id = id.map(JobId::new).or_else(|| Envelope::probe_id(&raw));
                out.push(Claimed {
                    consumer: consumer.clone(),
                    job_id,
                    marked,
                    stream: streams[i].clone(),
                    entry_id: e.id,
                    raw,
                    tenant: plan[i].tenant.clone(),
                    lane: plan[i].lane,
                    deliveries: 1,
                });
            }
        }
    }
    let short: Vec<&Planned> = plan
        .iter()
        .zip(&got)
        .filter(|(p, n)| **n < p.count)
        .map(|(p, _)| p)
        .collect();
    // The jobs read are marked running (plain pipelined commands: no step of this needs to be
    // atomic), while settle.lua records the streams read in the owned set and settles the
    // tenants that came up short; both in one round trip.
    let now = now_ms();
    let mut marks = redis::pipe();
    for c in out.iter().filter(|c| c.marked) {
        let id = c.job_id.as_ref().expect("marked entries name their job");
        marks
            .cmd("HSET")
            .arg(keys.status(&c.tenant, id))
            .arg("state")
            .arg("running")
            .arg("consumer")
            .arg(&**consumer)
            .arg("updated")
            .arg(now)
            .arg("deliveries")
            .arg(1)
            .ignore();
    }
    let read: Vec<&str> = streams
        .iter()
        .zip(&got)
        .filter(|(_, n)| **n > 0)
        .map(|(s, _)| s.as_str())
        .collect();
    let mut settle = queue.scripts().settle.prepare_invoke();
    settle
        .key(keys.owned(consumer))
        .arg(keys.queue_keys_prefix())
        .arg(GROUP)
        .arg(&**consumer)
        .arg(read.len())
        .arg(&read);
    for p in &short {
        settle.arg(p.lane.as_str()).arg(p.tenant.as_str());
    }
    let (mut c1, mut c2) = (queue.conn(), queue.conn());
    let any_marks = out.iter().any(|c| c.marked);
    let (marked, settled) = futures::join!(
        async move {
            match any_marks {
                true => marks.query_async::<()>(&mut c1).await,
                false => Ok(()),
            }
        },
        settle.invoke_async::<i64>(&mut c2)
    );
    marked?;
    settled?;
    Ok((out, !short.is_empty()))
}
