//! Decision marking rules, search terms and ranking, and the store on real SQLite and
//! PostgreSQL databases: upsert per tenant and key, tenant isolation, search, forget.

use chrono::{DateTime, TimeZone, Utc};
use onomancer_testkit::TestDb;

use super::*;
use crate::db::Database;

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap()
}

fn decision(tenant: &str, key: &str, title: &str, text: &str, day: u32) -> Decision {
    Decision {
        tenant: TenantId::new(tenant),
        source: ActivitySource::Linear,
        title: title.into(),
        text: text.into(),
        url: Some(format!("https://linear.app/acme/{key}")),
        author: Some("Alice".into()),
        decided_at: at(day),
        dedupe_key: key.into(),
    }
}

#[test]
fn marked_lines_and_their_paragraphs_are_the_decision() {
    let body = "Thanks all.\n\n**Decision:** we ship the Redis queue first.\nPostgres comes later.\n\nUnrelated note.\n- Decided: drop the v1 API\n> we decided to keep Discord";
    assert_eq!(
        marked_decisions(body).unwrap(),
        "**Decision:** we ship the Redis queue first.\nPostgres comes later.\n\n- Decided: drop the v1 API\n\n> we decided to keep Discord"
    );
    assert_eq!(
        marked_decisions("We Decided to go.").unwrap(),
        "We Decided to go."
    );
    assert_eq!(marked_decisions(""), None);
    assert_eq!(marked_decisions("No decision yet."), None);
    assert_eq!(marked_decisions("The decision: pending"), None);
    assert_eq!(marked_decisions("decisions: many"), None);
}

#[test]
fn the_decision_label_is_matched_in_any_case() {
    assert!(has_decision_label(&["bug", "Decision"]));
    assert!(!has_decision_label(&["decisions", "adr"]));
    assert!(!has_decision_label::<&str>(&[]));
}

#[test]
fn search_terms_drop_stopwords_repeats_and_punctuation() {
    assert_eq!(
        search_terms("What did we decide about the Redis queue? redis, ENG-12!"),
        vec!["redis", "queue", "eng-12"]
    );
    assert!(search_terms("the a of ?").is_empty());
    assert_eq!(search_terms(&"word ".repeat(3)).len(), 1);
    let many: String = (0..20).map(|i| format!("term{i} ")).collect();
    assert_eq!(search_terms(&many).len(), MAX_TERMS);
}

#[test]
fn titles_weigh_more_and_full_matches_win() {
    let terms = search_terms("redis queue");
    let title = decision("t", "1", "Redis queue", "something", 1);
    let text = decision("t", "2", "Infra", "redis and queue and redis", 1);
    let half = decision("t", "3", "Infra", "redis only", 1);
    assert!(score(&title, &terms) > score(&text, &terms));
    assert!(score(&text, &terms) > score(&half, &terms));
    assert_eq!(score(&decision("t", "4", "x", "y", 1), &terms), 0);
}

#[test]
fn long_titles_and_texts_are_cut_on_character_boundaries() {
    let d = decision("t", "k", &"é".repeat(300), &"ü".repeat(3_000), 1).bounded();
    assert_eq!(d.title.chars().count(), MAX_TITLE_CHARS + 1);
    assert!(d.title.ends_with('…'));
    assert_eq!(d.text.chars().count(), MAX_TEXT_CHARS + 1);
}

#[tokio::test]
async fn a_decision_is_stored_once_and_updated_by_its_source() {
    for t in TestDb::both().await {
        let store = DecisionStore::new(Database::open(&t.url).await.unwrap());
        let d = decision(
            "acme",
            "linear:comment:c1",
            "ENG-1 Queue",
            "Decision: Redis",
            3,
        );
        let id = store.record(&d).await.unwrap();
        assert_eq!(store.record(&d).await.unwrap(), id, "{}", t.url);
        // The comment was edited: same row, new text, first time kept.
        let mut edited = d.clone();
        edited.text = "Decision: Redis Streams, not Kafka".into();
        edited.decided_at = at(9);
        assert_eq!(store.record(&edited).await.unwrap(), id);
        let got = store.search(&d.tenant, "kafka", 10).await.unwrap();
        assert_eq!(got.len(), 1, "{}", t.url);
        assert_eq!(got[0].id, id);
        assert_eq!(got[0].decision.text, edited.text);
        assert_eq!(got[0].decision.decided_at, at(3));
        // Another tenant's decision with the same key is its own.
        let other = decision("other", "linear:comment:c1", "x", "Decision: Kafka", 4);
        assert_ne!(store.record(&other).await.unwrap(), id);
    }
}

#[tokio::test]
async fn search_ranks_within_the_tenant_only() {
    for t in TestDb::both().await {
        let store = DecisionStore::new(Database::open(&t.url).await.unwrap());
        let acme = TenantId::new("acme");
        for (key, title, text, day) in [
            ("k1", "Pricing", "Decision: the starter tier stays free", 1),
            (
                "k2",
                "Queue choice",
                "Decision: Redis Streams for the job queue",
                2,
            ),
            (
                "k3",
                "Infra",
                "Decided: keep one Redis per region; the queue moves later",
                5,
            ),
            (
                "k4",
                "100%_done",
                "Decision: literal percent and underscore",
                6,
            ),
        ] {
            store
                .record(&decision("acme", key, title, text, day))
                .await
                .unwrap();
        }
        store
            .record(&decision(
                "rival",
                "r1",
                "Queue",
                "Decision: queue on Kafka",
                7,
            ))
            .await
            .unwrap();

        let got = store.search(&acme, "queue redis", 10).await.unwrap();
        let keys: Vec<&str> = got.iter().map(|d| d.decision.dedupe_key.as_str()).collect();
        assert_eq!(keys, ["k2", "k3"], "{}", t.url);
        assert!(got.iter().all(|d| d.decision.tenant == acme));

        let got = store.search(&acme, "100%_done", 10).await.unwrap();
        assert_eq!(got.len(), 1, "{}", t.url);
        assert_eq!(got[0].decision.dedupe_key, "k4");
        // LIKE wildcards in a term are literal: `_` does not stand for the `n` of "done".
        let got = store.search(&acme, "do_e", 10).await.unwrap();
        assert!(got.is_empty(), "{}", t.url);

        // No terms: the newest, limited.
        let got = store.search(&acme, "the", 2).await.unwrap();
        let keys: Vec<&str> = got.iter().map(|d| d.decision.dedupe_key.as_str()).collect();
        assert_eq!(keys, ["k4", "k3"], "{}", t.url);

        assert!(store.search(&acme, "kafka", 10).await.unwrap().is_empty());
        assert!(store
            .search(&TenantId::new("nobody"), "queue", 10)
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test]
async fn a_forgotten_decision_is_no_longer_found() {
    for t in TestDb::both().await {
        let store = DecisionStore::new(Database::open(&t.url).await.unwrap());
        let d = decision("acme", "linear:comment:gone", "Gone", "Decision: x", 1);
        store.record(&d).await.unwrap();
        assert!(!store
            .forget(&TenantId::new("other"), &d.dedupe_key)
            .await
            .unwrap());
        assert!(store.forget(&d.tenant, &d.dedupe_key).await.unwrap());
        assert!(!store.forget(&d.tenant, &d.dedupe_key).await.unwrap());
        assert!(
            store
                .search(&d.tenant, "gone", 10)
                .await
                .unwrap()
                .is_empty(),
            "{}",
            t.url
        );
    }
}

#[tokio::test]
async fn a_period_lists_its_decisions_oldest_first() {
    for t in TestDb::both().await {
        let store = DecisionStore::new(Database::open(&t.url).await.unwrap());
        for (key, day) in [("late", 9), ("early", 2), ("inside", 5), ("edge", 8)] {
            store
                .record(&decision("acme", key, key, "Decision: x", day))
                .await
                .unwrap();
        }
        store
            .record(&decision("rival", "r", "r", "Decision: x", 5))
            .await
            .unwrap();
        // Half-open: day 8 at noon is the end, so "edge" is out.
        let got = store
            .between(&TenantId::new("acme"), at(2), at(8), 10)
            .await
            .unwrap();
        let keys: Vec<&str> = got.iter().map(|d| d.decision.dedupe_key.as_str()).collect();
        assert_eq!(keys, ["early", "inside"], "{}", t.url);
        let one = store
            .between(&TenantId::new("acme"), at(1), at(30), 1)
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
    }
}
