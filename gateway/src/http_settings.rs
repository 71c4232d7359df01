//! The HTTP server's defences against slow and hostile clients, as settings (environment
//! variables, documented in the README): how long a client may take to send its headers and its
//! body, and how many connections the gateway holds open at once.

use std::time::Duration;

use onomancer_shared::settings::{read_vars, SettingsError};

/// `ONOMANCER_HTTP_HEADER_TIMEOUT_MS` default.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// `ONOMANCER_HTTP_BODY_TIMEOUT_MS` default.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The most `ONOMANCER_HTTP_MAX_CONNECTIONS` defaults to (less when the process may open fewer
/// files, see [`HttpSettings::from_lookup`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Descriptors left for everything but client connections (Redis, the database, logs).
const RESERVED_DESCRIPTORS: usize = 64;

/// Limits of the HTTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// `ONOMANCER_HTTP_HEADER_TIMEOUT_MS`: a connection whose request headers are not complete
    /// this long after it started waiting for them is closed. Also how long an idle keep-alive
    /// connection is kept.
    pub header_timeout: Duration,
    /// `ONOMANCER_HTTP_BODY_TIMEOUT_MS`: a request whose body has not fully arrived this long
    /// after the gateway started reading it gets 408. Each route's answer deadline (Discord
    /// 2.5 s, Linear 4.5 s, others 9 s) bounds it too.
    pub body_timeout: Duration,
    /// `ONOMANCER_HTTP_MAX_CONNECTIONS`: connections served at once; more wait in the listen
    /// backlog until one closes.
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: default_max_connections(open_files_limit()),
        }
    }
}

impl HttpSettings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `get` (tests pass a map; see [`read_vars`]). Unset or blank
    /// means the default; the connection cap's default stays below the process's open-files
    /// limit, so that connections alone can never use up the descriptors `/healthz` and Redis
    /// need.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let vars: HttpVars = read_vars(get)?;
        let defaults = Self::default();
        Ok(Self {
            header_timeout: vars
                .header_timeout_ms
                .map_or(defaults.header_timeout, Duration::from_millis),
            body_timeout: vars
                .body_timeout_ms
                .map_or(defaults.body_timeout, Duration::from_millis),
            max_connections: vars.max_connections.map_or(defaults.max_connections, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            }),
        })
    }
}

/// The variables [`HttpSettings`] reads.
#[derive(clap::Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct HttpVars {
    #[arg(long, env = "ONOMANCER_HTTP_HEADER_TIMEOUT_MS", value_parser = positive)]
    header_timeout_ms: Option<u64>,
    #[arg(long, env = "ONOMANCER_HTTP_BODY_TIMEOUT_MS", value_parser = positive)]
    body_timeout_ms: Option<u64>,
    #[arg(long, env = "ONOMANCER_HTTP_MAX_CONNECTIONS", value_parser = positive)]
    max_connections: Option<u64>,
}

fn positive(v: &str) -> Result<u64, String> {
    match v.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{v:?} is not a positive integer")),
    }
}

/// [`DEFAULT_MAX_CONNECTIONS`], or fewer when the open-files limit is lower.
fn default_max_connections(open_files: Option<usize>) -> usize {
    match open_files {
        Some(n) => n
            .saturating_sub(RESERVED_DESCRIPTORS)
            .clamp(16, DEFAULT_MAX_CONNECTIONS),
        None => DEFAULT_MAX_CONNECTIONS,
    }
}

/// The soft open-files limit (`Max open files` of `/proc/self/limits`); `None` where unknown
/// or unlimited.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<HttpSettings, SettingsError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HttpSettings::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn unset_means_the_defaults_and_values_are_milliseconds() {
        let d = with(&[]).unwrap();
        assert_eq!(d, HttpSettings::default());
        assert_eq!(d.header_timeout, Duration::from_secs(10));
        let s = with(&[
            ("ONOMANCER_HTTP_HEADER_TIMEOUT_MS", "250"),
            ("ONOMANCER_HTTP_BODY_TIMEOUT_MS", "1500"),
            ("ONOMANCER_HTTP_MAX_CONNECTIONS", "32"),
        ])
        .unwrap();
        assert_eq!(s.header_timeout, Duration::from_millis(250));
        assert_eq!(s.body_timeout, Duration::from_millis(1500));
        assert_eq!(s.max_connections, 32);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, v) in [
            ("ONOMANCER_HTTP_HEADER_TIMEOUT_MS", "0"),
            ("ONOMANCER_HTTP_BODY_TIMEOUT_MS", "5s"),
            ("ONOMANCER_HTTP_MAX_CONNECTIONS", "-1"),
        ] {
            let e = with(&[(var, v)]).unwrap_err();
            assert_eq!(e.var, var);
            assert!(e.to_string().contains("not a positive integer"), "{e}");
        }
    }

    #[test]
    fn the_default_cap_stays_below_the_open_files_limit() {
        assert_eq!(default_max_connections(Some(256)), 192);
        assert_eq!(default_max_connections(Some(1 << 20)), 1024);
        assert_eq!(default_max_connections(Some(20)), 16);
        assert_eq!(default_max_connections(None), 1024);
    }
}
