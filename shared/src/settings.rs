//! Process settings from the environment (the interface contract in the README): where Redis,
//! the database and the tenant configuration are, which addresses to serve, and API credentials.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::keys::KeySpace;

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Human-readable, coloured when on a terminal (development).
    Pretty,
}

/// How Discord delivers interactions to this deployment (the two are exclusive per application).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscordInteractions {
    /// Discord POSTs them to `/discord/interactions` (the application's "interactions endpoint
    /// URL"), checked with `DISCORD_PUBLIC_KEY`.
    Http,
    /// The gateway opens Discord's Gateway websocket with `DISCORD_BOT_TOKEN` and receives them
    /// there: for deployments without a public URL.
    Gateway,
}

/// Everything a process reads from its environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `REDIS_URL`: one address, or a comma-separated list of cluster nodes.
    pub redis_url: String,
    /// `DATABASE_URL`: `sqlite://...` (default `sqlite://./data/onomancer.db`) or `postgres://...`.
    pub database_url: String,
    /// `ONOMANCER_CONFIG_DIR`: folder holding `defaults.json`, `quotas.json`, `tenants/`, `prompts/`.
    pub config_dir: PathBuf,
    /// `ONOMANCER_HTTP_ADDR`: the gateway's listen address.
    pub http_addr: SocketAddr,
    /// `ONOMANCER_METRICS_ADDR`: where workers and the scheduler serve `/metrics`, `/healthz`, `/readyz`.
    pub metrics_addr: Option<SocketAddr>,
    /// `ONOMANCER_NAMESPACE`: isolates every Redis key under this name (tests, staging on a shared Redis).
    pub namespace: Option<String>,
    /// `ANTHROPIC_API_KEY`.
    pub anthropic_api_key: Option<SecretString>,
    /// `ANTHROPIC_BASE_URL` (default `https://api.anthropic.com`).
    pub anthropic_base_url: String,
    /// `ANTHROPIC_TIMEOUT_SECONDS`: whole-request timeout of one Claude call (default 120;
    /// fractions allowed).
    pub anthropic_timeout: std::time::Duration,
    /// `ANTHROPIC_HTTP_VERSION`: `auto` (default: HTTP/2 where TLS negotiates it), `http1` or
    /// `http2` (also without TLS).
    pub anthropic_http_version: crate::llm::HttpVersion,
    /// `DISCORD_BOT_TOKEN`.
    pub discord_bot_token: Option<SecretString>,
    /// `DISCORD_APPLICATION_ID`.
    pub discord_application_id: Option<u64>,
    /// `DISCORD_PUBLIC_KEY`: hex Ed25519 key that signs interactions.
    pub discord_public_key: Option<String>,
    /// `DISCORD_API_BASE`: overrides `https://discord.com/api/v10` (tests, proxies).
    pub discord_api_base: Option<String>,
    /// `DISCORD_TIMEOUT_SECONDS`: timeout of one Discord call (default 20; fractions allowed).
    /// A post's idempotency lease lasts 1.5 times this.
    pub discord_timeout: std::time::Duration,
    /// `DISCORD_INTERACTIONS`: `http` (default) or `gateway` (websocket mode).
    pub discord_interactions: DiscordInteractions,
    /// `ONOMANCER_MASTER_KEY`: decrypts tenant credentials stored encrypted in config.
    pub master_key: Option<SecretString>,
    /// `ONOMANCER_LOG_FORMAT` (`json` or `pretty`; default json when `ONOMANCER_ENV=production`).
    pub log_format: LogFormat,
    /// `ONOMANCER_WORKER_NAME`: stable consumer name (default `hostname-pid`).
    pub worker_name: Option<String>,
    /// `ONOMANCER_WORKER_CONCURRENCY`: jobs in flight per worker process (default 16).
    pub worker_concurrency: usize,
    /// `ONOMANCER_CLAIM_IDLE_MS`: overrides `queue.claimIdleMs` (how long a worker may go without
    /// renewing its liveness before peers reclaim its jobs).
    pub claim_idle: Option<Duration>,
    /// `ONOMANCER_SHUTDOWN_GRACE_MS`: overrides `queue.shutdownGraceMs` (how long running jobs
    /// may finish at shutdown before they are handed back).
    pub shutdown_grace: Option<Duration>,
}

/// A setting that is present but unusable; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {var}: {problem}")]
pub struct SettingsError {
    /// The variable's name.
    pub var: &'static str,
    /// What is wrong with its value (never the value itself, which may be a secret).
    pub problem: String,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let addr = |var: &'static str,
                    default: Option<&str>|
         -> Result<Option<SocketAddr>, SettingsError> {
            match get(var).as_deref().or(default) {
                None => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|e| SettingsError {
                    var,
                    problem: format!("{v:?} is not a socket address like 0.0.0.0:8080 ({e})"),
                }),
            }
        };
        let log_format = match get("ONOMANCER_LOG_FORMAT").as_deref() {
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(SettingsError {
                    var: "ONOMANCER_LOG_FORMAT",
                    problem: format!("{other:?} is neither \"json\" nor \"pretty\""),
                })
            }
            None if get("ONOMANCER_ENV").as_deref() == Some("production") => LogFormat::Json,
            None => LogFormat::Pretty,
        };
        let discord_application_id = match get("DISCORD_APPLICATION_ID") {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| SettingsError {
                var: "DISCORD_APPLICATION_ID",
                problem: "is not a numeric snowflake".into(),
            })?),
        };
        let discord_interactions = match get("DISCORD_INTERACTIONS").as_deref() {
            None | Some("http") => DiscordInteractions::Http,
            Some("gateway") => DiscordInteractions::Gateway,
            Some(other) => {
                return Err(SettingsError {
                    var: "DISCORD_INTERACTIONS",
                    problem: format!("{other:?} is neither \"http\" nor \"gateway\""),
                })
            }
        };
        let worker_concurrency = match get("ONOMANCER_WORKER_CONCURRENCY") {
            None => 16,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(SettingsError {
                        var: "ONOMANCER_WORKER_CONCURRENCY",
                        problem: format!("{v:?} is not a positive integer"),
                    })
                }
            },
        };
        let seconds = |var: &'static str,
                       default: u64|
         -> Result<std::time::Duration, SettingsError> {
            match get(var) {
                None => Ok(std::time::Duration::from_secs(default)),
                Some(v) => match v.trim().parse::<f64>() {
                    Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => {
                        Ok(std::time::Duration::from_secs_f64(s))
                    }
                    _ => Err(SettingsError {
                        var,
                        problem: format!("{v:?} is not a number of seconds between 0 and 86400"),
                    }),
                },
            }
        };
        let anthropic_timeout = seconds("ANTHROPIC_TIMEOUT_SECONDS", 120)?;
        let anthropic_http_version = match get("ANTHROPIC_HTTP_VERSION") {
            None => crate::llm::HttpVersion::Auto,
            Some(v) => crate::llm::HttpVersion::parse(&v).ok_or_else(|| SettingsError {
                var: "ANTHROPIC_HTTP_VERSION",
                problem: format!("{v:?} is not auto, http1 or http2"),
            })?,
        };
        let discord_timeout = seconds("DISCORD_TIMEOUT_SECONDS", 20)?;
        let millis = |var: &'static str| -> Result<Option<Duration>, SettingsError> {
            match get(var) {
                None => Ok(None),
                Some(v) => v
                    .parse::<u64>()
                    .map(|ms| Some(Duration::from_millis(ms)))
                    .map_err(|_| SettingsError {
                        var,
                        problem: format!("{v:?} is not a whole number of milliseconds"),
                    }),
            }
        };
        if let Some(ns) = get("ONOMANCER_NAMESPACE") {
            if ns.contains(['{', '}', ' ']) {
                return Err(SettingsError {
                    var: "ONOMANCER_NAMESPACE",
                    problem: "must not contain braces or spaces".into(),
                });
            }
        }
        Ok(Self {
            redis_url: get("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            database_url: get("DATABASE_URL")
                .unwrap_or_else(|| "sqlite://./data/onomancer.db".into()),
            config_dir: get("ONOMANCER_CONFIG_DIR")
                .unwrap_or_else(|| "./config".into())
                .into(),
            http_addr: addr("ONOMANCER_HTTP_ADDR", Some("0.0.0.0:8080"))?.expect("defaulted"),
            metrics_addr: addr("ONOMANCER_METRICS_ADDR", None)?,
            namespace: get("ONOMANCER_NAMESPACE"),
            anthropic_api_key: get("ANTHROPIC_API_KEY").map(SecretString::from),
            anthropic_base_url: get("ANTHROPIC_BASE_URL")
                .unwrap_or_else(|| "https://api.anthropic.com".into()),
            anthropic_timeout,
            anthropic_http_version,
            discord_bot_token: get("DISCORD_BOT_TOKEN").map(SecretString::from),
            discord_application_id,
            discord_public_key: get("DISCORD_PUBLIC_KEY"),
            discord_api_base: get("DISCORD_API_BASE"),
            discord_timeout,
            discord_interactions,
            master_key: get("ONOMANCER_MASTER_KEY").map(SecretString::from),
            log_format,
            worker_name: get("ONOMANCER_WORKER_NAME"),
            worker_concurrency,
            claim_idle: millis("ONOMANCER_CLAIM_IDLE_MS")?,
            shutdown_grace: millis("ONOMANCER_SHUTDOWN_GRACE_MS")?,
        })
    }

    /// The Redis key space these settings select.
    pub fn key_space(&self) -> KeySpace {
        match &self.namespace {
            Some(ns) => KeySpace::isolated(ns),
            None => KeySpace::production(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = with(&[]).unwrap();
        assert_eq!(s.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(s.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(s.config_dir, PathBuf::from("./config"));
        assert!(s.database_url.starts_with("sqlite://"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = with(&[("ONOMANCER_HTTP_ADDR", "nope")]).unwrap_err();
        assert_eq!(e.var, "ONOMANCER_HTTP_ADDR");
        let e = with(&[("ONOMANCER_WORKER_CONCURRENCY", "0")]).unwrap_err();
        assert_eq!(e.var, "ONOMANCER_WORKER_CONCURRENCY");
        let e = with(&[("ONOMANCER_SHUTDOWN_GRACE_MS", "30s")]).unwrap_err();
        assert_eq!(e.var, "ONOMANCER_SHUTDOWN_GRACE_MS");
        let e = with(&[("DISCORD_INTERACTIONS", "websocket")]).unwrap_err();
        assert_eq!(e.var, "DISCORD_INTERACTIONS");
        assert!(e.to_string().contains("\"websocket\" is neither"), "{e}");
    }

    #[test]
    fn claim_idle_and_shutdown_grace_are_read_in_milliseconds() {
        let s = with(&[
            ("ONOMANCER_CLAIM_IDLE_MS", "5000"),
            ("ONOMANCER_SHUTDOWN_GRACE_MS", "250"),
        ])
        .unwrap();
        assert_eq!(s.claim_idle, Some(Duration::from_secs(5)));
        assert_eq!(s.shutdown_grace, Some(Duration::from_millis(250)));
        assert_eq!(with(&[]).unwrap().claim_idle, None);
    }

    #[test]
    fn discord_interactions_default_to_http() {
        assert_eq!(
            with(&[]).unwrap().discord_interactions,
            DiscordInteractions::Http
        );
        assert_eq!(
            with(&[("DISCORD_INTERACTIONS", "gateway")])
                .unwrap()
                .discord_interactions,
            DiscordInteractions::Gateway
        );
    }

    #[test]
    fn upstream_timeouts_are_settings_in_seconds() {
        use std::time::Duration;
        let s = with(&[]).unwrap();
        assert_eq!(s.anthropic_timeout, Duration::from_secs(120));
        assert_eq!(s.discord_timeout, Duration::from_secs(20));
        let s = with(&[
            ("ANTHROPIC_TIMEOUT_SECONDS", "300"),
            ("DISCORD_TIMEOUT_SECONDS", "0.5"),
        ])
        .unwrap();
        assert_eq!(s.anthropic_timeout, Duration::from_secs(300));
        assert_eq!(s.discord_timeout, Duration::from_millis(500));
        for bad in ["0", "-3", "soon", "NaN"] {
            let e = with(&[("ANTHROPIC_TIMEOUT_SECONDS", bad)]).unwrap_err();
            assert_eq!(e.var, "ANTHROPIC_TIMEOUT_SECONDS", "{bad}");
        }
    }

    #[test]
    fn the_claude_http_version_is_a_setting() {
        use crate::llm::HttpVersion;
        assert_eq!(with(&[]).unwrap().anthropic_http_version, HttpVersion::Auto);
        for (v, want) in [
            ("http1", HttpVersion::Http1),
            ("HTTP2", HttpVersion::Http2),
            ("auto", HttpVersion::Auto),
        ] {
            let s = with(&[("ANTHROPIC_HTTP_VERSION", v)]).unwrap();
            assert_eq!(s.anthropic_http_version, want, "{v}");
        }
        let e = with(&[("ANTHROPIC_HTTP_VERSION", "h3")]).unwrap_err();
        assert_eq!(e.var, "ANTHROPIC_HTTP_VERSION");
    }
}
