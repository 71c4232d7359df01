//! Activity for weekly digests, taken from the same notification jobs: finished builds, pull
//! requests opened/merged/closed, published releases, and Linear issue, comment and project
//! changes become [`ActivityEvent`]s in the tenant's activity store. Pushes, unfinished builds
//! and cosmetic Linear edits are not kept (pull requests and releases say what shipped).
//!
//! The dedupe key is the job's idempotency key (the webhook delivery), so a job that runs twice,
//! or a webhook delivered twice, stores one event.

use chrono::{DateTime, TimeZone, Utc};
use onomancer_shared::activity::{ActivityEvent, ActivitySource, ActivityStore};
use onomancer_shared::{Envelope, JobError, JobKind};
use serde_json::json;

use super::{ActivityDetail, BuildStatus, GithubActivity, LinearActivity};

/// Linear update fields worth a line in a digest (others: ordering, descriptions, timestamps).
const LINEAR_FIELDS: &[&str] = &[
    "stateId",
    "statusId",
    "state",
    "assigneeId",
    "priority",
    "title",
    "name",
    "dueDate",
    "targetDate",
    "projectId",
    "cycleId",
    "estimate",
    "leadId",
];

/// What a stored event says, before the job's tenant, time and key are added.
struct Activity {
    source: ActivitySource,
    kind: String,
    title: String,
    url: Option<String>,
    actor: Option<String>,
    occurred_at: Option<DateTime<Utc>>,
    details: serde_json::Value,
}

fn build_activity(b: BuildStatus) -> Option<Activity> {
    let (kind, outcome) = match b.event.as_str() {
        "status" => match b.status.as_deref() {
            Some(s @ ("success" | "failure" | "error")) => (format!("status.{s}"), s.to_owned()),
            _ => return None,
        },
        event if b.action.as_deref() == Some("completed") => (
            format!("{event}.completed"),
            b.conclusion.clone().unwrap_or_else(|| "completed".into()),
        ),
        _ => return None,
    };
    let branch = b
        .branch
        .as_deref()
        .map(|br| format!(" on {br}"))
        .unwrap_or_default();
    Some(Activity {
        source: ActivitySource::Github,
        kind,
        title: format!("{} {}{branch}: {outcome}", b.repo, b.name),
        url: b.url,
        actor: None,
        occurred_at: None,
        details: json!({"repo": b.repo, "name": b.name, "branch": b.branch, "sha": b.sha,
                        "conclusion": outcome}),
    })
}

fn github_activity(a: GithubActivity) -> Option<Activity> {
    let action = a.action.as_deref().unwrap_or("");
    let (kind, title, url, details) = match a.detail {
        ActivityDetail::PullRequest {
            number,
            title,
            url,
            merged,
            ..
        } => {
            let what = match (action, merged) {
                ("closed", true) => "merged",
                ("closed", false) => "closed",
                (a @ ("opened" | "reopened" | "ready_for_review"), _) => a,
                _ => return None,
            };
            (
                format!("pull_request.{what}"),
                format!("{} #{number} {title}", a.repo),
                url,
                json!({"repo": a.repo, "number": number, "merged": merged}),
            )
        }
        ActivityDetail::Release {
            tag,
            name,
            url,
            prerelease,
            draft,
        } => {
            if draft || !matches!(action, "published" | "released") {
                return None;
            }
            let title = match name.as_deref().filter(|n| !n.trim().is_empty()) {
                Some(n) => format!("{} {tag}: {n}", a.repo),
                None => format!("{} {tag}", a.repo),
            };
            (
                "release.published".to_owned(),
                title,
                url,
                json!({"repo": a.repo, "tag": tag, "prerelease": prerelease}),
            )
        }
        ActivityDetail::Push { .. } => return None,
    };
    Some(Activity {
        source: ActivitySource::Github,
        kind,
        title,
        url: Some(url),
        actor: a.actor,
        occurred_at: None,
        details,
    })
}

fn linear_activity(l: LinearActivity) -> Option<Activity> {
    let keep = match (l.entity.as_str(), l.action.as_str()) {
        ("Issue" | "Project", "create" | "remove") | ("Comment", "create") => true,
        ("Issue" | "Project", "update") => l
            .changed
            .iter()
            .any(|c| LINEAR_FIELDS.contains(&c.as_str())),
        _ => false,
    };
    if !keep {
        return None;
    }
    let title = match (&l.identifier, &l.title) {
        (Some(id), Some(t)) => format!("{id} {t}"),
        (Some(id), None) => id.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => l.entity.clone(),
    };
    let occurred_at = l
        .created_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    Some(Activity {
        source: ActivitySource::Linear,
        kind: format!("{}.{}", l.entity.to_lowercase(), l.action),
        title,
        url: l.url,
        actor: l.actor,
        occurred_at,
        details: json!({"entity": l.entity, "identifier": l.identifier, "team": l.team,
                        "state": l.state, "changed": l.changed}),
    })
}

/// The event a notification job contributes to digests (`None`: nothing worth keeping).
pub(crate) fn activity_of(job: &Envelope) -> Result<Option<ActivityEvent>, JobError> {
    let activity = match &job.kind {
        JobKind::BuildStatus => build_activity(job.payload_as()?),
        JobKind::GithubActivity => github_activity(job.payload_as()?),
        JobKind::LinearActivity => linear_activity(job.payload_as()?),
        _ => None,
    };
    Ok(activity.map(|a| {
        let key = match &job.idempotency_key {
            Some(k) => format!("{}:{k}", job.kind),
            None => format!("{}:job:{}", job.kind, job.id),
        };
        let enqueued = Utc
            .timestamp_millis_opt(job.created_ms)
            .single()
            .unwrap_or_else(Utc::now);
        ActivityEvent {
            tenant: job.tenant.clone(),
            source: a.source,
            kind: a.kind,
            title: a.title,
            url: a.url,
            actor: a.actor,
            occurred_at: a.occurred_at.unwrap_or(enqueued),
            details: a.details,
            dedupe_key: key,
        }
    }))
}

/// Stores the activity of a `github.build_status`, `github.activity` or `linear.activity` job
/// (once, however often the job runs). Returns whether a new event was stored. Call it before
/// notifying, so activity is kept even where Discord is not configured.
pub async fn record_activity(store: &ActivityStore, job: &Envelope) -> Result<bool, JobError> {
    match activity_of(job)? {
        Some(event) => Ok(store.record(&event).await?),
        None => Ok(false),
    }
}
