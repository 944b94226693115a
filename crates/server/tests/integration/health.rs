use reqwest::StatusCode;
use ruleiq_migration::{Migrator, MigratorTrait};
use ruleiq_test_support::{TestApp, backend};
use serde_json::Value;

#[tokio::test]
async fn health_reports_every_component_with_a_real_database_round_trip() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/v1/health").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "healthy", "{body}");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    let db = &body["checks"]["database"];
    assert_eq!(db["status"], "healthy");
    assert_eq!(db["backend"], backend());
    assert!(
        db["latency_ms"].as_f64().unwrap() > 0.0,
        "a measured round trip: {db}"
    );
    assert_eq!(body["checks"]["storage"]["writable"], true);
    assert_eq!(body["checks"]["jobs"]["status"], "healthy");
    assert_eq!(body["checks"]["jobs"]["backend"], backend());
    app.stop().await;
}

#[tokio::test]
async fn health_is_503_unhealthy_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.components.db.close_by_ref().await.unwrap();
    let res = app.get("/api/v1/health").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["checks"]["database"]["status"], "unhealthy");
    assert!(body["checks"]["database"]["error"].is_string());

    // Liveness does not depend on the database; readiness does.
    assert_eq!(
        app.get("/api/v1/health/live").await.status(),
        StatusCode::OK
    );
    let ready = app.get("/api/v1/health/ready").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["database"], false);
}

#[tokio::test]
async fn live_and_ready_answer_and_ready_follows_the_schema() {
    let app = TestApp::spawn().await;
    let live: Value = app.get("/api/v1/health/live").await.json().await.unwrap();
    assert_eq!(live["status"], "alive");
    assert!(live["uptime_seconds"].is_u64());

    let res = app.get("/api/v1/health/ready").await;
    assert_eq!(res.status(), StatusCode::OK);
    let ready: Value = res.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["pending_migrations"], serde_json::json!([]));

    // Roll the last migration back under the running server: it stops being ready
    // and names what is missing.
    Migrator::down(&app.components.db, Some(1)).await.unwrap();
    let res = app.get("/api/v1/health/ready").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = res.json().await.unwrap();
    assert_eq!(ready["status"], "not_ready");
    let pending = ready["pending_migrations"].as_array().unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].as_str().unwrap().contains("index_audit_changes"));
}

#[tokio::test]
async fn concurrent_health_checks_each_report_a_completed_round_trip() {
    let app = TestApp::spawn().await;
    let calls = (0..64).map(|_| app.get("/api/v1/health"));
    for res in futures::future::join_all(calls).await {
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["checks"]["database"]["status"], "healthy");
        assert!(body["checks"]["database"]["latency_ms"].as_f64().unwrap() > 0.0);
    }
    // Once the database is gone, the very next check says so: no stale result is reused.
    app.components.db.close_by_ref().await.unwrap();
    let res = app.get("/api/v1/health").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}
