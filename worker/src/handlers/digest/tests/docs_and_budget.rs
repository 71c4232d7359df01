//! Digests of Workspace tenants (one Google Doc per digest job) and of weeks too busy for the
//! input budget.

use super::*;

#[tokio::test]
async fn workspace_tenants_get_one_google_doc_per_digest() {
    use onomancer_shared::integrations::google::{GoogleClient, GoogleConfig};
    use onomancer_testkit::google_fake::GoogleFake;

    let mut s = setup(TestDb::sqlite().await).await;
    let google = GoogleFake::start().await;
    let root = google.add_shared_drive_folder("Initech");
    write_tenants(s._dir.path(), &root);
    s.handler.tenants = Arc::new(TenantRegistry::load_with_env(s._dir.path(), |_| None).unwrap());
    let client = GoogleClient::from_key_json(
        GoogleConfig::at_origin(google.origin()),
        &google.service_account_json().into(),
    )
    .unwrap();
    s.handler.google = BTreeMap::from([(TenantId::new("initech"), client)]);
    record_week(&s.handler.activity, "initech").await;
    let docs = |g: &GoogleFake| {
        g.files()
            .into_iter()
            .filter(|f| f.mime_type == "application/vnd.google-apps.document")
            .collect::<Vec<_>>()
    };

    let job = digest_job("initech", "leadership", None);
    let out = s.handler.handle(&job).await.unwrap().result.unwrap();
    let saved = docs(&google);
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(saved[0].text.trim(), REPLY);
    assert_eq!(
        saved[0].name,
        "Weekly digest — Leadership — Nov 23 – Nov 30, 2026"
    );
    // Under /tenants/initech/Digests/leadership/.
    let folders = google.files();
    let folder = |name: &str, parent: &str| {
        folders
            .iter()
            .find(|f| f.name == name && f.parents == vec![parent.to_owned()])
            .unwrap_or_else(|| panic!("folder {name} under {parent}"))
            .id
            .clone()
    };
    let persona_folder = folder(
        "leadership",
        &folder("Digests", &folder("initech", &folder("tenants", &root))),
    );
    assert_eq!(saved[0].parents, vec![persona_folder]);
    let link = out["doc_link"].as_str().unwrap();
    assert!(link.starts_with("https://docs.google.com/document/d/"));
    let posted = s.discord.channel_messages(INITECH_CHANNEL);
    assert!(posted[0].content.contains(&format!("[Google Doc]({link})")));

    // The job again: the same document, no second one.
    let again = s.handler.handle(&job).await.unwrap().result.unwrap();
    assert_eq!(again["doc_link"], out["doc_link"]);
    assert_eq!(docs(&google).len(), 1);
    // Another week's job is another document.
    s.handler
        .handle(&digest_job("initech", "leadership", None))
        .await
        .unwrap();
    assert_eq!(docs(&google).len(), 2);
}

#[tokio::test]
async fn a_busy_week_fits_the_input_budget_keeping_what_matters() {
    let s = setup(TestDb::sqlite().await).await;
    let store = &s.handler.activity;
    for n in 0..40 {
        let pr = merged_pr(
            "acme",
            n,
            &format!("Merged change number {n}"),
            day(n as i64 % 7),
        );
        record_activity(store, &pr).await.unwrap();
    }
    // Far more comment and build noise than fits.
    for n in 0..1500 {
        let key = format!("c{n}");
        let mut job = linear("acme", &key, &[], day(n % 7));
        job.payload = rmp_serde::to_vec_named(&json!({"v": 1, "delivery": key,
            "action": "create", "entity": "Comment", "title": format!("Comment {n}: {}", "words ".repeat(20)),
            "team": "ENG", "url": format!("https://linear.app/acme/comment/{n}"),
            "actor": "dave", "changed": []}))
        .unwrap()
        .into();
        record_activity(store, &job).await.unwrap();
        if n % 3 == 0 {
            let b = build(
                "acme",
                &format!("b{n}"),
                "completed",
                Some("failure"),
                day(n % 7),
            );
            record_activity(store, &b).await.unwrap();
        }
    }
    let out = s
        .handler
        .handle(&digest_job("acme", "product", None))
        .await
        .unwrap()
        .result
        .unwrap();
    assert_eq!(out["events"], 40 + 1500 + 500);
    assert!(out["omitted"].as_u64().unwrap() > 1000, "{out}");
    let body = s.claude.requests()[0].body.clone();
    let request: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
    let tokens = s
        .handler
        .writer
        .claude
        .as_ref()
        .unwrap()
        .client
        .count_tokens(&request.count_tokens_request())
        .await
        .unwrap();
    // The seed's ~20,000 input tokens per digest.
    assert!(tokens <= 20_000, "{tokens}");
    assert!(tokens > 15_000, "{tokens}");
    let ask = body["messages"][0]["content"].as_str().unwrap();
    for n in 0..40 {
        assert!(
            ask.contains(&format!("Merged change number {n} ")),
            "PR {n} missing"
        );
    }
    assert!(ask.contains("octo-org/app CI: 500 runs (500 failure)"));
    assert!(
        ask.contains("lower-priority entries were left out to fit"),
        "{ask}"
    );
}
