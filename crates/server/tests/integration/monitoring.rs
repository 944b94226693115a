//! `/monitoring/*` and `/metrics` from real traffic: requests made here show up in the
//! counts and percentiles, a slow query run through the application's pool shows up
//! (without its values) in the database view, and the ENABLE_* settings turn the
//! measurements off.

use reqwest::{Method, StatusCode};
use ruleiq_config::raw::Flag;
use ruleiq_db::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use ruleiq_jobs::kinds::CANARY;
use ruleiq_migration::{Migrator, MigratorTrait};
use ruleiq_test_support::{TestApp, backend};
use serde_json::{Value, json};

use crate::{
    assessments::send,
    members::{Member, join, owner},
};

const PATHS: [&str; 4] = [
    "/monitoring/status",
    "/monitoring/performance",
    "/monitoring/database",
    "/monitoring/database/status",
];

/// A value bound to the slow query: it must never be kept.
const BOUND_SECRET: &str = "bound.secret@example.co.uk";
/// A literal written into the slow query's text: blanked when kept.
const LITERAL_SECRET: &str = "literal-secret-42";

/// A query that takes well over the 100 ms threshold on either engine: a recursive
/// count to a million. Its text names `slow_probe` so it can be found again.
async fn slow_query(app: &TestApp) {
    let db = &app.components.db;
    let placeholder = match db.get_database_backend() {
        DatabaseBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = format!(
        "WITH RECURSIVE slow_probe(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM slow_probe WHERE n < 1000000) \
         SELECT count(*) FROM slow_probe WHERE CAST({placeholder} AS TEXT) <> '{LITERAL_SECRET}'"
    );
    db.query_one_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        [BOUND_SECRET.into()],
    ))
    .await
    .unwrap()
    .expect("one row");
}

async fn monitoring(app: &TestApp, who: &Member, path: &str) -> Value {
    let (status, body) = send(app, Method::GET, path, &who.token, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

async fn scrape(app: &TestApp) -> String {
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// The value of the series named exactly `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn route<'a>(perf: &'a Value, method: &str, path: &str) -> Option<&'a Value> {
    perf["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == method && r["route"] == path)
}

async fn canary(app: &TestApp) {
    app.components
        .jobs
        .enqueue(CANARY, json!({"message": "m", "fail_attempts": 0}), None, 1)
        .await
        .unwrap();
}

#[tokio::test]
async fn monitoring_needs_monitoring_read() {
    let app = TestApp::spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let cy = join(&app, &ann, "cy@example.co.uk", "contributor").await;
    for path in PATHS {
        let res = app.get(&format!("/api/v1{path}")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        let (status, body) = send(&app, Method::GET, path, &cy.token, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        monitoring(&app, &ann, path).await;
    }
}

#[tokio::test]
async fn status_reports_components_the_job_queue_ai_breakers_and_memory() {
    // No worker, so a queued job stays queued.
    let app = TestApp::spawn_with(|raw| raw.embedded_worker = Flag(false)).await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    canary(&app).await;
    canary(&app).await;

    // Start-up queues its own upkeep jobs too, at a moment of its choosing; with no
    // worker the queue only grows, so the answer lies between two direct counts.
    let before = app.components.jobs.counts().await.unwrap();
    let s = monitoring(&app, &ann, "/monitoring/status").await;
    let after = app.components.jobs.counts().await.unwrap();
    assert_eq!(s["status"], "healthy", "{s}");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["environment"], "test");
    assert!(s["uptime_seconds"].is_u64());
    assert_eq!(s["components"]["database"]["status"], "healthy");
    assert_eq!(s["components"]["database"]["backend"], backend());
    assert_eq!(s["components"]["storage"]["writable"], true);
    assert_eq!(s["jobs"]["backend"], backend());
    let queued = s["jobs"]["queued"].as_u64().unwrap();
    assert!(before.queued >= 2, "our two canaries wait");
    assert!((before.queued..=after.queued).contains(&queued), "{s}");
    assert_eq!(s["jobs"]["running"], 0);
    assert_eq!(s["jobs"]["failed"], 0);
    // The providers as /ai/providers reports them: offline, always in use.
    let (_, providers) = send(&app, Method::GET, "/ai/providers", &ann.token, None).await;
    assert_eq!(s["ai_providers"], providers);
    let offline = s["ai_providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "offline")
        .expect("offline provider");
    assert_eq!(offline["state"], "closed");
    if cfg!(target_os = "linux") {
        assert!(
            s["memory"]["rss_bytes"].as_u64().unwrap() > 1_000_000,
            "{s}"
        );
    } else {
        assert!(s["memory"]["rss_bytes"].is_null());
    }
    assert_eq!(s["monitoring"]["performance"], true);
    assert_eq!(s["monitoring"]["database"], true);
    assert_eq!(s["monitoring"]["interval_seconds"], 30);
}

#[tokio::test]
async fn performance_counts_requests_per_route_with_percentiles_and_5xx_error_rates() {
    let app = TestApp::spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    for _ in 0..7 {
        let (status, _) = send(&app, Method::GET, "/auth/me", &ann.token, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    for i in 0..3 {
        let res = app.get(&format!("/api/v1/nowhere/{i}")).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
    // Two 5xx: readiness fails while the last migration is rolled back.
    Migrator::down(&app.components.db, Some(1)).await.unwrap();
    for _ in 0..2 {
        let res = app.get("/api/v1/health/ready").await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    Migrator::up(&app.components.db, None).await.unwrap();

    let perf = monitoring(&app, &ann, "/monitoring/performance").await;
    assert_eq!(perf["enabled"], true);
    assert_eq!(perf["window_seconds"], 300);
    let me = route(&perf, "GET", "/api/v1/auth/me").expect("GET /auth/me counted");
    assert_eq!(me["count"], 7, "{perf}");
    assert_eq!(me["error_rate"], 0.0);
    let (p50, p95, p99) = (
        me["p50_ms"].as_f64().unwrap(),
        me["p95_ms"].as_f64().unwrap(),
        me["p99_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0, "{me}");
    assert!(p50 <= p95 && p95 <= p99, "{me}");
    // 4xx are the caller's mistakes, not errors; raw paths never become routes.
    let unmatched = route(&perf, "GET", "unmatched").expect("404s counted");
    assert_eq!(unmatched["count"], 3);
    assert_eq!(unmatched["error_rate"], 0.0);
    assert!(!perf.to_string().contains("/nowhere/"));
    let ready = route(&perf, "GET", "/api/v1/health/ready").expect("readiness counted");
    assert_eq!(ready["count"], 2);
    assert_eq!(ready["error_rate"], 1.0);
    let total = perf["total_requests"].as_u64().unwrap();
    let counted: u64 = perf["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, counted);
    assert!(total >= 13, "{perf}");
    let rate = perf["error_rate"].as_f64().unwrap();
    assert!((rate - 2.0 / total as f64).abs() < 1e-9, "{perf}");

    // The answer is recorded once it is sent, so the next one counts it.
    let again = monitoring(&app, &ann, "/monitoring/performance").await;
    let seen = route(&again, "GET", "/api/v1/monitoring/performance").expect("counted");
    assert_eq!(seen["count"], 1);
}

#[tokio::test]
async fn with_performance_monitoring_off_nothing_is_recorded() {
    let app = TestApp::spawn_with(|raw| raw.enable_performance_monitoring = Flag(false)).await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    for _ in 0..3 {
        send(&app, Method::GET, "/auth/me", &ann.token, None).await;
    }
    let perf = monitoring(&app, &ann, "/monitoring/performance").await;
    assert_eq!(perf["enabled"], false);
    assert_eq!(perf["total_requests"], 0);
    assert_eq!(perf["routes"], json!([]));
    let status = monitoring(&app, &ann, "/monitoring/status").await;
    assert_eq!(status["monitoring"]["performance"], false);
    // The Prometheus request series are the scrapers' and stay.
    let text = scrape(&app).await;
    assert_eq!(
        sample(
            &text,
            r#"http_requests_total{method="GET",route="/api/v1/auth/me",status="200"}"#
        ),
        Some(3.0),
        "{text}"
    );
}

#[tokio::test]
async fn a_slow_query_is_listed_with_its_duration_but_never_its_values() {
    let app = TestApp::spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    slow_query(&app).await;

    for path in ["/monitoring/database", "/monitoring/database/status"] {
        let db = monitoring(&app, &ann, path).await;
        assert_eq!(db["enabled"], true);
        assert_eq!(db["backend"], backend());
        let pool = &db["pool"];
        let (size, idle, in_use, max) = (
            pool["size"].as_u64().unwrap(),
            pool["idle"].as_u64().unwrap(),
            pool["in_use"].as_u64().unwrap(),
            pool["max"].as_u64().unwrap(),
        );
        assert!((1..=max).contains(&size), "{pool}");
        assert_eq!(idle + in_use, size, "{pool}");
        assert_eq!(db["slow_query_threshold_ms"], 100);
        assert!(db["queries_total"].as_u64().unwrap() > 1);
        assert!(db["slow_queries_total"].as_u64().unwrap() >= 1);
        let probe = db["slow_queries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["sql"].as_str().unwrap().contains("slow_probe"))
            .unwrap_or_else(|| panic!("the slow query is listed: {db}"));
        assert!(probe["duration_ms"].as_f64().unwrap() >= 100.0, "{probe}");
        assert_eq!(probe["failed"], false);
        assert!(probe["at"].as_str().unwrap().ends_with('Z'));
        let text = db.to_string();
        assert!(!text.contains(BOUND_SECRET), "bound values are never kept");
        assert!(!text.contains(LITERAL_SECRET), "literals are blanked");
    }
    let text = scrape(&app).await;
    assert!(
        sample(&text, "ruleiq_db_slow_queries_total").unwrap() >= 1.0,
        "{text}"
    );
    assert!(sample(&text, "ruleiq_db_queries_total").unwrap() > 1.0);
}

#[tokio::test]
async fn with_database_monitoring_off_no_query_is_timed() {
    let app = TestApp::spawn_with(|raw| raw.enable_database_monitoring = Flag(false)).await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    slow_query(&app).await;
    let db = monitoring(&app, &ann, "/monitoring/database").await;
    assert_eq!(db["enabled"], false);
    assert_eq!(db["queries_total"], 0, "{db}");
    assert_eq!(db["slow_queries"], json!([]));
    // The pool needs no timing and is still reported.
    assert!(db["pool"]["size"].as_u64().unwrap() >= 1);
    let text = scrape(&app).await;
    assert!(!text.contains("ruleiq_db_queries_total"));
    assert!(text.contains("ruleiq_db_pool_size"));
}

#[tokio::test]
async fn metrics_carry_pool_jobs_ai_and_rate_limit_series() {
    let app = TestApp::spawn_with(|raw| {
        raw.embedded_worker = Flag(false);
        raw.monitoring_interval_seconds = 3_600;
        raw.auth_rate_limit_per_minute = 3;
    })
    .await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    canary(&app).await;

    // One offline AI answer.
    let (status, c) = send(
        &app,
        Method::POST,
        "/chat/conversations",
        &ann.token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    let (status, answer) = send(
        &app,
        Method::POST,
        &format!("/chat/conversations/{}/messages", c["id"].as_str().unwrap()),
        &ann.token,
        Some(json!({"content": "What is a data protection impact assessment?"})),
    )
    .await;
    assert!(status.is_success(), "{answer}");

    // The sign-up used one of three sign-in attempts; the fourth call is refused.
    let mut refused = 0;
    for _ in 0..3 {
        let res = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": "nobody@example.co.uk", "password": "not the password"}))
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert_eq!(refused, 1);

    let before = app.components.jobs.counts().await.unwrap();
    let text = scrape(&app).await;
    let after = app.components.jobs.counts().await.unwrap();
    let size = sample(&text, "ruleiq_db_pool_size").expect("pool size");
    let idle = sample(&text, "ruleiq_db_pool_idle").expect("pool idle");
    let in_use = sample(&text, "ruleiq_db_pool_in_use").expect("pool in use");
    assert!(size >= 1.0 && (idle + in_use - size).abs() < 1e-9, "{text}");
    assert!(sample(&text, "ruleiq_db_pool_max").unwrap() >= size);
    // Start-up queues upkeep jobs too (see the status test): bounded by two counts.
    let queued = sample(&text, "ruleiq_jobs_queued").expect("queue depth");
    assert!(before.queued >= 1, "our canary waits");
    assert!(
        (before.queued as f64..=after.queued as f64).contains(&queued),
        "{text}"
    );
    assert_eq!(sample(&text, "ruleiq_jobs_running"), Some(0.0));
    assert_eq!(sample(&text, "ruleiq_jobs_failed"), Some(0.0));
    assert_eq!(
        sample(
            &text,
            r#"ruleiq_ai_calls_total{provider="offline",cache_hit="false"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"ruleiq_ai_cost_usd_total{provider="offline"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"ruleiq_ai_calls_total{provider="openai",cache_hit="false"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, r#"ruleiq_rate_limited_total{bucket="auth"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"ruleiq_rate_limited_total{bucket="general"}"#),
        Some(0.0)
    );

    // MONITORING_INTERVAL_SECONDS=3600: the queue is not counted again within the
    // hour, though it has grown since.
    canary(&app).await;
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "ruleiq_jobs_queued"), Some(queued), "{text}");
    let now = app.components.jobs.counts().await.unwrap();
    assert!(now.queued as f64 > queued);
}
