//! The activity log: section order, build counting, clipping, the budget and its notes.

use chrono::{Duration, TimeZone, Utc};
use onomancer_shared::activity::{ActivityEvent, ActivitySource};
use onomancer_shared::TenantId;
use serde_json::json;

use super::*;

fn ev(source: ActivitySource, kind: &str, title: &str, hour: i64) -> ActivityEvent {
    ActivityEvent {
        tenant: TenantId::new("acme"),
        source,
        kind: kind.into(),
        title: title.into(),
        url: None,
        actor: None,
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap() + Duration::hours(hour),
        details: json!({}),
        dedupe_key: format!("{kind}:{title}:{hour}"),
    }
}

fn build_ev(conclusion: &str, hour: i64) -> ActivityEvent {
    let mut e = ev(
        ActivitySource::Github,
        "workflow_run.completed",
        &format!("octo-org/app CI on main: {conclusion}"),
        hour,
    );
    e.details = json!({"repo": "octo-org/app", "name": "CI", "conclusion": conclusion});
    e
}

fn period() -> (DateTime<Utc>, DateTime<Utc>) {
    let start = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
    (start, start + Duration::days(7))
}

#[test]
fn sections_come_by_importance_and_lines_by_time() {
    let events = vec![
        ev(
            ActivitySource::Linear,
            "comment.create",
            "ENG-1 a comment",
            1,
        ),
        ev(
            ActivitySource::Github,
            "pull_request.merged",
            "app #2 later merge",
            5,
        ),
        ev(ActivitySource::Github, "release.published", "app v1.0", 9),
        ev(
            ActivitySource::Github,
            "pull_request.merged",
            "app #1 first merge",
            2,
        ),
        ev(ActivitySource::Linear, "issue.update", "ENG-2 moved", 3),
        ev(
            ActivitySource::Github,
            "pull_request.opened",
            "app #3 opened",
            4,
        ),
    ];
    let input = build_input(&events, 6, period(), 10_000);
    let t = &input.text;
    let pos = |needle: &str| t.find(needle).unwrap_or_else(|| panic!("{needle} in {t}"));
    assert!(pos("## Releases published") < pos("## Pull requests merged"));
    assert!(pos("## Pull requests merged") < pos("## Linear issues"));
    assert!(pos("## Linear issues") < pos("## Pull requests opened"));
    assert!(pos("## Pull requests opened") < pos("## Linear comments"));
    assert!(pos("app #1 first merge") < pos("app #2 later merge"));
    assert!(t.contains("[opened] app #3 opened"));
    assert!(t.contains("[update] ENG-2 moved"));
    assert!(t.starts_with("Period: 2026-11-23 09:00 to 2026-11-30 09:00 (UTC). 6 events recorded."));
    assert_eq!((input.included, input.omitted), (6, 0));
    assert!(!t.contains("Note:"));
}

#[test]
fn successful_builds_are_counted_and_failures_listed() {
    let mut events: Vec<_> = (0..30).map(|h| build_ev("success", h)).collect();
    events.push(build_ev("failure", 40));
    let input = build_input(&events, 31, period(), 10_000);
    assert!(input
        .text
        .contains("- octo-org/app CI: 31 runs (1 failure, 30 success)"));
    assert!(input.text.contains("## Failed builds\n"));
    assert_eq!(input.text.matches("CI on main: failure").count(), 1);
    assert!(!input.text.contains("CI on main: success"));
    assert_eq!(input.included, 1);
}

#[test]
fn long_titles_are_clipped_to_one_line() {
    let long = format!("line one\nline two {}", "x".repeat(500));
    let mut e = ev(ActivitySource::Github, "pull_request.merged", &long, 1);
    e.actor = Some("alice".into());
    e.url = Some("https://example.test/1".into());
    let input = build_input(&[e], 1, period(), 10_000);
    let line = input.text.lines().find(|l| l.contains("line one")).unwrap();
    assert!(line.contains("line one line two xxx"));
    assert!(
        line.contains("… by alice <https://example.test/1>"),
        "{line}"
    );
    assert!(line.chars().count() < 260);
}

#[test]
fn a_short_budget_drops_the_least_important_lines_and_says_so() {
    let mut events = vec![ev(
        ActivitySource::Github,
        "release.published",
        "app v2",
        100,
    )];
    for h in 0..50 {
        events.push(ev(
            ActivitySource::Linear,
            "comment.create",
            &format!("ENG-{h} a fairly long comment title to fill the budget quickly"),
            h,
        ));
    }
    let budget = 600;
    let input = build_input(&events, 51, period(), budget);
    assert!(input.text.contains("app v2"));
    assert!(input.omitted > 0 && input.included + input.omitted == 51);
    assert!(estimate_tokens(&input.text) <= budget, "{}", input.text);
    assert!(input.text.contains(&format!(
        "Note: {} lower-priority entries were left out to fit: {} comments.",
        input.omitted, input.omitted
    )));
    // The oldest comments are kept first.
    assert!(input.text.contains("ENG-0 "));
    assert!(!input.text.contains("ENG-49 "));
}

#[test]
fn a_capped_read_is_noted() {
    let events = vec![ev(ActivitySource::Github, "release.published", "app v2", 1)];
    let input = build_input(&events, 9_000, period(), 10_000);
    assert!(input
        .text
        .contains("Note: only the first 1 of 9000 events of the period were read."));
}
