//! One Redis connection type for a single server or a Cluster, reconnecting on its own.
//!
//! `REDIS_URL` is one `redis://` address, or a comma-separated list of cluster nodes
//! (`redis://127.0.0.1:7000,redis://127.0.0.1:7001`), which selects Cluster mode.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A cloneable, multiplexed connection; cheap to clone per task.
#[derive(Clone)]
pub enum RedisConn {
    /// One server, through a manager that reconnects with exponential backoff.
    Single(ConnectionManager),
    /// A Redis Cluster; slots are followed and nodes reconnected by the client.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisConn::Single(_) => f.write_str("RedisConn::Single"),
            RedisConn::Cluster(_) => f.write_str("RedisConn::Cluster"),
        }
    }
}

/// How long one command may take before it is reported as failed (the connection then reconnects).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

impl RedisConn {
    /// Connects to `url` (see the module docs for the cluster form). Credentials in the URL are
    /// never logged: errors name the host only.
    pub async fn connect(url: &str) -> redis::RedisResult<Self> {
        let nodes: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if nodes.len() > 1 {
            let client = redis::cluster::ClusterClientBuilder::new(nodes)
                .response_timeout(RESPONSE_TIMEOUT)
                .connection_timeout(Duration::from_secs(2))
                .retries(6)
                .build()?;
            return Ok(RedisConn::Cluster(client.get_async_connection().await?));
        }
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2))
            .set_number_of_retries(3)
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(Duration::from_secs(2)));
        Ok(RedisConn::Single(
            ConnectionManager::new_with_config(client, config).await?,
        ))
    }

    /// True in Cluster mode.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisConn::Cluster(_))
    }

    /// `PING`, for readiness checks.
    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut c = self.clone();
        let _: String = redis::cmd("PING").query_async(&mut c).await?;
        Ok(())
    }
}

/// How every role waits for Redis at start: 200 ms, doubling, at most 5 s apart, for as long as
/// it takes (an orchestrator starting Redis after the roles is normal).
pub fn startup_backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times()
}

/// Runs `connect` until it succeeds, fails with an error `is_outage` says is not Redis being
/// away, or `shutdown` is cancelled (then `Ok(None)`), waiting [`startup_backoff`] between
/// attempts. Each failed attempt is one WARN line naming the redacted URL, the error and the
/// wait.
pub async fn wait_for_redis<T, E, Fut>(
    url: &str,
    shutdown: &tokio_util::sync::CancellationToken,
    connect: impl FnMut() -> Fut,
    is_outage: impl FnMut(&E) -> bool,
) -> Result<Option<T>, E>
where
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let redis = redact_url(url.split(',').next().unwrap_or_default());
    let attempts = connect
        .retry(startup_backoff())
        .when(is_outage)
        .notify(|e: &E, wait: Duration| {
            tracing::warn!(%redis, error = %e, retry_in_ms = wait.as_millis() as u64, "Redis not reachable yet");
        });
    tokio::select! {
        () = shutdown.cancelled() => Ok(None),
        done = attempts => done.map(Some),
    }
}

/// Strips the password from a Redis URL for log lines.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable redis url>".to_owned(),
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://:hunter2@10.0.0.1:6379/0"),
            "redis://:***@10.0.0.1:6379/0"
        );
    }
}
