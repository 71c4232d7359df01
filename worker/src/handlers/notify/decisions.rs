//! Decisions taken from the same notification jobs (the rules are in
//! `onomancer_shared::decisions`):
//! - a merged pull request labelled `decision`, or with a `Decision:` line in its description;
//! - a Linear comment with a `Decision:` line (an edit updates it; an edit that drops the line, or
//!   removing the comment, forgets it);
//! - a Linear issue or project labelled `decision` (removing the label or the item forgets it).
//!
//! Dedupe keys name the origin, so a redelivered webhook or a rerun job changes nothing.

use chrono::{DateTime, TimeZone, Utc};
use onomancer_shared::activity::ActivitySource;
use onomancer_shared::decisions::{
    has_decision_label, marked_decisions, Decision, DecisionStore, MAX_TEXT_CHARS,
};
use onomancer_shared::{Envelope, JobError, JobKind, TenantId};

use super::{ActivityDetail, GithubActivity, LinearActivity};

/// What a job does to the tenant's decisions.
#[derive(Debug, PartialEq)]
pub(crate) enum Change {
    /// Store (or update) this decision.
    Record(Decision),
    /// Remove the decision with this key, if there is one.
    Forget(String),
}

/// The first paragraph of `body`, for a labelled item without marked lines.
fn first_paragraph(body: &str) -> Option<String> {
    let p = body.split("\n\n").map(str::trim).find(|p| !p.is_empty())?;
    Some(p.chars().take(MAX_TEXT_CHARS).collect())
}

fn github_change(tenant: &TenantId, at: DateTime<Utc>, a: GithubActivity) -> Option<Change> {
    let ActivityDetail::PullRequest {
        number,
        title,
        url,
        merged,
        body,
        labels,
        ..
    } = a.detail
    else {
        return None;
    };
    // Only what shipped was decided: an open or unmerged pull request is a proposal.
    if !(merged && a.action.as_deref() == Some("closed")) {
        return None;
    }
    let marked = body.as_deref().and_then(marked_decisions);
    let text = match (marked, has_decision_label(&labels)) {
        (Some(m), _) => m,
        (None, true) => body
            .as_deref()
            .and_then(first_paragraph)
            .unwrap_or_else(|| title.clone()),
        (None, false) => return None,
    };
    Some(Change::Record(Decision {
        tenant: tenant.clone(),
        source: ActivitySource::Github,
        title: format!("{} #{number} {title}", a.repo),
        text,
        url: Some(url),
        author: a.actor,
        decided_at: at,
        dedupe_key: format!("github:pr:{}#{number}", a.repo),
    }))
}

fn linear_change(tenant: &TenantId, at: DateTime<Utc>, l: LinearActivity) -> Option<Change> {
    let id = l.id.as_deref()?;
    let entity = l.entity.to_lowercase();
    if !matches!(entity.as_str(), "comment" | "issue" | "project") {
        return None;
    }
    let key = format!("linear:{entity}:{id}");
    if l.action == "remove" {
        return Some(Change::Forget(key));
    }
    let body = l.body.as_deref().unwrap_or("");
    let text = if entity == "comment" {
        match marked_decisions(body) {
            Some(m) => m,
            // An edit that removed the line: the comment no longer records a decision.
            None if l.action == "update" => return Some(Change::Forget(key)),
            None => return None,
        }
    } else if has_decision_label(&l.labels) {
        marked_decisions(body)
            .or_else(|| first_paragraph(body))
            .or_else(|| l.title.clone())
            .unwrap_or_else(|| l.entity.clone())
    } else if l.action == "update" && l.changed.iter().any(|c| c == "labelIds") {
        // The label was taken off.
        return Some(Change::Forget(key));
    } else {
        return None;
    };
    let title = match (&l.identifier, &l.title) {
        (Some(i), Some(t)) => format!("{i} {t}"),
        (Some(i), None) => i.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => l.entity.clone(),
    };
    let decided_at = l
        .created_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(at, |t| t.with_timezone(&Utc));
    Some(Change::Record(Decision {
        tenant: tenant.clone(),
        source: ActivitySource::Linear,
        title,
        text,
        url: l.url,
        author: l.actor,
        decided_at,
        dedupe_key: key,
    }))
}

/// What `job` changes in the tenant's decisions (`None`: nothing).
pub(crate) fn change_of(job: &Envelope) -> Result<Option<Change>, JobError> {
    let at = Utc
        .timestamp_millis_opt(job.created_ms)
        .single()
        .unwrap_or_else(Utc::now);
    Ok(match &job.kind {
        JobKind::GithubActivity => github_change(&job.tenant, at, job.payload_as()?),
        JobKind::LinearActivity => linear_change(&job.tenant, at, job.payload_as()?),
        _ => None,
    })
}

/// Applies what a `github.activity` or `linear.activity` job says about decisions. Returns
/// whether it recorded or updated one. Idempotent: the key names the origin.
pub async fn record_decision(store: &DecisionStore, job: &Envelope) -> Result<bool, JobError> {
    match change_of(job)? {
        Some(Change::Record(d)) => {
            store.record(&d).await?;
            Ok(true)
        }
        Some(Change::Forget(key)) => {
            store.forget(&job.tenant, &key).await?;
            Ok(false)
        }
        None => Ok(false),
    }
}
