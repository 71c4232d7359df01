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

    /// The prefix of the queue's own keys (`{tag}:q:`): Lua scripts derive the keys of a lane
    /// or tenant from it, spelled as the methods below spell them.
    pub fn queue_keys_prefix(&self) -> String {
        format!("{{{}}}:q:", self.tag)
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

    /// Set of tenants that have (or had) a stream in `lane` (operator views and upkeep walk it;
    /// claiming never does).
    pub fn lane_tenants(&self, lane: Lane) -> String {
        self.q(format_args!("tenants:{}", lane.as_str()))
    }

    /// The ready index of `lane`, a list rotated by every claim: tenants whose stream may hold
    /// entries not yet delivered. A claim visits only these, so idle tenants cost nothing.
    pub fn ready(&self, lane: Lane) -> String {
        self.q(format_args!("ready:{}", lane.as_str()))
    }

    /// Membership of [`KeySpace::ready`] (a set), so a tenant is listed at most once.
    pub fn ready_set(&self, lane: Lane) -> String {
        self.q(format_args!("readyset:{}", lane.as_str()))
    }

    /// Wake list of `lane`: holds a token while the lane has ready work; idle workers wait on it
    /// with `BLPOP` instead of a blocking read over every stream.
    pub fn wake(&self, lane: Lane) -> String {
        self.q(format_args!("wake:{}", lane.as_str()))
    }

    /// Sorted set of live consumers, scored by the time (server ms) their liveness expires. The
    /// pending entries of a consumer past its expiry are reclaimed; a live one's never are.
    pub fn consumers(&self) -> String {
        self.q(format_args!("consumers"))
    }

    /// When (server ms) any consumer last renewed its liveness: a long gap means nobody could
    /// reach Redis, and the gap is given back to every consumer instead of presuming them dead.
    pub fn consumers_tick(&self) -> String {
        self.q(format_args!("consumers:tick"))
    }

    /// Set of the streams where `consumer` may have pending entries (reclaim walks only these).
    pub fn owned(&self, consumer: &str) -> String {
        self.q(format_args!("owned:{consumer}"))
    }

    /// Depth figures published by the one process that computed them last (hash: `at` and
    /// `<lane>:queued|pending|length|tenants`, `delayed`, `dead`).
    pub fn depth(&self) -> String {
        self.q(format_args!("depth"))
    }

    /// Lease of the process computing the depth figures for everyone.
    pub fn depth_lease(&self) -> String {
        self.q(format_args!("depth:lease"))
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
    fn scripts_derive_queue_keys_from_the_prefix_as_spelled_here() {
        // The Lua scripts build these from `queue_keys_prefix()`; a change here must change them.
        let k = KeySpace::isolated("ns");
        let (t, p) = (TenantId::new("acme"), k.queue_keys_prefix());
        let id = JobId::new("j1");
        assert_eq!(k.stream(&t, Lane::Bulk), format!("{p}stream:bulk:acme"));
        assert_eq!(k.status(&t, &id), format!("{p}job:acme:j1"));
        assert_eq!(k.lane_tenants(Lane::Bulk), format!("{p}tenants:bulk"));
        assert_eq!(k.ready(Lane::Default), format!("{p}ready:default"));
        assert_eq!(k.ready_set(Lane::Default), format!("{p}readyset:default"));
        assert_eq!(k.wake(Lane::Interactive), format!("{p}wake:interactive"));
        assert_eq!(k.owned("w1"), format!("{p}owned:w1"));
        assert_eq!(k.consumers_tick(), format!("{p}consumers:tick"));
    }

    #[test]
    fn isolated_spaces_prefix_everything() {
        let k = KeySpace::isolated("t-1");
        let t = TenantId::new("thj");
        assert!(k.delayed().starts_with("{t-1}:"));
        assert!(k.rate_limit(&t, "claude").starts_with("t-1:thj:"));
    }
}
