//! Classification of GitHub's own published payload examples.

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/github/",
            $name
        ))
    };
}

fn no_docs(_: &str) -> bool {
    false
}

#[test]
fn ping_is_recognised() {
    assert_eq!(
        classify("ping", "d", fixture!("ping.json"), no_docs).unwrap(),
        Classified::Ping
    );
}

#[test]
fn workflow_runs_become_build_status() {
    let Classified::BuildStatus(job) = classify(
        "workflow_run",
        "d1",
        fixture!("workflow_run.completed.json"),
        no_docs,
    )
    .unwrap() else {
        panic!("not a build status")
    };
    assert_eq!(job.action.as_deref(), Some("completed"));
    assert_eq!(job.repo, "octo-org/octo-repo");
    assert_eq!(job.delivery, "d1");
    assert!(job.conclusion.is_some());
    assert!(job
        .url
        .as_deref()
        .unwrap()
        .starts_with("https://github.com/"));
    let Classified::BuildStatus(req) = classify(
        "workflow_run",
        "d2",
        fixture!("workflow_run.requested.json"),
        no_docs,
    )
    .unwrap() else {
        panic!("not a build status")
    };
    assert_eq!(req.action.as_deref(), Some("requested"));
}

#[test]
fn check_suites_and_statuses_become_build_status() {
    let Classified::BuildStatus(cs) = classify(
        "check_suite",
        "d",
        fixture!("check_suite.completed.json"),
        no_docs,
    )
    .unwrap() else {
        panic!("not a build status")
    };
    assert_eq!(cs.sha, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    assert_eq!(cs.conclusion.as_deref(), Some("success"));
    assert_eq!(cs.branch.as_deref(), Some("changes"));
    let Classified::BuildStatus(st) =
        classify("status", "d", fixture!("status.json"), no_docs).unwrap()
    else {
        panic!("not a build status")
    };
    assert_eq!(st.status.as_deref(), Some("success"));
    assert_eq!(st.name, "default");
    assert_eq!(st.repo, "Codertocat/Hello-World");
}

#[test]
fn pull_requests_and_releases_become_activity() {
    let Classified::Activity(pr, None) = classify(
        "pull_request",
        "d",
        fixture!("pull_request.closed.json"),
        no_docs,
    )
    .unwrap() else {
        panic!("not an activity")
    };
    match pr.detail {
        ActivityDetail::PullRequest {
            number,
            ref title,
            ref body,
            ref labels,
            ..
        } => {
            assert_eq!(number, 2);
            assert_eq!(title, "Update the README with new information.");
            // Carried for decision lines and the `decision` label.
            assert_eq!(
                body.as_deref(),
                Some("This is a pretty simple change that we need to pull into master.")
            );
            assert_eq!(labels, &["bug"]);
        }
        ref other => panic!("{other:?}"),
    }
    assert_eq!(pr.action.as_deref(), Some("closed"));
    let Classified::Activity(rel, None) =
        classify("release", "d", fixture!("release.published.json"), no_docs).unwrap()
    else {
        panic!("not an activity")
    };
    assert!(matches!(rel.detail, ActivityDetail::Release { ref tag, .. } if tag == "0.0.1"));
}

#[test]
fn a_tag_deletion_push_is_activity_without_transform() {
    let Classified::Activity(push, transform) =
        classify("push", "d", fixture!("push.json"), |_| true).unwrap()
    else {
        panic!("not an activity")
    };
    assert!(
        transform.is_none(),
        "a deleted ref has no documents to transform"
    );
    assert!(matches!(
        push.detail,
        ActivityDetail::Push { deleted: true, .. }
    ));
}

#[test]
fn a_push_touching_documents_also_becomes_a_transform() {
    let body = serde_json::json!({
        "ref": "refs/heads/main",
        "before": "1111111111111111111111111111111111111111",
        "after": "2222222222222222222222222222222222222222",
        "commits": [
            {"id": "a", "message": "docs: prd\n\nbody", "added": ["docs/prd/new.md"], "modified": ["src/lib.rs"], "removed": []},
            {"id": "b", "message": "more", "added": [], "modified": ["docs/prd/new.md", "docs/prd/old.md"], "removed": ["docs/prd/gone.md"]}
        ],
        "head_commit": {"id": "b", "message": "more", "added": [], "modified": [], "removed": []},
        "repository": {"full_name": "acme/product", "unused": {"deep": [1, 2]}},
        "pusher": {"name": "octocat", "email": "x@example.com"}
    });
    let body = serde_json::to_vec(&body).unwrap();
    let Classified::Activity(_, Some(t)) =
        classify("push", "dd", &body, |p| p.starts_with("docs/prd/")).unwrap()
    else {
        panic!("no transform")
    };
    assert_eq!(
        t.source,
        DocumentSource::GithubFiles {
            repo: "acme/product".into(),
            git_ref: "refs/heads/main".into(),
            sha: "2222222222222222222222222222222222222222".into(),
            paths: vec!["docs/prd/new.md".into(), "docs/prd/old.md".into()],
        }
    );
    assert_eq!(
        t.origin,
        Origin::GithubPush {
            delivery: "dd".into()
        }
    );
}

#[test]
fn other_events_are_ignored() {
    assert_eq!(
        classify("star", "d", b"{}", no_docs).unwrap(),
        Classified::Ignored
    );
}

#[test]
fn malformed_payloads_name_the_field() {
    let err = classify(
        "workflow_run",
        "d",
        br#"{"action":"completed","workflow_run":{"name":"ci"},"repository":{"full_name":"a/b"}}"#,
        no_docs,
    )
    .unwrap_err();
    assert!(err.to_string().contains("workflow_run"), "{err}");
    assert!(err.to_string().contains("head_sha"), "{err}");
    let err = classify("status", "d", b"{not json", no_docs).unwrap_err();
    assert!(
        err.to_string().starts_with("invalid status payload"),
        "{err}"
    );
}
