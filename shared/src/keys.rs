//! Every Redis key the project uses is spelled here, so namespacing and Cluster hash tags are
//! decided in one place.
//!
//! Queue keys share one hash tag (`{onomancer}` by default) so the queue's multi-key Lua scripts
//! are legal on Redis Cluster: the queue lives on one slot, like BullMQ's `{queue}` keys. Cache
//! and rate-limit keys are single-key operations and keep the seed's tenant-first format
//! (`{tenantId}:transform:{contentHash}:{persona}`), so they spread over the cluster.

use crate::ids::{JobId, TenantId};
use crate::job::Lane;

/// The key namespace of one deployment (or of one test).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpace {
    /// Hash tag shared by all queue keys; also the queue's namespace.
    tag: String,
    /// Prefix in front of tenant data keys (cache, rate limits); empty in production so keys are
    /// exactly the seed's format.
    data_prefix: String,
}

impl Default for KeySpace {
    fn default() -> Self {
        Self::production()
    }
}

impl KeySpace {
    /// The production layout: queue under `{onomancer}`, data keys exactly as the seed writes them.
    pub fn production() -> Self {
        Self {
            tag: "onomancer".into(),
            data_prefix: String::new(),
        }
    }

    /// A layout isolated under `name` (tests, benchmarks): every key starts with `name`, so
    /// `SCAN MATCH name*` finds everything to clean up.
    pub fn isolated(name: &str) -> Self {
        assert!(
            !name.contains(['{', '}', ' ']),
            "namespace must not contain braces or spaces"
        );
        Self {
            tag: name.to_owned(),
            data_prefix: format!("{name}:"),
        }
    }

    /// The namespace name (the hash tag without braces).
    pub fn name(&self) -> &str {
        &self.tag
    }

    /// The prefix that every queue key of this namespace starts with.
    pub fn queue_prefix(&self) -> String {
        format!("{{{}}}:", self.tag)
    }

    /// A pattern matching every key of this namespace (for cleanup of isolated spaces).
    pub fn all_keys_pattern(&self) -> Vec<String> {
        let mut v = vec![format!("{{{}}}:*", self.tag)];
        if !self.data_prefix.is_empty() {
            v.push(format!("{}*", self.data_prefix));
        }
        v
    }

    fn q(&self, rest: std::fmt::Arguments<'_>) -> String {
        format!("{{{}}}:q:{}", self.tag, rest)
    }

    /// Stream of one tenant's jobs in one lane.
    pub fn stream(&self, tenant: &TenantId, lane: Lane) -> String {
        self.q(format_args!("stream:{}:{}", lane.as_str(), tenant))
    }

    /// Set of tenants that have (or had) a stream in `lane`: workers read all of them fairly.
    pub fn lane_tenants(&self, lane: Lane) -> String {
        self.q(format_args!("tenants:{}", lane.as_str()))
    }

    /// Sorted set of delayed jobs (retries, deferrals), scored by due time in ms.
    pub fn delayed(&self) -> String {
        self.q(format_args!("delayed"))
    }

    /// Hash of delayed job bodies, by job id.
    pub fn delayed_bodies(&self) -> String {
        self.q(format_args!("delayed:bodies"))
    }

    /// Dead-letter stream (all tenants; each entry names its tenant).
    pub fn dead_letter(&self) -> String {
        self.q(format_args!("dead"))
    }

    /// Status hash of one job.
    pub fn status(&self, tenant: &TenantId, id: &JobId) -> String {
        self.q(format_args!("job:{tenant}:{id}"))
    }

    /// Idempotency record: the first job id enqueued under `key`.
    pub fn idempotency(&self, tenant: &TenantId, key: &str) -> String {
        self.q(format_args!("idem:{tenant}:{key}"))
    }

    /// Liveness lease of a worker consumer name.
    pub fn consumer_lease(&self, consumer: &str) -> String {
        self.q(format_args!("consumer:{consumer}"))
    }

    /// Leader lock for scheduler instances.
    pub fn scheduler_leader(&self) -> String {
        self.q(format_args!("scheduler:leader"))
    }

    /// Prefix for tenant-owned data keys (cache, sessions, single-flight locks).
    pub fn data(&self, tenant: &TenantId, rest: std::fmt::Arguments<'_>) -> String {
        format!("{}{}:{}", self.data_prefix, tenant, rest)
    }

    /// Sliding-window rate limiter of one tenant for one upstream service.
    pub fn rate_limit(&self, tenant: &TenantId, service: &str) -> String {
        self.data(tenant, format_args!("ratelimit:{service}"))
    }

    /// Generic key outside any tenant (e.g. a webhook delivery id), under this namespace.
    pub fn global(&self, rest: std::fmt::Arguments<'_>) -> String {
        format!("{{{}}}:{}", self.tag, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_data_keys_follow_the_seed() {
        let k = KeySpace::production();
        let t = TenantId::new("thj");
        assert_eq!(
            k.data(&t, format_args!("transform:{}:{}", "abcd", "devrel")),
            "thj:transform:abcd:devrel"
        );
        assert_eq!(
            k.stream(&t, Lane::Interactive),
            "{onomancer}:q:stream:interactive:thj"
        );
    }

    #[test]
    fn isolated_spaces_prefix_everything() {
        let k = KeySpace::isolated("t-1");
        let t = TenantId::new("thj");
        assert!(k.delayed().starts_with("{t-1}:"));
        assert!(k.rate_limit(&t, "claude").starts_with("t-1:thj:"));
    }
}
