//! The week's recorded decisions in a digest.

use onomancer_shared::activity::ActivitySource;
use onomancer_shared::decisions::Decision;

use super::*;

#[tokio::test]
async fn the_weeks_decisions_lead_the_log_and_alone_are_not_a_quiet_week() {
    let s = setup(TestDb::sqlite().await).await;
    let store = s.handler.decisions.clone().unwrap();
    let decision = |tenant: &str, key: &str, text: &str, at| Decision {
        tenant: TenantId::new(tenant),
        source: ActivitySource::Linear,
        title: "ENG-12 Pick the queue".into(),
        text: text.into(),
        url: Some("https://linear.app/acme/issue/ENG-12".into()),
        author: Some("Bob".into()),
        decided_at: at,
        dedupe_key: key.into(),
    };
    store
        .record(&decision(
            "acme",
            "in",
            "Decision: Redis Streams for jobs",
            day(2),
        ))
        .await
        .unwrap();
    store
        .record(&decision(
            "acme",
            "old",
            "Decision: an older one",
            week().0 - ChronoDuration::hours(1),
        ))
        .await
        .unwrap();
    store
        .record(&decision(
            "globex",
            "other",
            "Decision: globex's own",
            day(2),
        ))
        .await
        .unwrap();
    let out = s
        .handler
        .handle(&digest_job("acme", "product", None))
        .await
        .unwrap()
        .result
        .unwrap();
    assert_eq!(out["written_by"], "claude", "a decision is news: {out}");
    assert_eq!(out["events"], 1);
    let ask = s.claude.requests()[0].body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ask.contains("## Decisions recorded\n- "), "{ask}");
    assert!(
        ask.contains("[linear] ENG-12 Pick the queue: Decision: Redis Streams for jobs by Bob <https://linear.app/acme/issue/ENG-12>"),
        "{ask}"
    );
    assert!(
        !ask.contains("older one") && !ask.contains("globex"),
        "{ask}"
    );
}
