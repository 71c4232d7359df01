//! Cache configuration, shaped like the seed's `CACHE_CONFIG` (camelCase JSON, so it can live in
//! `config/defaults.json` under `cache`), and the data types whose L2 TTLs it sets.

use std::collections::BTreeMap;
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

/// The whole cache configuration (`cache` in `config/defaults.json`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct CacheConfig {
    /// The in-process tier.
    pub l1: L1Config,
    /// The Redis tier.
    pub l2: L2Config,
    /// Serving stale entries while one refresh runs in the background.
    pub stale_while_revalidate: SwrConfig,
    /// Cross-worker single-flight locking.
    pub single_flight: FlightConfig,
}

/// L1: in-process, bounded, short-lived.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
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
#[serde(rename_all = "camelCase", default)]
pub struct L2Config {
    /// Seconds by data type name (`transformation`, `linearIssue`, `githubPR`, `folderIds`,
    /// `userRoles`, `summary`); missing names use the seed's values.
    pub ttl_seconds: BTreeMap<String, u64>,
}

impl L2Config {
    /// The TTL for `data_type`.
    pub fn ttl(&self, data_type: DataType) -> Duration {
        let secs = self
            .ttl_seconds
            .get(data_type.config_name())
            .copied()
            .unwrap_or_else(|| data_type.default_l2_ttl_secs());
        Duration::from_secs(secs.max(1))
    }
}

/// Stale-while-revalidate.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
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

/// Single-flight lock timing.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
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

impl From<&crate::tenant::CacheConfig> for CacheConfig {
    /// The `cache` section of `config/defaults.json` as loaded by the tenant registry;
    /// single-flight timing keeps its defaults.
    fn from(c: &crate::tenant::CacheConfig) -> Self {
        let t = &c.l2.ttl_seconds;
        let ttl_seconds = [
            ("transformation", t.transformation),
            ("summary", t.transformation),
            ("linearIssue", t.linear_issue),
            ("githubPR", t.github_pr),
            ("folderIds", t.folder_ids),
            ("userRoles", t.user_roles),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Self {
            l1: L1Config {
                max_size: c.l1.max_size,
                ttl_ms: c.l1.ttl_ms,
            },
            l2: L2Config { ttl_seconds },
            stale_while_revalidate: SwrConfig {
                max_stale_ms: c.stale_while_revalidate.max_stale_ms,
                background_refresh_enabled: c.stale_while_revalidate.background_refresh_enabled,
            },
            single_flight: FlightConfig::default(),
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
        assert_eq!(c.l1, L1Config::default());
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
}
