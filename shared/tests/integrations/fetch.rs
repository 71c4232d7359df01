//! Guarded fetching against a local file server (through base overrides) and policy refusals
//! that never reach the network.

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use onomancer_shared::integrations::fetch::{
    FetchError, FetchPolicy, Fetcher, GitHubAuth, ParsedSource, SourceKind,
};
use onomancer_shared::integrations::google::{GoogleClient, GoogleConfig};
use onomancer_shared::JobError;
use onomancer_testkit::google_fake::GoogleFake;
use secrecy::SecretString;
use url::Url;

/// A file server standing in for raw.githubusercontent.com and the Discord CDN.
async fn file_server() -> (Url, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route(
            "/0xHoneyJar/onomancer/main/docs/prd.md",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    "# PRD\nShip it.\n",
                )
            }),
        )
        .route(
            "/attachments/1100/1200/notes.md",
            get(|req: axum::extract::Request| async move {
                let q = req.uri().query().unwrap_or("").to_owned();
                (
                    [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
                    format!("notes (query {q})"),
                )
            }),
        )
        .route(
            "/attachments/1/2/big.md",
            get(|| async { "x".repeat(2 * 1024 * 1024) }),
        )
        .route(
            "/attachments/1/2/stream.md",
            get(|| async {
                // No Content-Length: the cap must hold while streaming.
                let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 64 * 1024]));
                axum::body::Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route(
            "/attachments/1/2/logo.png",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "image/png")],
                    vec![0x89u8, b'P', b'N', b'G', 0, 0],
                )
            }),
        )
        .route(
            "/attachments/1/2/latin1.txt",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain")],
                    vec![b'c', b'a', b'f', 0xE9],
                )
            }),
        )
        .route(
            "/attachments/1/2/slow.md",
            get(|| async { std::future::pending::<&'static str>().await }),
        )
        .route(
            "/repos/o/private/contents/docs/plan.md",
            get(|headers: axum::http::HeaderMap| async move {
                let auth = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
                match (auth, accept) {
                    (Some("Bearer ghp_test"), Some("application/vnd.github.raw+json")) => (
                        [(header::CONTENT_TYPE, "application/vnd.github.raw+json")],
                        "private plan",
                    )
                        .into_response(),
                    _ => (StatusCode::NOT_FOUND, "{\"message\":\"Not Found\"}").into_response(),
                }
            }),
        )
        .route(
            "/o/r/main/hop.md",
            get(|| async {
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, "/0xHoneyJar/onomancer/main/docs/prd.md")],
                )
                    .into_response()
            }),
        )
        .route(
            "/o/r/main/moved.md",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "https://evil.example/steal")],
                )
                    .into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, task)
}

fn local_policy(base: &Url) -> FetchPolicy {
    FetchPolicy::default()
        .with_override(SourceKind::GitHubFile, base.clone())
        .with_override(SourceKind::DiscordAttachment, base.clone())
}

async fn refusal(policy: FetchPolicy, link: &str) -> String {
    let source = ParsedSource::parse(link).unwrap();
    let err = Fetcher::new(policy).fetch(&source, None).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(JobError::from(err), JobError::Terminal { .. }),
        "refusals are terminal: {message}"
    );
    message
}

#[tokio::test]
async fn a_github_blob_link_is_read_from_its_raw_url() {
    let (base, _server) = file_server().await;
    let source =
        ParsedSource::parse("https://github.com/0xHoneyJar/onomancer/blob/main/docs/prd.md")
            .unwrap();
    let doc = Fetcher::new(local_policy(&base))
        .fetch(&source, None)
        .await
        .unwrap();
    assert_eq!(doc.text, "# PRD\nShip it.\n");
    assert_eq!(
        doc.origin,
        "https://github.com/0xHoneyJar/onomancer/blob/main/docs/prd.md"
    );
    assert_eq!(doc.note, None);
}

#[tokio::test]
async fn with_a_token_github_files_come_from_the_contents_api() {
    let (base, _server) = file_server().await;
    let source =
        ParsedSource::parse("https://github.com/o/private/blob/main/docs/plan.md").unwrap();
    let mut policy = local_policy(&base);
    let err = Fetcher::new(policy.clone())
        .fetch(&source, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 404 (not found"), "{err}");

    policy.github = Some(GitHubAuth {
        token: SecretString::from("ghp_test"),
    });
    let doc = Fetcher::new(policy).fetch(&source, None).await.unwrap();
    assert_eq!(doc.text, "private plan");
}

#[tokio::test]
async fn a_host_name_is_resolved_once_and_the_connection_pinned_to_it() {
    let (base, _server) = file_server().await;
    let by_name = Url::parse(&format!("http://localhost:{}", base.port().unwrap())).unwrap();
    let policy = FetchPolicy::default().with_override(SourceKind::GitHubFile, by_name);
    let source =
        ParsedSource::parse("https://github.com/0xHoneyJar/onomancer/blob/main/docs/prd.md")
            .unwrap();
    let doc = Fetcher::new(policy).fetch(&source, None).await.unwrap();
    assert_eq!(doc.text, "# PRD\nShip it.\n");
}

#[tokio::test]
async fn a_discord_attachment_is_read_with_its_signed_query() {
    let (base, _server) = file_server().await;
    let source = ParsedSource::parse(
        "https://cdn.discordapp.com/attachments/1100/1200/notes.md?ex=67&is=66&hm=abc",
    )
    .unwrap();
    let doc = Fetcher::new(local_policy(&base))
        .fetch(&source, None)
        .await
        .unwrap();
    assert_eq!(doc.text, "notes (query ex=67&is=66&hm=abc)");
    assert_eq!(
        doc.content_type.as_deref(),
        Some("text/markdown; charset=utf-8")
    );
}

#[tokio::test]
async fn internal_addresses_unlisted_hosts_and_plain_http_are_refused() {
    let allow = |host: &str| {
        let mut p = FetchPolicy::default();
        p.allowed_hosts
            .get_mut(&SourceKind::DiscordAttachment)
            .unwrap()
            .push(host.into());
        p
    };
    assert_eq!(
        refusal(allow("10.0.0.5"), "https://10.0.0.5/attachments/1/2/a.md").await,
        "refused: 10.0.0.5 is a private address"
    );
    assert_eq!(
        refusal(allow("127.0.0.1"), "https://127.0.0.1/attachments/1/2/a.md").await,
        "refused: 127.0.0.1 is a loopback address"
    );
    assert_eq!(
        refusal(
            allow("169.254.169.254"),
            "https://169.254.169.254/attachments/1/2/a.md"
        )
        .await,
        "refused: 169.254.169.254 is a link-local address"
    );
    assert_eq!(
        refusal(
            allow("::ffff:c0a8:1"),
            "https://[::ffff:192.168.0.1]/attachments/1/2/a.md"
        )
        .await,
        "refused: ::ffff:192.168.0.1 is a private address"
    );
    let localhost = refusal(allow("localhost"), "https://localhost/attachments/1/2/a.md").await;
    assert!(
        localhost == "refused: 127.0.0.1 is a loopback address"
            || localhost == "refused: ::1 is a loopback address",
        "{localhost}"
    );
    assert_eq!(
        refusal(
            FetchPolicy::default(),
            "https://evil.com/attachments/1/2/a.md"
        )
        .await,
        "refused: host evil.com is not allowed for Discord attachments"
    );
    assert_eq!(
        refusal(
            FetchPolicy::default(),
            "http://cdn.discordapp.com/attachments/1/2/a.md"
        )
        .await,
        "refused: http:// links are not allowed (https only)"
    );
    assert_eq!(
        refusal(
            FetchPolicy::default(),
            "https://gitlab.com/o/r/blob/main/a.md"
        )
        .await,
        "refused: host gitlab.com is not allowed for GitHub files"
    );
}

#[tokio::test]
async fn oversize_documents_are_refused_with_or_without_content_length() {
    let (base, _server) = file_server().await;
    let mut policy = local_policy(&base);
    policy.max_bytes = 1024 * 1024;
    for name in ["big.md", "stream.md"] {
        let link = format!("https://cdn.discordapp.com/attachments/1/2/{name}");
        assert_eq!(
            refusal(policy.clone(), &link).await,
            "refused: the document is larger than the 1 MB limit"
        );
    }
}

#[tokio::test]
async fn binary_content_is_refused_and_bad_utf8_is_decoded_with_a_note() {
    let (base, _server) = file_server().await;
    assert_eq!(
        refusal(local_policy(&base), "https://cdn.discordapp.com/attachments/1/2/logo.png").await,
        "refused: content type image/png is not a text document (use Markdown, plain text, or a Google Doc)"
    );
    let source =
        ParsedSource::parse("https://cdn.discordapp.com/attachments/1/2/latin1.txt").unwrap();
    let doc = Fetcher::new(local_policy(&base))
        .fetch(&source, None)
        .await
        .unwrap();
    assert_eq!(doc.text, "caf\u{FFFD}");
    assert!(doc.note.unwrap().contains("not valid UTF-8"));
}

#[tokio::test]
async fn a_redirect_to_an_unlisted_host_is_refused() {
    let (base, _server) = file_server().await;
    assert_eq!(
        refusal(
            local_policy(&base),
            "https://github.com/o/r/blob/main/moved.md"
        )
        .await,
        "refused: redirect to host evil.example is not allowed for GitHub files"
    );
}

#[tokio::test]
async fn a_redirect_within_an_allowed_host_is_followed() {
    let (base, _server) = file_server().await;
    let source = ParsedSource::parse("https://github.com/o/r/blob/main/hop.md").unwrap();
    let doc = Fetcher::new(local_policy(&base))
        .fetch(&source, None)
        .await
        .unwrap();
    assert_eq!(doc.text, "# PRD\nShip it.\n");
}

#[tokio::test]
async fn a_slow_allowed_host_times_out_retryably_a_few_times() {
    let (base, _server) = file_server().await;
    let mut policy = local_policy(&base);
    policy.timeout = Duration::from_millis(200);
    let source = ParsedSource::parse("https://cdn.discordapp.com/attachments/1/2/slow.md").unwrap();
    let err = Fetcher::new(policy.clone())
        .fetch(&source, None)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Timeout(_)), "{err}");
    assert!(matches!(err.into_job_error(1), JobError::Retryable { .. }));
    let err = Fetcher::new(policy).fetch(&source, None).await.unwrap_err();
    assert!(matches!(err.into_job_error(3), JobError::Terminal { .. }));
}

#[tokio::test]
async fn a_google_doc_link_is_exported_through_the_tenants_client() {
    let fake = GoogleFake::start().await;
    let root = fake.add_shared_drive_folder("Specs");
    let id = fake.add_document(&root, "PRD", "# PRD from Docs\n");
    let google = GoogleClient::from_key_json(
        GoogleConfig::at_origin(fake.origin()),
        &SecretString::from(fake.service_account_json()),
    )
    .unwrap();
    let source =
        ParsedSource::parse(&format!("https://docs.google.com/document/d/{id}/edit")).unwrap();

    let doc = Fetcher::default()
        .fetch(&source, Some(&google))
        .await
        .unwrap();
    assert_eq!(doc.text, "# PRD from Docs\n");

    let err = Fetcher::default().fetch(&source, None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Google Docs are not configured for this tenant (no service account)"
    );
}

#[tokio::test]
async fn pasted_text_is_returned_as_is_within_the_cap() {
    let source = ParsedSource::parse("# Notes\nPasted.").unwrap();
    let doc = Fetcher::default().fetch(&source, None).await.unwrap();
    assert_eq!(
        (doc.text.as_str(), doc.origin.as_str()),
        ("# Notes\nPasted.", "pasted text")
    );
}
