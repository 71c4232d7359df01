//! Reading what a claim planned: the planned streams in plain `XREADGROUP` calls (one per
//! distinct count, pipelined: entries go to the worker without passing through Lua). What the
//! read leaves to do (marking the jobs running, recording the streams read, settling the tenants
//! whose read came up short) is the writer's (`writer.rs`), in order before the jobs'
//! acknowledgements, off the claim's path. Per job, Redis runs only plain commands.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use redis::streams::StreamReadReply;

use super::finish::Claimed;
use super::writer::Settle;
use crate::ids::{JobId, TenantId};
use crate::job::{Envelope, Lane};
use crate::queue::{Queue, QueueError, GROUP};

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

/// Reads the planned streams for `consumer`, with `then` (the next claim's plan, or nothing)
/// in the same round trip; returns the entries, what the read leaves to settle (a short read
/// means the claim may have room left that other tenants could fill), and `then`'s answer.
/// Every read that answered is kept, whatever another command answered: an entry Redis
/// delivered is never dropped on the floor while this worker lives.
pub(crate) async fn read_planned(
    queue: &Queue,
    consumer: &Arc<str>,
    plan: &[Planned],
    then: Option<&redis::ScriptInvocation<'_>>,
) -> Result<
    (
        Vec<Claimed>,
        Settle,
        Option<redis::RedisResult<redis::Value>>,
    ),
    QueueError,
> {
    if plan.is_empty() && then.is_none() {
        return Ok((Vec::new(), Settle::default(), None));
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
    pipe.ignore_errors();
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
    let with_then = then.is_some();
    if let Some(invocation) = then {
        pipe.invoke_script(invocation);
    }
    let mut answers: Vec<redis::RedisResult<redis::Value>> =
        pipe.query_async(&mut queue.conn()).await?;
    let then = if with_then { answers.pop() } else { None };
    let mut replies: Vec<StreamReadReply> = Vec::with_capacity(answers.len());
    for answer in answers {
        match answer
            .and_then(|v| redis::from_redis_value::<Option<StreamReadReply>>(v).map_err(Into::into))
        {
            Ok(reply) => replies.extend(reply),
            // A planned stream lost its group (deleted and re-created): settling makes it again.
            Err(e) if e.code() == Some("NOGROUP") => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading planned streams failed; their tenants are settled")
            }
        }
    }
    let index: HashMap<&str, usize> = streams
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut got = vec![0usize; plan.len()];
    let mut out = Vec::new();
    for reply in replies {
        for key in reply.keys {
            let Some(&i) = index.get(key.key.as_str()) else {
                continue;
            };
            got[i] += key.ids.len();
            for mut e in key.ids {
                let raw = take_bytes(&mut e.map, "e").unwrap_or_default();
                let id = take_bytes(&mut e.map, "i").and_then(|b| String::from_utf8(b).ok());
                let named = id.is_some();
                let job_id = id.map(JobId::new).or_else(|| Envelope::probe_id(&raw));
                out.push(Claimed {
                    consumer: consumer.clone(),
                    job_id,
                    marked: false,
                    named,
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
    let settle = Settle {
        read: streams
            .iter()
            .zip(&got)
            .filter(|(_, n)| **n > 0)
            .map(|(s, _)| s.clone())
            .collect(),
        short: plan
            .iter()
            .zip(&got)
            .filter(|(p, n)| **n < p.count)
            .map(|(p, _)| (p.lane, p.tenant.clone()))
            .collect(),
    };
    Ok((out, settle, then))
}
