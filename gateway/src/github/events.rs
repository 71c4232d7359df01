//! GitHub webhook payload DTOs (only the fields used; everything else is ignored) and the
//! classification of an event into the jobs it creates.

use serde::Deserialize;

use onomancer_shared::payloads::{
    bounded_body, ActivityDetail, BuildStatusJob, GithubActivityJob, PAYLOAD_VERSION,
};
use onomancer_shared::transform_job::{DocumentSource, Origin, TransformJob};

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

#[derive(Deserialize)]
struct WorkflowRunEvent {
    action: String,
    workflow_run: WorkflowRun,
    repository: Repository,
}

#[derive(Deserialize)]
struct WorkflowRun {
    name: Option<String>,
    head_branch: Option<String>,
    head_sha: String,
    status: Option<String>,
    conclusion: Option<String>,
    html_url: Option<String>,
}

#[derive(Deserialize)]
struct CheckSuiteEvent {
    action: String,
    check_suite: CheckSuite,
    repository: Repository,
}

#[derive(Deserialize)]
struct CheckSuite {
    head_branch: Option<String>,
    head_sha: String,
    status: Option<String>,
    conclusion: Option<String>,
    app: Option<App>,
}

#[derive(Deserialize)]
struct App {
    name: String,
}

#[derive(Deserialize)]
struct StatusEvent {
    sha: String,
    state: String,
    context: String,
    target_url: Option<String>,
    #[serde(default)]
    branches: Vec<Branch>,
    repository: Repository,
}

#[derive(Deserialize)]
struct Branch {
    name: String,
}

#[derive(Deserialize)]
struct PullRequestEvent {
    action: String,
    number: u64,
    pull_request: PullRequest,
    repository: Repository,
    sender: Option<User>,
}

#[derive(Deserialize)]
struct PullRequest {
    title: String,
    html_url: String,
    #[serde(default)]
    merged: Option<bool>,
    head: Option<GitRef>,
    base: Option<GitRef>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    labels: Vec<Label>,
}

#[derive(Deserialize)]
struct Label {
    name: String,
}

#[derive(Deserialize)]
struct GitRef {
    #[serde(rename = "ref")]
    name: String,
}

#[derive(Deserialize)]
struct ReleaseEvent {
    action: String,
    release: Release,
    repository: Repository,
    sender: Option<User>,
}

#[derive(Deserialize)]
struct Release {
    tag_name: String,
    name: Option<String>,
    html_url: String,
    #[serde(default)]
    prerelease: bool,
    #[serde(default)]
    draft: bool,
}

#[derive(Deserialize)]
struct PushEvent {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    #[serde(default)]
    deleted: bool,
    compare: Option<String>,
    #[serde(default)]
    commits: Vec<Commit>,
    head_commit: Option<Commit>,
    repository: Repository,
    pusher: Option<Pusher>,
}

#[derive(Deserialize)]
struct Commit {
    #[serde(default)]
    message: String,
    #[serde(default)]
    added: Vec<String>,
    #[serde(default)]
    modified: Vec<String>,
}

#[derive(Deserialize)]
struct Pusher {
    name: String,
}

/// What one delivery turns into.
#[derive(Debug, PartialEq)]
pub enum Classified {
    /// `ping`: answer 200, nothing to do.
    Ping,
    /// A build-status job.
    BuildStatus(BuildStatusJob),
    /// An activity job, and for a push touching documents also a transform job.
    Activity(Box<GithubActivityJob>, Option<TransformJob>),
    /// An event the product does not use: acknowledged, counted, ignored.
    Ignored,
}

/// The payload is not what the event header promised; the message is serde's, with the path of
/// the offending field (`workflow_run.head_sha: missing field`).
#[derive(Debug, thiserror::Error)]
#[error("invalid {event} payload: {message}")]
pub struct PayloadError {
    /// `X-GitHub-Event`.
    pub event: String,
    /// What is wrong, and where.
    pub message: String,
}

fn parse<'a, T: Deserialize<'a>>(event: &str, body: &'a [u8]) -> Result<T, PayloadError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| PayloadError {
        event: event.to_owned(),
        message: if e.path().to_string() == "." {
            e.inner().to_string()
        } else {
            format!("{}: {}", e.path(), e.inner())
        },
    })
}

/// Turns a delivery into jobs. `is_document` says whether a pushed path is one of the tenant's
/// documents.
pub fn classify(
    event: &str,
    delivery: &str,
    body: &[u8],
    is_document: impl Fn(&str) -> bool,
) -> Result<Classified, PayloadError> {
    let activity = |action: Option<String>, repo: String, actor: Option<String>, detail| {
        Box::new(GithubActivityJob {
            v: PAYLOAD_VERSION,
            delivery: delivery.to_owned(),
            event: event.to_owned(),
            action,
            repo,
            actor,
            detail,
        })
    };
    let build = |action, repo, name, branch, sha, status, conclusion, url| BuildStatusJob {
        v: PAYLOAD_VERSION,
        delivery: delivery.to_owned(),
        event: event.to_owned(),
        action,
        repo,
        name,
        branch,
        sha,
        status,
        conclusion,
        url,
    };
    Ok(match event {
        "ping" => Classified::Ping,
        "workflow_run" => {
            let e: WorkflowRunEvent = parse(event, body)?;
            let r = e.workflow_run;
            Classified::BuildStatus(build(
                Some(e.action),
                e.repository.full_name,
                r.name.unwrap_or_else(|| "workflow".into()),
                r.head_branch,
                r.head_sha,
                r.status,
                r.conclusion,
                r.html_url,
            ))
        }
        "check_suite" => {
            let e: CheckSuiteEvent = parse(event, body)?;
            let s = e.check_suite;
            Classified::BuildStatus(build(
                Some(e.action),
                e.repository.full_name,
                s.app.map_or_else(|| "check suite".into(), |a| a.name),
                s.head_branch,
                s.head_sha,
                s.status,
                s.conclusion,
                None,
            ))
        }
        "status" => {
            let e: StatusEvent = parse(event, body)?;
            Classified::BuildStatus(build(
                None,
                e.repository.full_name,
                e.context,
                e.branches.into_iter().next().map(|b| b.name),
                e.sha,
                Some(e.state),
                None,
                e.target_url,
            ))
        }
        "pull_request" => {
            let e: PullRequestEvent = parse(event, body)?;
            let pr = e.pull_request;
            Classified::Activity(
                activity(
                    Some(e.action),
                    e.repository.full_name,
                    e.sender.map(|u| u.login),
                    ActivityDetail::PullRequest {
                        number: e.number,
                        title: pr.title,
                        url: pr.html_url,
                        merged: pr.merged.unwrap_or(false),
                        head: pr.head.map(|r| r.name),
                        base: pr.base.map(|r| r.name),
                        body: bounded_body(pr.body),
                        labels: pr.labels.into_iter().map(|l| l.name).collect(),
                    },
                ),
                None,
            )
        }
        "release" => {
            let e: ReleaseEvent = parse(event, body)?;
            let r = e.release;
            Classified::Activity(
                activity(
                    Some(e.action),
                    e.repository.full_name,
                    e.sender.map(|u| u.login),
                    ActivityDetail::Release {
                        tag: r.tag_name,
                        name: r.name.filter(|n| !n.is_empty()),
                        url: r.html_url,
                        prerelease: r.prerelease,
                        draft: r.draft,
                    },
                ),
                None,
            )
        }
        "push" => {
            let e: PushEvent = parse(event, body)?;
            let deleted = e.deleted || e.after.bytes().all(|b| b == b'0');
            let mut paths: Vec<String> = Vec::new();
            if !deleted {
                for c in &e.commits {
                    for p in c.added.iter().chain(&c.modified) {
                        if is_document(p) && !paths.contains(p) {
                            paths.push(p.clone());
                        }
                    }
                }
            }
            let transform = (!paths.is_empty()).then(|| TransformJob {
                v: PAYLOAD_VERSION,
                source: DocumentSource::GithubFiles {
                    repo: e.repository.full_name.clone(),
                    git_ref: e.git_ref.clone(),
                    sha: e.after.clone(),
                    paths,
                },
                personas: Vec::new(),
                product: None,
                origin: Origin::GithubPush {
                    delivery: delivery.to_owned(),
                },
                user: None,
                title: None,
            });
            let head_message = e
                .head_commit
                .as_ref()
                .and_then(|c| c.message.lines().next().map(str::to_owned));
            Classified::Activity(
                activity(
                    None,
                    e.repository.full_name,
                    e.pusher.map(|p| p.name),
                    ActivityDetail::Push {
                        git_ref: e.git_ref,
                        before: e.before,
                        after: e.after,
                        commits: u32::try_from(e.commits.len()).unwrap_or(u32::MAX),
                        compare: e.compare,
                        head_message,
                        deleted,
                    },
                ),
                transform,
            )
        }
        _ => Classified::Ignored,
    })
}

#[cfg(test)]
mod tests;
