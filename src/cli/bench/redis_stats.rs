//! Redis-side figures for the benchmarks: `INFO commandstats` deltas over a phase, and the calls
//! slower than a threshold during a phase, read from `SLOWLOG` with its threshold lowered for
//! the phase only (both settings are restored after it). Calls are attributed to the bench by
//! its namespace in their keys, and to a script by its SHA1. (A threshold of 0 would also log
//! every command a script runs, and the logging itself would slow the scripts measured.)

use std::collections::{BTreeMap, HashMap};

use onomancer_shared::RedisConn;
use redis::Value;

/// Calls and microseconds per command (`cmdstat_<name>:calls=..,usec=..`).
#[derive(Clone, Debug, Default)]
pub struct CommandStats(HashMap<String, (u64, u64)>);

impl CommandStats {
    /// A snapshot of `INFO commandstats`.
    pub async fn read(conn: &RedisConn) -> anyhow::Result<Self> {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn.clone())
            .await?;
        let mut m = HashMap::new();
        for line in info.lines() {
            let Some((name, rest)) = line
                .strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            let field = |k: &str| {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(k))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            m.insert(name.to_owned(), (field("calls="), field("usec=")));
        }
        Ok(Self(m))
    }

    /// (calls, µs) of `command` since `before`.
    pub fn since(&self, before: &Self, command: &str) -> (u64, u64) {
        let (c1, u1) = self.0.get(command).copied().unwrap_or_default();
        let (c0, u0) = before.0.get(command).copied().unwrap_or_default();
        (c1.saturating_sub(c0), u1.saturating_sub(u0))
    }
}

/// Redis's own CPU time so far (`INFO cpu`: user + system), seconds.
pub async fn redis_cpu_s(conn: &RedisConn) -> anyhow::Result<f64> {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(&mut conn.clone())
        .await?;
    let field = |k: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok(field("used_cpu_user:") + field("used_cpu_sys:"))
}

/// One call of the bench seen in `SLOWLOG`.
#[derive(Clone, Debug)]
pub struct Call {
    /// Its execution time in Redis, µs.
    pub us: u64,
    /// The script's name for `EVALSHA`, else the command.
    pub what: String,
}

/// `SLOWLOG` recording every call for a while; [`SlowlogProbe::finish`] restores the settings.
pub struct SlowlogProbe {
    conn: RedisConn,
    threshold: String,
    max_len: String,
    after_id: i64,
}

async fn config_get(conn: &mut RedisConn, key: &str) -> anyhow::Result<String> {
    let (_, v): (String, String) = redis::cmd("CONFIG")
        .arg("GET")
        .arg(key)
        .query_async(conn)
        .await?;
    Ok(v)
}

async fn config_set(conn: &mut RedisConn, key: &str, value: &str) -> anyhow::Result<()> {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(key)
        .arg(value)
        .query_async(conn)
        .await?;
    Ok(())
}

fn as_i64(v: &Value) -> i64 {
    redis::from_redis_value_ref::<i64>(v).unwrap_or(0)
}

fn as_string(v: &Value) -> String {
    redis::from_redis_value_ref::<String>(v).unwrap_or_default()
}

impl SlowlogProbe {
    /// Starts recording every call slower than `threshold_us` (room for a million entries).
    pub async fn start(conn: &RedisConn, threshold_us: u64) -> anyhow::Result<Self> {
        let mut c = conn.clone();
        let threshold = config_get(&mut c, "slowlog-log-slower-than").await?;
        let max_len = config_get(&mut c, "slowlog-max-len").await?;
        let last: Vec<Value> = redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(1)
            .query_async(&mut c)
            .await?;
        let after_id = match last.first() {
            Some(Value::Array(e)) => e.first().map(as_i64).unwrap_or(-1),
            _ => -1,
        };
        config_set(&mut c, "slowlog-max-len", "1000000").await?;
        config_set(&mut c, "slowlog-log-slower-than", &threshold_us.to_string()).await?;
        Ok(Self {
            conn: c,
            threshold,
            max_len,
            after_id,
        })
    }

    /// Restores the settings and returns the calls whose arguments name `namespace`, with
    /// `EVALSHA` calls named after their script from `scripts` (name, SHA1).
    pub async fn finish(
        mut self,
        namespace: &str,
        scripts: &[(&'static str, String)],
    ) -> anyhow::Result<Vec<Call>> {
        config_set(&mut self.conn, "slowlog-log-slower-than", &self.threshold).await?;
        let entries: Vec<Value> = redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(-1)
            .query_async(&mut self.conn)
            .await?;
        config_set(&mut self.conn, "slowlog-max-len", &self.max_len).await?;
        let by_sha: HashMap<&str, &str> = scripts.iter().map(|(n, s)| (s.as_str(), *n)).collect();
        let mut calls = Vec::new();
        for e in entries {
            let Value::Array(e) = e else { continue };
            if e.len() < 4 || as_i64(&e[0]) <= self.after_id {
                continue;
            }
            let Value::Array(args) = &e[3] else { continue };
            let args: Vec<String> = args.iter().map(as_string).collect();
            if !args.iter().any(|a| a.contains(namespace)) {
                continue;
            }
            let command = args.first().cloned().unwrap_or_default().to_lowercase();
            let what = match (command.as_str(), args.get(1)) {
                ("evalsha", Some(sha)) => by_sha
                    .get(sha.to_lowercase().as_str())
                    .map(|n| n.to_string())
                    .unwrap_or(command),
                _ => command,
            };
            calls.push(Call {
                us: as_i64(&e[2]).max(0) as u64,
                what,
            });
        }
        Ok(calls)
    }
}

/// Per script or command: calls, mean and max µs; and over all calls: max µs and calls above
/// one millisecond.
pub fn summarize(calls: &[Call]) -> serde_json::Value {
    let mut per: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    for c in calls {
        let e = per.entry(c.what.as_str()).or_default();
        e.0 += 1;
        e.1 += c.us;
        e.2 = e.2.max(c.us);
    }
    let per: serde_json::Map<String, serde_json::Value> = per
        .into_iter()
        .map(|(what, (n, total, max))| {
            (
                what.to_owned(),
                serde_json::json!({
                    "calls": n,
                    "mean_us": (total as f64 / n as f64 * 10.0).round() / 10.0,
                    "max_us": max,
                }),
            )
        })
        .collect();
    serde_json::json!({
        "calls": calls.len(),
        "max_call_us": calls.iter().map(|c| c.us).max().unwrap_or(0),
        "calls_over_1ms": calls.iter().filter(|c| c.us > 1000).count(),
        "by_call": per,
    })
}
