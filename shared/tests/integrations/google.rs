//! The Google client against the Google fake: JWT grant and token cache, the tenant's folder tree,
//! idempotent documents, export, and error mapping.

use std::time::Duration;

use onomancer_shared::integrations::google::{
    ExportFormat, GoogleClient, GoogleConfig, NewDocument, DOCUMENT_MIME, FOLDER_MIME,
    KEY_PROPERTY, QUOTA_WAIT,
};
use onomancer_shared::upstream::UpstreamPause;
use onomancer_shared::{JobError, TenantId};
use onomancer_testkit::google_fake::{GoogleFake, TEST_SERVICE_ACCOUNT};
use secrecy::SecretString;

fn client(fake: &GoogleFake) -> GoogleClient {
    GoogleClient::from_key_json(
        GoogleConfig::at_origin(fake.origin()),
        &SecretString::from(fake.service_account_json()),
    )
    .expect("client")
}

#[tokio::test]
async fn product_folder_path_is_created_once_under_the_shared_drive_root() {
    let fake = GoogleFake::start().await;
    let root = fake.add_shared_drive_folder("Onomancer");
    let google = client(&fake);
    let tenant = TenantId::new("thj");

    let first = google
        .ensure_product_folder(&root, &tenant, "Mibera")
        .await
        .unwrap();
    let second = google
        .ensure_product_folder(&root, &tenant, "Mibera")
        .await
        .unwrap();
    let other = google
        .ensure_product_folder(&root, &tenant, "Henlo")
        .await
        .unwrap();

    assert_eq!(first, second);
    assert_ne!(first, other);
    let folders: Vec<_> = fake
        .files()
        .into_iter()
        .filter(|f| f.mime_type == FOLDER_MIME)
        .collect();
    let names: Vec<&str> = folders.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["Onomancer", "tenants", "thj", "Products", "Mibera", "Henlo"]
    );
    let by_name = |n: &str| folders.iter().find(|f| f.name == n).unwrap().clone();
    assert_eq!(by_name("tenants").parents, [root.as_str()]);
    assert_eq!(by_name("thj").parents, [by_name("tenants").id]);
    assert_eq!(by_name("Mibera").parents, [by_name("Products").id]);
    let list = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "GET")
        .unwrap();
    assert!(
        list.uri.contains("supportsAllDrives=true")
            && list.uri.contains("includeItemsFromAllDrives=true"),
        "{}",
        list.uri
    );
    assert_eq!(fake.grants(), 1, "one token for every call");
}

#[tokio::test]
async fn saving_a_document_twice_creates_one_document() {
    let fake = GoogleFake::start().await;
    let root = fake.add_shared_drive_folder("Onomancer");
    let google = client(&fake);
    let folder = google
        .ensure_product_folder(&root, &TenantId::new("thj"), "Mibera")
        .await
        .unwrap();
    let doc = NewDocument {
        folder_id: &folder,
        title: "PRD v2 — leadership",
        key: "thj:transform:0123456789abcdef:leadership",
        text: "# PRD v2\nFor leadership: we ship in May.\n",
    };

    let (first, created) = google.save_document(&doc).await.unwrap();
    let (second, created_again) = google.save_document(&doc).await.unwrap();

    assert!(created && !created_again);
    assert_eq!(first, second);
    assert_eq!(
        first.url,
        format!("https://docs.google.com/document/d/{}/edit", first.id)
    );
    let docs: Vec<_> = fake
        .files()
        .into_iter()
        .filter(|f| f.mime_type == DOCUMENT_MIME)
        .collect();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].text, doc.text);
    assert_eq!(docs[0].parents, [folder.as_str()]);
    assert_eq!(
        docs[0].app_properties.get(KEY_PROPERTY).map(String::as_str),
        Some(doc.key)
    );
    let updates = fake
        .requests()
        .iter()
        .filter(|r| r.uri.ends_with(":batchUpdate"))
        .count();
    assert_eq!(updates, 1, "the text was inserted once");
    assert_eq!(
        google
            .export_text(&first.id, ExportFormat::PlainText)
            .await
            .unwrap(),
        doc.text
    );
}

#[tokio::test]
async fn a_document_left_empty_by_a_failed_run_is_filled_by_the_next() {
    let fake = GoogleFake::start().await;
    let root = fake.add_shared_drive_folder("Onomancer");
    let google = client(&fake);
    let doc = NewDocument {
        folder_id: &root,
        title: "digest",
        key: "job:42:devrel",
        text: "Weekly digest\n",
    };

    // files.create succeeds, then documents.batchUpdate fails.
    fake.script_error_for(
        ":batchUpdate",
        503,
        "backendError",
        "The service is currently unavailable.",
    );
    let err = google.save_document(&doc).await.unwrap_err();
    assert!(matches!(JobError::from(err), JobError::Retryable { .. }));
    let docs: Vec<_> = fake
        .files()
        .into_iter()
        .filter(|f| f.mime_type == DOCUMENT_MIME)
        .collect();
    assert_eq!((docs.len(), docs[0].text.as_str()), (1, ""));

    let (saved, created) = google.save_document(&doc).await.unwrap();
    assert!(!created, "the empty document was found by its key");
    let docs: Vec<_> = fake
        .files()
        .into_iter()
        .filter(|f| f.mime_type == DOCUMENT_MIME)
        .collect();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].id, saved.id);
    assert_eq!(docs[0].text, "Weekly digest\n");
}

#[tokio::test]
async fn export_reads_a_documents_text_and_markdown() {
    let fake = GoogleFake::start().await;
    let root = fake.add_shared_drive_folder("Specs");
    let id = fake.add_document(&root, "Launch PRD", "# Launch\nShip the honey jar.\n");
    let google = client(&fake);

    assert_eq!(
        google
            .export_text(&id, ExportFormat::PlainText)
            .await
            .unwrap(),
        "# Launch\nShip the honey jar.\n"
    );
    assert_eq!(
        google
            .export_text(&id, ExportFormat::Markdown)
            .await
            .unwrap(),
        "# Launch\nShip the honey jar.\n"
    );
    let export = fake
        .requests()
        .into_iter()
        .rfind(|r| r.uri.contains("/export"))
        .unwrap();
    assert!(
        export.uri.ends_with("/export?mimeType=text%2Fmarkdown"),
        "{}",
        export.uri
    );

    let err = google
        .export_text("1missing", ExportFormat::PlainText)
        .await
        .unwrap_err();
    let JobError::Terminal { message } = JobError::from(err) else {
        panic!("terminal")
    };
    assert_eq!(
        message,
        format!(
            "Google Drive: File not found: 1missing. (is it shared with {TEST_SERVICE_ACCOUNT}?)"
        )
    );
}

#[tokio::test]
async fn tokens_are_cached_and_renewed_after_a_401() {
    let fake = GoogleFake::start().await;
    let root = fake.add_shared_drive_folder("Onomancer");
    let google = client(&fake);

    for _ in 0..3 {
        google.find_folder(&root, "tenants").await.unwrap();
    }
    assert_eq!(fake.grants(), 1);
    fake.revoke_tokens();
    google.find_folder(&root, "tenants").await.unwrap();
    assert_eq!(
        fake.grants(),
        2,
        "a 401 drops the cached token and asks for a new one"
    );
}

#[tokio::test]
async fn every_call_to_google_is_counted_for_the_api_calls_metric() {
    let fake = GoogleFake::start().await;
    let root = fake.add_shared_drive_folder("Onomancer");
    let google = client(&fake);
    let registry = prometheus::Registry::new();
    let metrics = onomancer_shared::usage::UsageMetrics::register(&registry).unwrap();
    let counter = metrics.api_calls("google", "thj");
    google.count_calls_in(counter.clone());

    google.find_folder(&root, "tenants").await.unwrap();
    google.find_folder(&root, "tenants").await.unwrap();
    fake.revoke_tokens();
    google.find_folder(&root, "tenants").await.unwrap();
    // API requests (the one refused with 401 and its retry included) and token grants.
    let calls = fake.requests().len() as u64 + fake.grants() as u64;
    assert_eq!(calls, 6, "3 lookups, 1 retry after the 401, 2 grants");
    assert_eq!(counter.get(), calls);
}

#[tokio::test]
async fn a_folder_outside_a_shared_drive_gets_the_explicit_message() {
    let fake = GoogleFake::start().await;
    let my_drive = fake.add_my_drive_folder("Shared with the bot");
    let google = client(&fake);

    let err = google
        .ensure_product_folder(&my_drive, &TenantId::new("thj"), "Mibera")
        .await
        .unwrap_err();
    let JobError::Terminal { message } = JobError::from(err) else {
        panic!("terminal")
    };
    assert!(
        message.starts_with(&format!("service accounts own no Drive storage: share a Shared Drive with {TEST_SERVICE_ACCOUNT} and set folderIds.root to a folder in it")),
        "{message}"
    );

    // A root folder id the account cannot see at all: the same advice.
    let err = google
        .ensure_folder("1not-shared", "tenants")
        .await
        .unwrap_err();
    let JobError::Terminal { message } = JobError::from(err) else {
        panic!("terminal")
    };
    assert!(
        message.starts_with("service accounts own no Drive storage"),
        "{message}"
    );
}

#[tokio::test]
async fn drive_quota_errors_defer_the_job() {
    let fake = GoogleFake::start().await;
    let root = fake.add_shared_drive_folder("Onomancer");
    let google = client(&fake);
    fake.script_error(403, "userRateLimitExceeded", "User Rate Limit Exceeded");

    let err = google.find_folder(&root, "tenants").await.unwrap_err();
    assert!(
        matches!(JobError::from(err), JobError::Deferred { wait, .. } if wait == QUOTA_WAIT),
        "a quota spends no attempt"
    );
    assert!(google.find_folder(&root, "tenants").await.is_ok());
}

#[tokio::test]
async fn a_quota_answer_pauses_the_service_account_on_every_worker() {
    let fake = GoogleFake::start().await;
    let root = fake.add_shared_drive_folder("Onomancer");
    let redis = onomancer_testkit::TestRedis::new().await;
    let pause = UpstreamPause::new(redis.conn.clone(), redis.keys.clone());
    let (a, b) = (client(&fake), client(&fake));
    a.pause_with(pause.clone());
    b.pause_with(pause.clone());
    a.find_folder(&root, "warm").await.unwrap();
    b.find_folder(&root, "warm").await.unwrap();
    let before = fake.requests().len();
    fake.script_error(
        429,
        "rateLimitExceeded",
        "Quota exceeded for quota metric 'Write requests'",
    );

    let err = a.find_folder(&root, "tenants").await.unwrap_err();
    assert!(matches!(JobError::from(err), JobError::Deferred { .. }));
    // The other worker's client of the same account: deferred without calling Google.
    let err = b.find_folder(&root, "tenants").await.unwrap_err();
    let JobError::Deferred {
        wait,
        reason,
        upstream: false,
    } = JobError::from(err)
    else {
        panic!("paused")
    };
    assert!(wait > Duration::ZERO && wait <= QUOTA_WAIT, "{wait:?}");
    assert!(reason.contains("paused for every worker"), "{reason}");
    assert_eq!(fake.requests().len(), before + 1, "one 429, then no call");
}

#[tokio::test]
async fn a_bad_key_is_a_precise_terminal_error() {
    let err = GoogleClient::from_key_json(
        GoogleConfig::default(),
        &SecretString::from(
            r#"{"type":"service_account","client_email":"a@b","private_key":"not a pem"}"#,
        ),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Google service account key: the service account private_key is not an RSA PEM key"
    );
}

#[tokio::test]
async fn racing_workers_converge_on_one_folder() {
    let fake = GoogleFake::start().await;
    let root = fake.add_shared_drive_folder("Onomancer");
    let (a, b) = (client(&fake), client(&fake));
    let tenant = TenantId::new("thj");

    let (x, y) = tokio::join!(
        a.ensure_product_folder(&root, &tenant, "Mibera"),
        b.ensure_product_folder(&root, &tenant, "Mibera"),
    );
    assert_eq!(
        x.unwrap(),
        y.unwrap(),
        "both use the oldest folder even if both created one"
    );
}
