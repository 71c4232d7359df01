//! The job handler: payload to posted result, idempotent posting, unreadable sources, outcome.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use onomancer_shared::integrations::discord::{DiscordConfig, DiscordPoster};
use onomancer_shared::integrations::fetch::Fetcher;
use onomancer_shared::tenant::TenantRegistry;
use onomancer_shared::{Envelope, JobError, JobId, Lane, NewJob, TenantId};
use onomancer_testkit::discord_fake::DiscordFake;

use super::support::*;
use crate::handlers::transform::TransformHandler;
use crate::transform::{DocumentSource, Origin, TransformJob};

const APP_ID: u64 = 1_234_567_890_123;

pub(super) async fn handler(h: &Harness, discord: &DiscordFake) -> TransformHandler {
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut dc = DiscordConfig::new("bot-token".to_string().into(), APP_ID);
    dc.api_base = Some(discord.api_base());
    TransformHandler {
        engine: h.engine.clone(),
        tenants: Arc::new(TenantRegistry::load(&config_dir).expect("shipped config loads")),
        fetcher: Fetcher::default(),
        discord: Some(DiscordPoster::new(dc, h.redis.conn.clone(), h.redis.keys.clone()).unwrap()),
        google: BTreeMap::new(),
        progress: None,
    }
}

fn envelope(job: &TransformJob) -> Envelope {
    NewJob::new(TenantId::new("thj"), job)
        .lane(Lane::Interactive)
        .into_envelope(JobId::generate(), chrono::Utc::now().timestamp_millis())
}

fn discord_job(text: &str, token: &str) -> TransformJob {
    TransformJob {
        v: 1,
        source: DocumentSource::Text { text: text.into() },
        personas: vec![],
        product: Some("onomancer".into()),
        origin: Origin::Discord {
            application_id: APP_ID.to_string(),
            token: token.into(),
            channel_id: None,
        },
        user: Some("42".into()),
        title: Some("Launch PRD".into()),
    }
}

#[tokio::test]
async fn a_rerun_after_posting_posts_once_and_reports_per_persona() {
    let h = Harness::new(&shipped_prompts()).await;
    let discord = DiscordFake::start().await;
    let handler = handler(&h, &discord).await;
    let env = envelope(&discord_job(&prd(1500, "launch"), "itoken-1"));

    let out = handler.handle(&env).await.unwrap().result.unwrap();
    assert_eq!(h.claude.calls(), 4, "tenant default personas: four");
    let posted = discord.interaction_messages("itoken-1");
    assert!(!posted.is_empty());
    assert!(posted[0].original, "the deferred reply is edited first");
    let all: String = posted.iter().map(|m| m.content.as_str()).collect();
    for heading in ["## Leadership", "## Product", "## Marketing", "## Devrel"] {
        assert!(all.contains(heading), "{heading} missing");
    }
    let personas = out["documents"][0]["personas"].as_array().unwrap();
    assert_eq!(personas.len(), 4);
    assert!(personas
        .iter()
        .all(|p| p["served_by"] == "claude" && p["cost_micros"].as_i64().unwrap() > 0));
    assert!(out["cost_micros"].as_i64().unwrap() > 0);

    // At-least-once delivery: the same job runs again. Nothing new is posted or paid for.
    let again = handler.handle(&env).await.unwrap().result.unwrap();
    assert_eq!(discord.interaction_messages("itoken-1").len(), posted.len());
    assert_eq!(h.claude.calls(), 4);
    assert_eq!(again["discord_messages_posted"], 0);
    assert!(again["documents"][0]["personas"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["served_by"] == "l1"));
}

#[tokio::test]
async fn unreadable_sources_fail_terminally_with_a_clear_message() {
    let h = Harness::new(&shipped_prompts()).await;
    let discord = DiscordFake::start().await;
    let handler = handler(&h, &discord).await;
    let mut job = discord_job("", "itoken-2");
    job.source = DocumentSource::Url {
        url: "https://intranet.example.com/secret.md".into(),
    };
    match handler.handle(&envelope(&job)).await.unwrap_err() {
        JobError::Terminal { message } => {
            assert!(message.contains("cannot read the document"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    job.source = DocumentSource::Text {
        text: "  \n ".into(),
    };
    match handler.handle(&envelope(&job)).await.unwrap_err() {
        JobError::Terminal { message } => assert!(message.contains("empty"), "{message}"),
        other => panic!("{other:?}"),
    }
    job.source = DocumentSource::Text {
        text: "hello".into(),
    };
    job.personas = vec!["Not A Persona".into()];
    assert!(matches!(
        handler.handle(&envelope(&job)).await.unwrap_err(),
        JobError::Terminal { .. }
    ));
    assert_eq!(h.claude.calls(), 0);
}

#[tokio::test]
async fn api_jobs_post_nothing_and_return_the_outcome() {
    let h = Harness::new(&shipped_prompts()).await;
    let discord = DiscordFake::start().await;
    let handler = handler(&h, &discord).await;
    let mut job = discord_job("A short spec.", "unused");
    job.origin = Origin::Api;
    job.personas = vec!["devrel".into(), "devrel".into()];
    let out = handler
        .handle(&envelope(&job))
        .await
        .unwrap()
        .result
        .unwrap();
    assert!(discord.messages().is_empty());
    let personas = out["documents"][0]["personas"].as_array().unwrap();
    assert_eq!(personas.len(), 1, "duplicates collapse");
    assert_eq!(out["discord_messages_posted"], serde_json::Value::Null);
    assert_eq!(
        out["documents"][0]["content_hash"],
        onomancer_shared::cache::content_hash("A short spec.").to_string()
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn workspace_tenants_get_one_google_doc_per_persona_once() {
    use onomancer_shared::integrations::google::{GoogleClient, GoogleConfig};
    use onomancer_testkit::google_fake::GoogleFake;

    let h = Harness::new(&shipped_prompts()).await;
    let discord = DiscordFake::start().await;
    let google = GoogleFake::start().await;
    let root = google.add_shared_drive_folder("THJ");
    // The shipped config, with thj's root folder pointing at the fake's Shared Drive folder.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../config"),
        dir.path(),
    );
    let thj = dir.path().join("tenants/thj.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&thj).unwrap()).unwrap();
    v["config"]["folderIds"]["root"] = serde_json::Value::from(root.clone());
    std::fs::write(&thj, v.to_string()).unwrap();

    let mut handler = handler(&h, &discord).await;
    handler.tenants = Arc::new(TenantRegistry::load(dir.path()).unwrap());
    let client = GoogleClient::from_key_json(
        GoogleConfig::at_origin(google.origin()),
        &google.service_account_json().into(),
    )
    .unwrap();
    handler.google = BTreeMap::from([(TenantId::new("thj"), client)]);

    let mut job = discord_job("# Spec\nThe API gains a search endpoint.", "itoken-g");
    job.personas = vec!["product".into(), "devrel".into()];
    let env = envelope(&job);
    let out = handler.handle(&env).await.unwrap().result.unwrap();
    let docs = |g: &GoogleFake| {
        g.files()
            .into_iter()
            .filter(|f| f.mime_type == "application/vnd.google-apps.document")
            .collect::<Vec<_>>()
    };
    let saved = docs(&google);
    assert_eq!(saved.len(), 2, "{saved:?}");
    // Under /tenants/thj/Products/onomancer/.
    let folders = google.files();
    let product_folder = folders
        .iter()
        .find(|f| f.name == "onomancer")
        .expect("product folder");
    assert!(saved
        .iter()
        .all(|d| d.parents == vec![product_folder.id.clone()]));
    assert!(saved.iter().any(|d| d.text.contains("[devrel]")));
    for p in out["documents"][0]["personas"].as_array().unwrap() {
        assert!(p["doc_link"]
            .as_str()
            .unwrap()
            .starts_with("https://docs.google.com/document/d/"));
    }
    // The job runs again: no second document, no second post.
    handler.handle(&env).await.unwrap();
    assert_eq!(docs(&google).len(), 2);
    let all: String = discord
        .interaction_messages("itoken-g")
        .iter()
        .map(|m| m.content.clone())
        .collect();
    assert!(all.contains("[Google Doc](https://docs.google.com/document/d/"));
}
