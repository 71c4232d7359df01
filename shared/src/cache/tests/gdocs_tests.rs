//! L3 on a tenant's Google Workspace, against the Google fake (Drive + Docs wire format).

use std::sync::Arc;

use onomancer_testkit::google_fake::GoogleFake;
use secrecy::SecretString;

use super::support::{Calls, Ns};
use crate::cache::*;
use crate::integrations::google::{GoogleClient, GoogleConfig};
use crate::llm::TokenCounts;
use crate::{Persona, TenantId};

async fn store(fake: &GoogleFake, root: &str) -> GoogleDocsL3 {
    let client = GoogleClient::from_key_json(
        GoogleConfig::at_origin(fake.origin()),
        &SecretString::from(fake.service_account_json()),
    )
    .unwrap();
    GoogleDocsL3::new(client, TenantId::new("thj"), root)
}

#[tokio::test]
async fn google_docs_keep_entries_for_workspace_tenants() {
    let fake = GoogleFake::start().await;
    let root = fake.add_shared_drive_folder("Onomancer");
    let thj = TenantId::new("thj");
    let key = CacheKey::transform(&thj, &content_hash("# Spec\nBody"), &Persona::new("devrel"));
    let expect = Expectation::new("m", template_fingerprint("devrel prompt", "m", 100));
    let calls = Calls::default();

    let ns = Ns::new().await;
    let cache = TieredCache::builder(ns.conn.clone(), ns.keys.clone())
        .l3_for_tenant(thj.clone(), Arc::new(store(&fake, &root).await))
        .build(&prometheus::Registry::new())
        .unwrap();
    let got = cache
        .get_or_compute(&key, &expect, || async {
            calls.hit();
            Ok::<_, std::convert::Infallible>(Computed {
                value: "## What developers get\nA new endpoint.".into(),
                usage: TokenCounts::default(),
            })
        })
        .await
        .unwrap();
    assert_eq!(got.source, Source::Computed);
    assert!(fake.files().iter().any(|f| f.name.contains("devrel")));

    // Redis lost everything (another namespace): the document in Drive serves it and is promoted.
    let ns2 = Ns::new().await;
    let cold = TieredCache::builder(ns2.conn.clone(), ns2.keys.clone())
        .l3_for_tenant(thj.clone(), Arc::new(store(&fake, &root).await))
        .build(&prometheus::Registry::new())
        .unwrap();
    let (entry, tier) = cold.get(&key, &expect).await.unwrap();
    assert_eq!(tier, Tier::L3);
    assert_eq!(entry.value, "## What developers get\nA new endpoint.");
    assert_eq!(cold.get(&key, &expect).await.unwrap().1, Tier::L1);
    // A changed prompt has no document: a miss.
    let ns3 = Ns::new().await;
    let other = TieredCache::builder(ns3.conn.clone(), ns3.keys.clone())
        .l3_for_tenant(thj, Arc::new(store(&fake, &root).await))
        .build(&prometheus::Registry::new())
        .unwrap();
    let changed = Expectation::new("m", template_fingerprint("new devrel prompt", "m", 100));
    assert!(other.get(&key, &changed).await.is_none());
    assert_eq!(calls.get(), 1);
}
