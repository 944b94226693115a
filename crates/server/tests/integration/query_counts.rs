//! The promise that no request's query count grows with the data: the
//! dashboard, readiness, saving an answer and completing an assessment issue the same
//! number of queries for the small demo organisation as for the large one (every
//! framework assessed, over 2,000 answers, 500 tasks and 50,000 evidence items), and
//! so do a page of the evidence library and its statistics. Counted with SeaORM's
//! metric callback on a connection of its own; run with `--nocapture` to see them.

use ruleiq_core::{OrganizationId, UserId};
use ruleiq_db::DatabaseConnection;
use ruleiq_services::{
    assessments::{Assessments, scoring::Response},
    audit::{AuditEvent, ClientInfo},
    dashboard::{Dashboard, Summary},
    demo::{Demo, DemoReport, Size},
    evidence::{Evidence, ListQuery, workflow::Status},
};
use ruleiq_test_support::TestApp;
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

struct Counted {
    db: DatabaseConnection,
    queries: Arc<AtomicUsize>,
}

impl Counted {
    async fn connect(app: &TestApp) -> Self {
        let mut db = ruleiq_db::connect(&app.components.settings.database)
            .await
            .unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let counter = queries.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        Self { db, queries }
    }

    /// How many queries `work` issued.
    async fn count<T>(&self, work: impl std::future::Future<Output = T>) -> (usize, T) {
        let before = self.queries.load(Ordering::SeqCst);
        let out = work.await;
        (self.queries.load(Ordering::SeqCst) - before, out)
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Counts {
    dashboard: usize,
    dashboard_unchanged: usize,
    dashboard_after_sign_in: usize,
    status: usize,
    answer: usize,
    complete: usize,
    evidence_list: usize,
    evidence_filtered: usize,
    evidence_stats: usize,
    evidence_stats_unchanged: usize,
}

async fn measure(app: &TestApp, counted: &Counted, demo: &DemoReport) -> Counts {
    let org = OrganizationId::from(demo.organization_id);
    let by = UserId::from(demo.owner_id);
    let dashboard = Dashboard::new(counted.db.clone(), app.components.clock.clone());
    let assessments = Assessments::new(counted.db.clone(), app.components.clock.clone());
    let (dashboard_queries, summary) = counted.count(dashboard.summary(org, true)).await;
    let summary = summary.unwrap();
    assert!(!summary.frameworks.is_empty());
    // Unchanged since: one query to see that, and the same answer.
    let (unchanged_queries, again) = counted.count(dashboard.summary(org, false)).await;
    assert_eq!(
        again.unwrap(),
        Summary {
            recent_activity: None,
            ..summary.clone()
        }
    );
    // A sign-in changes nothing the summary shows: it is not recomputed (the version
    // and the activity list, two queries), yet the sign-in heads the activity list.
    app.components
        .audit
        .record(
            AuditEvent::new(
                "auth.login",
                Some(demo.organization_id),
                Some(demo.owner_id),
            ),
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    let (after_sign_in, signed_in) = counted.count(dashboard.summary(org, true)).await;
    let signed_in = signed_in.unwrap();
    assert_eq!(
        signed_in.recent_activity.as_ref().unwrap()[0].event,
        "auth.login"
    );
    assert_eq!(signed_in.frameworks, summary.frameworks);
    let (status_queries, status) = counted.count(assessments.status(org)).await;
    assert!(!status.unwrap().is_empty());
    let a = assessments
        .create(org, by, "iso27001-2022", None)
        .await
        .unwrap();
    let questions = assessments.questions(org, a.id).await.unwrap();
    let (answer_queries, saved) = counted
        .count(assessments.answer(
            org,
            by,
            a.id,
            questions[0].id,
            Response::Yes,
            None,
            Vec::new(),
        ))
        .await;
    saved.unwrap();
    let (complete_queries, results) = counted.count(assessments.complete(org, a.id)).await;
    assert!(results.unwrap().score > 0.0);
    let c = &app.components;
    let evidence = Evidence::new(
        counted.db.clone(),
        c.evidence.store().clone(),
        c.jobs.clone(),
        c.audit.clone(),
        c.search.clone(),
        c.clock.clone(),
        c.settings.uploads.max_upload_size,
        c.settings.uploads.allowed_extensions.clone(),
        c.notifications.clone(),
    );
    let page = |status| ListQuery {
        status,
        limit: 50,
        ..ListQuery::default()
    };
    let (list_queries, list) = counted.count(evidence.list(org, page(None))).await;
    assert_eq!(list.unwrap().items.len(), demo.evidence.min(50));
    let (filtered_queries, filtered) = counted
        .count(evidence.list(org, page(Some(Status::Approved))))
        .await;
    assert!(!filtered.unwrap().items.is_empty());
    let (stats_queries, stats) = counted.count(evidence.stats(org)).await;
    let stats = stats.unwrap();
    assert_eq!(stats.total, i64::try_from(demo.evidence).unwrap());
    let (stats_unchanged, again) = counted.count(evidence.stats(org)).await;
    assert_eq!(again.unwrap(), stats);
    Counts {
        evidence_list: list_queries,
        evidence_filtered: filtered_queries,
        evidence_stats: stats_queries,
        evidence_stats_unchanged: stats_unchanged,
        dashboard: dashboard_queries,
        dashboard_unchanged: unchanged_queries,
        dashboard_after_sign_in: after_sign_in,
        status: status_queries,
        answer: answer_queries,
        complete: complete_queries,
    }
}

#[tokio::test]
async fn query_counts_do_not_grow_with_the_data() {
    let app = TestApp::spawn().await;
    let identity = app.components.identity().unwrap();
    let demo = Demo::new(
        app.components.db.clone(),
        identity.clone(),
        identity.audit().clone(),
        app.components.clock.clone(),
    )
    .with_evidence(app.components.evidence.clone());
    let mut quiet = |_: &str| {};
    let small = demo
        .create(
            Size::Small,
            "small@example.co.uk",
            "otter lantern quarry velvet",
            &mut quiet,
        )
        .await
        .unwrap();
    let large = demo
        .create(
            Size::Large,
            "large@example.co.uk",
            "otter lantern quarry velvet",
            &mut quiet,
        )
        .await
        .unwrap();
    assert!(large.answers >= 2_000 && large.tasks >= 500, "{large:?}");

    let counted = Counted::connect(&app).await;
    let small_counts = measure(&app, &counted, &small).await;
    let large_counts = measure(&app, &counted, &large).await;
    println!("queries per operation, small demo: {small_counts:?}");
    println!("queries per operation, large demo: {large_counts:?}");
    assert_eq!(small_counts, large_counts);
    // And the counts are small: what docs/PERFORMANCE.md reports.
    assert!(large_counts.dashboard <= 15, "{large_counts:?}");
    assert!(large_counts.evidence_list <= 2, "{large_counts:?}");
    assert!(large_counts.evidence_stats <= 7, "{large_counts:?}");
    assert_eq!(large_counts.evidence_stats_unchanged, 1, "{large_counts:?}");
    assert_eq!(large_counts.dashboard_unchanged, 1, "{large_counts:?}");
    assert_eq!(large_counts.dashboard_after_sign_in, 2, "{large_counts:?}");
    assert!(large_counts.status <= 5, "{large_counts:?}");
    assert!(large_counts.answer <= 2, "{large_counts:?}");
    assert!(large_counts.complete <= 5, "{large_counts:?}");
    app.stop().await;
}
