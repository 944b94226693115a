//! The search index brought up to date by reading only what changed.

use crate::members::owner;
use ruleiq_services::{
    frameworks::revisions,
    search::{DbSearchIndex, SearchDocument, SearchIndex, SearchKind, SearchQuery},
};
use ruleiq_test_support::TestApp;
use std::sync::Arc;
use uuid::Uuid;

fn evidence(org: Uuid, subject: Uuid, title: &str, body: &str) -> SearchDocument {
    SearchDocument {
        organization_id: Some(org),
        kind: SearchKind::Evidence,
        subject_id: subject,
        framework_slug: None,
        title: title.into(),
        body: body.into(),
    }
}

async fn titles(index: &DbSearchIndex, org: Uuid, q: &str) -> Vec<String> {
    let query = SearchQuery::parse(q, Some(SearchKind::Evidence), 50).unwrap();
    let mut out: Vec<String> = index
        .search(Some(org), &query)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.title)
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn indexing_rounds_are_read_alone_and_anything_else_reads_the_scope_whole() {
    let app = TestApp::spawn().await;
    let member = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let me: serde_json::Value = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&member.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org: Uuid = me["organization"]["id"].as_str().unwrap().parse().unwrap();
    let index = DbSearchIndex::new(app.components.db.clone(), Arc::new(revisions::cache()));

    let backup = Uuid::now_v7();
    index
        .index(vec![evidence(
            org,
            backup,
            "Backup log",
            "nightly copies kept offsite",
        )])
        .await
        .unwrap();
    assert_eq!(titles(&index, org, "offsite").await, ["Backup log"]);
    let whole = index.full_reads();

    // An edit and a new document.
    let patch = Uuid::now_v7();
    index
        .index(vec![
            evidence(org, backup, "Backup log 2026", "weekly copies kept offline"),
            evidence(org, patch, "Patch report", "fixes applied offline"),
        ])
        .await
        .unwrap();
    assert_eq!(
        titles(&index, org, "offline").await,
        ["Backup log 2026", "Patch report"]
    );
    assert!(
        titles(&index, org, "offsite").await.is_empty(),
        "the edit replaced the old text"
    );
    assert_eq!(index.full_reads(), whole, "only the round was read");

    // A removal is not a round: the scope is read whole, without the document.
    index
        .remove(Some(org), SearchKind::Evidence, &[patch])
        .await
        .unwrap();
    assert_eq!(titles(&index, org, "offline").await, ["Backup log 2026"]);
    assert_eq!(index.full_reads(), whole + 1);
    // And rounds after it are read alone again.
    index
        .index(vec![evidence(
            org,
            patch,
            "Patch report",
            "fixes applied offline",
        )])
        .await
        .unwrap();
    assert_eq!(
        titles(&index, org, "offline").await,
        ["Backup log 2026", "Patch report"]
    );
    assert_eq!(index.full_reads(), whole + 1);
    app.stop().await;
}
