//! Cache configuration: the type of the `cache` section of `config/defaults.json` (the seed's
//! `CACHE_CONFIG`, plus optional single-flight timing), used as is by the tiers, and the data
//! types whose L2 TTLs it sets.

use std::time::Duration;

use serde::Deserialize;

/// What a cached value is; picks the key segment, the L2 TTL and whether L3 keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    /// A persona version of a document (`{tenant}:transform:{hash}:{persona}`).
    Transformation,
    /// A summary of one section of a long document (`{tenant}:summary:{hash}:{model}`).
    Summary,
    /// A Linear issue snapshot.
    LinearIssue,
    /// A GitHub pull request snapshot.
    GithubPr,
    /// Drive folder ids of a tenant.
    FolderIds,
    /// Discord roles of a user.
    UserRoles,
}

impl DataType {
    /// The key segment after the tenant id.
    pub fn key_segment(self) -> &'static str {
        match self {
            DataType::Transformation => "transform",
            DataType::Summary => "summary",
            DataType::LinearIssue => "linear-issue",
            DataType::GithubPr => "github-pr",
            DataType::FolderIds => "folder-ids",
            DataType::UserRoles => "user-roles",
        }
    }

    /// The name under `l2.ttlSeconds` in the configuration.
    pub fn config_name(self) -> &'static str {
        match self {
            DataType::Transformation => "transformation",
            DataType::Summary => "summary",
            DataType::LinearIssue => "linearIssue",
            DataType::GithubPr => "githubPR",
            DataType::FolderIds => "folderIds",
            DataType::UserRoles => "userRoles",
        }
    }

    /// Whether the permanent tier (L3) keeps this type: generated text does, snapshots of other
    /// systems do not (they go stale).
    pub fn permanent(self) -> bool {
        matches!(self, DataType::Transformation | DataType::Summary)
    }

    /// The seed's L2 TTL for this type (summaries live as long as transformations).
    pub fn default_l2_ttl_secs(self) -> u64 {
        match self {
            DataType::Transformation | DataType::Summary => 3600,
            DataType::LinearIssue => 300,
            DataType::GithubPr => 600,
            DataType::FolderIds | DataType::UserRoles => 3600,
        }
    }
}

/// The `cache` section of `config/defaults.json`, the seed's `CACHE_CONFIG` (the tenant loader
/// reads it into `Defaults`; unknown fields are refused). `singleFlight` is optional; the other
/// sections are required, as in the seed.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheConfig {
    /// The in-process tier.
    pub l1: L1Config,
    /// The Redis tier.
    pub l2: L2Config,
    /// Serving stale entries while one refresh runs in the background.
    pub stale_while_revalidate: SwrConfig,
    /// Cross-worker single-flight locking (`singleFlight`, optional).
    #[serde(default)]
    pub single_flight: FlightConfig,
}

/// L1: in-process, bounded, short-lived.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct L1Config {
    /// Maximum entries (seed: 100).
    pub max_size: u64,
    /// Time to live in ms (seed: 5 minutes).
    pub ttl_ms: u64,
}

impl Default for L1Config {
    fn default() -> Self {
        Self {
            max_size: 100,
            ttl_ms: 5 * 60 * 1000,
        }
    }
}

/// L2: Redis, TTL per data type.
#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct L2Config {
    /// Seconds per data type.
    pub ttl_seconds: L2Ttls,
}

/// L2 TTLs in seconds, per kind of cached entry (`l2.ttlSeconds`; every name is required).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct L2Ttls {
    /// Persona transforms (and section summaries, which live as long).
    pub transformation: u64,
    /// Linear issues.
    pub linear_issue: u64,
    /// GitHub pull requests.
    #[serde(rename = "githubPR")]
    pub github_pr: u64,
    /// Google Drive folder ids.
    pub folder_ids: u64,
    /// Discord user roles.
    pub user_roles: u64,
}

impl Default for L2Ttls {
    /// The seed's TTLs.
    fn default() -> Self {
        let secs = DataType::default_l2_ttl_secs;
        Self {
            transformation: secs(DataType::Transformation),
            linear_issue: secs(DataType::LinearIssue),
            github_pr: secs(DataType::GithubPr),
            folder_ids: secs(DataType::FolderIds),
            user_roles: secs(DataType::UserRoles),
        }
    }
}

impl L2Config {
    /// The TTL for `data_type` (at least a second).
    pub fn ttl(&self, data_type: DataType) -> Duration {
        let t = &self.ttl_seconds;
        let secs = match data_type {
            DataType::Transformation | DataType::Summary => t.transformation,
            DataType::LinearIssue => t.linear_issue,
            DataType::GithubPr => t.github_pr,
            DataType::FolderIds => t.folder_ids,
            DataType::UserRoles => t.user_roles,
        };
        Duration::from_secs(secs.max(1))
    }
}

/// Stale-while-revalidate.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SwrConfig {
    /// Entries younger than this are fresh (seed: 5 minutes).
    pub max_stale_ms: u64,
    /// When false, stale entries are refreshed in the foreground.
    pub background_refresh_enabled: bool,
}

impl Default for SwrConfig {
    fn default() -> Self {
        Self {
            max_stale_ms: 300_000,
            background_refresh_enabled: true,
        }
    }
}

/// Single-flight lock timing (`cache.singleFlight`; each field optional).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FlightConfig {
    /// Lease of the computing worker's lock; renewed every third of it while it works, so a
    /// crashed holder blocks others for at most this long.
    pub lease_ms: u64,
    /// Longest a waiter waits for another worker's result before computing itself.
    pub max_wait_ms: u64,
}

impl Default for FlightConfig {
    fn default() -> Self {
        Self {
            lease_ms: 10_000,
            max_wait_ms: 300_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_shape() {
        let c: CacheConfig = serde_json::from_str(
            r#"{"l1":{"maxSize":100,"ttlMs":300000},
                "l2":{"ttlSeconds":{"transformation":3600,"linearIssue":300,"githubPR":600,
                                    "folderIds":3600,"userRoles":3600}},
                "staleWhileRevalidate":{"maxStaleMs":300000,"backgroundRefreshEnabled":true}}"#,
        )
        .unwrap();
        assert_eq!(c, CacheConfig::default());
        assert_eq!(c.l2.ttl(DataType::GithubPr), Duration::from_secs(600));
        assert_eq!(c.l2.ttl(DataType::Summary), Duration::from_secs(3600));
        assert_eq!(
            CacheConfig::default()
                .l2
                .ttl(DataType::LinearIssue)
                .as_secs(),
            300
        );
    }

    #[test]
    fn single_flight_timing_is_optional_and_settable() {
        let mut v = serde_json::json!({
            "l1": {"maxSize": 100, "ttlMs": 300000},
            "l2": {"ttlSeconds": {"transformation": 3600, "linearIssue": 300, "githubPR": 600,
                                  "folderIds": 3600, "userRoles": 3600}},
            "staleWhileRevalidate": {"maxStaleMs": 300000, "backgroundRefreshEnabled": true},
            "singleFlight": {"leaseMs": 2000}
        });
        let c: CacheConfig = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(c.single_flight.lease_ms, 2000);
        assert_eq!(
            c.single_flight.max_wait_ms,
            FlightConfig::default().max_wait_ms
        );
        v["singleFlight"]["leaseMS"] = serde_json::json!(1);
        let e = serde_json::from_value::<CacheConfig>(v).unwrap_err();
        assert!(e.to_string().contains("unknown field `leaseMS`"), "{e}");
    }
}
