//! Notification jobs as the gateway writes them (`onomancer_shared::payloads`), dated inside the test
//! week, for recording activity.

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use onomancer_shared::{Envelope, JobId, JobKind, Lane, NewJob, TenantId};
use serde_json::{json, Value};

pub(super) fn week() -> (DateTime<Utc>, DateTime<Utc>) {
    let end = Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
    (end - ChronoDuration::days(7), end)
}

pub(super) fn day(n: i64) -> DateTime<Utc> {
    week().0 + ChronoDuration::days(n) + ChronoDuration::hours(3)
}

pub(super) fn notify_job(
    tenant: &str,
    kind: JobKind,
    key: &str,
    at: DateTime<Utc>,
    payload: Value,
) -> Envelope {
    NewJob::untyped(TenantId::new(tenant), kind, Lane::Default, &payload)
        .idempotency_key(key)
        .into_envelope(JobId::generate(), at.timestamp_millis())
}

pub(super) fn merged_pr(tenant: &str, n: u64, title: &str, at: DateTime<Utc>) -> Envelope {
    notify_job(
        tenant,
        JobKind::GithubActivity,
        &format!("github:pr{n}:activity"),
        at,
        json!({"v": 1, "delivery": format!("pr{n}"), "event": "pull_request", "action": "closed",
               "repo": "octo-org/app", "actor": "alice",
               "detail": {"type": "pull_request", "number": n, "title": title,
                          "url": format!("https://github.com/octo-org/app/pull/{n}"),
                          "merged": true, "head": "feat", "base": "main"}}),
    )
}

pub(super) fn release(tenant: &str, at: DateTime<Utc>) -> Envelope {
    notify_job(
        tenant,
        JobKind::GithubActivity,
        "github:rel:activity",
        at,
        json!({"v": 1, "delivery": "rel", "event": "release", "action": "published",
               "repo": "octo-org/app", "actor": "bob",
               "detail": {"type": "release", "tag": "v2.0.0", "name": "Search 2",
                          "url": "https://github.com/octo-org/app/releases/v2.0.0",
                          "prerelease": false, "draft": false}}),
    )
}

pub(super) fn build(
    tenant: &str,
    key: &str,
    action: &str,
    conclusion: Option<&str>,
    at: DateTime<Utc>,
) -> Envelope {
    notify_job(
        tenant,
        JobKind::BuildStatus,
        key,
        at,
        json!({"v": 1, "delivery": key, "event": "workflow_run", "action": action,
               "repo": "octo-org/app", "name": "CI", "branch": "main", "sha": "0123456789abcdef",
               "status": "completed", "conclusion": conclusion,
               "url": "https://github.com/octo-org/app/actions/runs/1"}),
    )
}

pub(super) fn linear(tenant: &str, key: &str, changed: &[&str], at: DateTime<Utc>) -> Envelope {
    notify_job(
        tenant,
        JobKind::LinearActivity,
        key,
        at,
        json!({"v": 1, "delivery": key, "action": "update", "entity": "Issue", "id": "i1",
               "identifier": "ENG-7", "title": "Index rebuild", "team": "ENG", "state": "Done",
               "url": "https://linear.app/acme/issue/ENG-7", "actor": "carol",
               "changed": changed, "created_at": at.to_rfc3339()}),
    )
}

pub(super) fn push(tenant: &str, at: DateTime<Utc>) -> Envelope {
    notify_job(
        tenant,
        JobKind::GithubActivity,
        "github:push:activity",
        at,
        json!({"v": 1, "delivery": "push", "event": "push", "action": null, "repo": "octo-org/app",
               "actor": "alice", "detail": {"type": "push", "git_ref": "refs/heads/main",
               "before": "a", "after": "b", "commits": 2, "compare": null,
               "head_message": "wip", "deleted": false}}),
    )
}
