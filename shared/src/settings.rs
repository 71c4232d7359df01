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
    pub var: String,
    /// What is wrong with its value (never the value itself, which may be a secret).
    pub problem: String,
}

/// Reads the variables `V` declares (clap's `env` names them; defaults and parsers are
/// `V`'s) through `get`: the process environment, or a map in tests. A variable set to blanks
/// counts as unset; `get` is the only source (clap never reads the environment itself here).
pub fn read_vars<V: clap::Parser>(
    get: impl Fn(&str) -> Option<String>,
) -> Result<V, SettingsError> {
    let command = V::command();
    // Each declared variable that is set becomes its argument.
    let mut args: Vec<String> = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    for arg in command.get_arguments() {
        let (Some(var), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let var = var.to_string_lossy().into_owned();
        if let Some(value) = get(&var).filter(|v| !v.trim().is_empty()) {
            args.push(format!("--{long}={value}"));
        }
        names.push((long.to_string(), var));
    }
    let matches = command
        .no_binary_name(true)
        .mut_args(|arg| arg.env(None::<&'static str>))
        .try_get_matches_from(&args)
        .map_err(|e| settings_error(&e, &names))?;
    V::from_arg_matches(&matches).map_err(|e| settings_error(&e, &names))
}

/// A clap error as a [`SettingsError`]: the variable it concerns and the parser's message
/// (clap's own rendering would quote the value, which may be a secret).
fn settings_error(e: &clap::Error, names: &[(String, String)]) -> SettingsError {
    use clap::error::{ContextKind, ContextValue};
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.clone(),
        _ => String::new(),
    };
    let var = names
        .iter()
        .find(|(long, _)| arg.starts_with(&format!("--{long} ")) || arg == format!("--{long}"))
        .map_or_else(|| "environment".to_string(), |(_, var)| var.clone());
    let problem = match std::error::Error::source(e) {
        Some(source) => source.to_string(),
        None => e.kind().to_string(),
    };
    SettingsError { var, problem }
}

/// Every variable a process reads, declared once: its name (clap's `env`), default and parser.
/// [`Settings::from_lookup`] reads it; the parsers' messages name the problem, and the error
/// names the variable.
#[derive(clap::Parser, Debug)]
#[command(
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true
)]
struct Vars {
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://./data/onomancer.db"
    )]
    database_url: String,
    #[arg(long, env = "ONOMANCER_CONFIG_DIR", default_value = "./config")]
    config_dir: PathBuf,
    #[arg(long, env = "ONOMANCER_HTTP_ADDR", default_value = "0.0.0.0:8080", value_parser = socket_addr)]
    http_addr: SocketAddr,
    #[arg(long, env = "ONOMANCER_METRICS_ADDR", value_parser = socket_addr)]
    metrics_addr: Option<SocketAddr>,
    #[arg(long, env = "ONOMANCER_NAMESPACE", value_parser = namespace)]
    namespace: Option<String>,
    #[arg(long, env = "ANTHROPIC_API_KEY", hide_env_values = true)]
    anthropic_api_key: Option<String>,
    #[arg(
        long,
        env = "ANTHROPIC_BASE_URL",
        default_value = "https://api.anthropic.com"
    )]
    anthropic_base_url: String,
    #[arg(long, env = "ANTHROPIC_TIMEOUT_SECONDS", default_value = "120", value_parser = seconds)]
    anthropic_timeout_seconds: Duration,
    #[arg(long, env = "ANTHROPIC_HTTP_VERSION", default_value = "auto", value_parser = http_version)]
    anthropic_http_version: crate::llm::HttpVersion,
    #[arg(long, env = "DISCORD_BOT_TOKEN", hide_env_values = true)]
    discord_bot_token: Option<String>,
    #[arg(long, env = "DISCORD_APPLICATION_ID", value_parser = snowflake)]
    discord_application_id: Option<u64>,
    #[arg(long, env = "DISCORD_PUBLIC_KEY")]
    discord_public_key: Option<String>,
    #[arg(long, env = "DISCORD_API_BASE")]
    discord_api_base: Option<String>,
    #[arg(long, env = "DISCORD_TIMEOUT_SECONDS", default_value = "20", value_parser = seconds)]
    discord_timeout_seconds: Duration,
    #[arg(long, env = "DISCORD_INTERACTIONS", default_value = "http", value_parser = interactions)]
    discord_interactions: DiscordInteractions,
    #[arg(long, env = "ONOMANCER_MASTER_KEY", hide_env_values = true)]
    master_key: Option<String>,
    #[arg(long, env = "ONOMANCER_LOG_FORMAT", value_parser = log_format)]
    log_format: Option<LogFormat>,
    #[arg(long, env = "ONOMANCER_ENV")]
    environment: Option<String>,
    #[arg(long, env = "ONOMANCER_WORKER_NAME")]
    worker_name: Option<String>,
    #[arg(long, env = "ONOMANCER_WORKER_CONCURRENCY", default_value = "16", value_parser = positive)]
    worker_concurrency: usize,
    #[arg(long, env = "ONOMANCER_CLAIM_IDLE_MS", value_parser = millis)]
    claim_idle_ms: Option<Duration>,
    #[arg(long, env = "ONOMANCER_SHUTDOWN_GRACE_MS", value_parser = millis)]
    shutdown_grace_ms: Option<Duration>,
}

fn socket_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|e| format!("{v:?} is not a socket address like 0.0.0.0:8080 ({e})"))
}

fn namespace(v: &str) -> Result<String, String> {
    if v.contains(['{', '}', ' ']) {
        return Err("must not contain braces or spaces".into());
    }
    Ok(v.to_string())
}

fn seconds(v: &str) -> Result<Duration, String> {
    match v.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "{v:?} is not a number of seconds between 0 and 86400"
        )),
    }
}

fn http_version(v: &str) -> Result<crate::llm::HttpVersion, String> {
    crate::llm::HttpVersion::parse(v).ok_or_else(|| format!("{v:?} is not auto, http1 or http2"))
}

fn snowflake(v: &str) -> Result<u64, String> {
    v.parse().map_err(|_| "is not a numeric snowflake".into())
}

fn interactions(v: &str) -> Result<DiscordInteractions, String> {
    match v {
        "http" => Ok(DiscordInteractions::Http),
        "gateway" => Ok(DiscordInteractions::Gateway),
        other => Err(format!("{other:?} is neither \"http\" nor \"gateway\"")),
    }
}

fn log_format(v: &str) -> Result<LogFormat, String> {
    match v {
        "json" => Ok(LogFormat::Json),
        "pretty" => Ok(LogFormat::Pretty),
        other => Err(format!("{other:?} is neither \"json\" nor \"pretty\"")),
    }
}

fn positive(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{v:?} is not a positive integer")),
    }
}

fn millis(v: &str) -> Result<Duration, String> {
    v.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{v:?} is not a whole number of milliseconds"))
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get` (the environment, or a map in tests; see [`read_vars`]).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let vars: Vars = read_vars(get)?;
        let log_format = match vars.log_format {
            Some(format) => format,
            None if vars.environment.as_deref() == Some("production") => LogFormat::Json,
            None => LogFormat::Pretty,
        };
        Ok(Self {
            redis_url: vars.redis_url,
            database_url: vars.database_url,
            config_dir: vars.config_dir,
            http_addr: vars.http_addr,
            metrics_addr: vars.metrics_addr,
            namespace: vars.namespace,
            anthropic_api_key: vars.anthropic_api_key.map(SecretString::from),
            anthropic_base_url: vars.anthropic_base_url,
            anthropic_timeout: vars.anthropic_timeout_seconds,
            anthropic_http_version: vars.anthropic_http_version,
            discord_bot_token: vars.discord_bot_token.map(SecretString::from),
            discord_application_id: vars.discord_application_id,
            discord_public_key: vars.discord_public_key,
            discord_api_base: vars.discord_api_base,
            discord_timeout: vars.discord_timeout_seconds,
            discord_interactions: vars.discord_interactions,
            master_key: vars.master_key.map(SecretString::from),
            log_format,
            worker_name: vars.worker_name,
            worker_concurrency: vars.worker_concurrency,
            claim_idle: vars.claim_idle_ms,
            shutdown_grace: vars.shutdown_grace_ms,
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
    fn blank_values_count_as_unset_and_errors_carry_only_the_parsers_message() {
        let s = with(&[("REDIS_URL", "  "), ("ONOMANCER_WORKER_CONCURRENCY", "")]).unwrap();
        assert_eq!(s.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(s.worker_concurrency, 16);
        let s = with(&[("ANTHROPIC_API_KEY", "-starts-with-a-dash")]).unwrap();
        assert!(s.anthropic_api_key.is_some());
        let e = with(&[("ONOMANCER_METRICS_ADDR", "localhost")]).unwrap_err();
        assert_eq!(e.var, "ONOMANCER_METRICS_ADDR");
        assert!(
            e.to_string().starts_with(
                "environment variable ONOMANCER_METRICS_ADDR: \"localhost\" is not a socket address"
            ),
            "{e}"
        );
        assert!(!e.to_string().contains("--"), "no clap flag in {e}");
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
