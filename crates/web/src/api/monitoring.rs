//! `/monitoring/*` and `/metrics`: what this instance is doing, from live
//! measurements, for its operators (`monitoring:read`) and for scrapers.
//!
//! Everything here describes the instance, not any organisation: route templates
//! (never raw paths), counts, timings and SQL text without its values.

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use ruleiq_core::Permission;
use ruleiq_services::monitoring::{self, performance, queries};
use serde::Serialize;
use std::fmt::Write as _;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::{
        ai::{ProviderResponse, provider_statuses},
        health::{HealthChecks, Status},
    },
    extract::AuthUser,
    problem::{ApiError, ApiJson, Problem},
    state::{AppState, VERSION},
};

/// The monitoring routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(performance))
        .routes(routes!(database))
        .routes(routes!(database_status))
}

/// The job queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobQueue {
    /// `sqlite`, `postgres` or `redis`.
    pub backend: String,
    /// Waiting to run.
    pub queued: u64,
    pub running: u64,
    /// Jobs whose last attempt failed.
    pub failed: u64,
}

/// The process's memory.
#[derive(Debug, Serialize, ToSchema)]
pub struct Memory {
    /// Resident set size (`VmRSS`) in bytes; `null` where the platform does not say
    /// (anything but Linux).
    pub rss_bytes: Option<u64>,
}

/// Which measurements are being taken.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonitoringSettings {
    /// `ENABLE_PERFORMANCE_MONITORING`: request latencies for `/monitoring/performance`.
    pub performance: bool,
    /// `ENABLE_DATABASE_MONITORING`: query timings for `/monitoring/database`.
    pub database: bool,
    /// `MONITORING_INTERVAL_SECONDS`: how often `/metrics` re-counts the job queue.
    pub interval_seconds: u64,
}

/// The state of this instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusResponse {
    /// As `/health`: `unhealthy` when the database does not answer, `degraded` when
    /// another component is unwell.
    pub status: Status,
    pub version: String,
    pub environment: String,
    pub uptime_seconds: u64,
    pub timestamp: DateTime<Utc>,
    /// Each component's check, as `/health` reports it.
    pub components: HealthChecks,
    pub jobs: JobQueue,
    /// The AI providers in preference order and their circuit breakers, as
    /// `/ai/providers` reports them.
    pub ai_providers: Vec<ProviderResponse>,
    pub memory: Memory,
    pub monitoring: MonitoringSettings,
}

/// Version, uptime, each component's state, the job queue, the AI providers' circuit
/// breakers and the process's memory.
#[utoipa::path(
    get,
    path = "/monitoring/status",
    tag = "monitoring",
    security(("bearer" = [])),
    responses(
        (status = 200, body = StatusResponse),
        (status = 401, body = Problem),
        (status = 403, description = "Without `monitoring:read`", body = Problem),
    )
)]
async fn status(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<StatusResponse>, ApiError> {
    principal.require(Permission::MonitoringRead)?;
    let report = state.monitor.health().await;
    let settings = &state.settings.monitoring;
    Ok(ApiJson(StatusResponse {
        status: report.status.into(),
        version: VERSION.to_owned(),
        environment: state.settings.environment.to_string(),
        uptime_seconds: state.started_at.elapsed().as_secs(),
        timestamp: Utc::now(),
        jobs: JobQueue {
            backend: report.jobs.backend.to_owned(),
            queued: report.jobs.queued,
            running: report.jobs.running,
            failed: report.jobs.failed,
        },
        components: report.into(),
        ai_providers: provider_statuses(&state),
        memory: Memory {
            rss_bytes: monitoring::resident_memory_bytes(),
        },
        monitoring: MonitoringSettings {
            performance: settings.performance,
            database: settings.database,
            interval_seconds: settings.interval.as_secs(),
        },
    }))
}

/// One route's traffic in the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutePerformance {
    pub method: String,
    /// The matched route template, such as `/api/v1/evidence/{id}`; `unmatched` for
    /// paths no route took.
    pub route: String,
    pub count: u64,
    /// Latency percentiles in milliseconds, within about 6%.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Share of the route's requests answered with a 5xx (4xx are not errors here).
    pub error_rate: f64,
}

/// Requests over the last five minutes.
#[derive(Debug, Serialize, ToSchema)]
pub struct PerformanceResponse {
    /// `false` when `ENABLE_PERFORMANCE_MONITORING` is off: nothing is recorded and
    /// the counts are zero.
    pub enabled: bool,
    /// The window: the last 300 seconds, moving in 30-second steps.
    pub window_seconds: u64,
    pub total_requests: u64,
    /// Share of all requests answered with a 5xx.
    pub error_rate: f64,
    /// Busiest first.
    pub routes: Vec<RoutePerformance>,
}

/// Request counts, latency percentiles and error rates per route over the last five
/// minutes, measured on this instance.
#[utoipa::path(
    get,
    path = "/monitoring/performance",
    tag = "monitoring",
    security(("bearer" = [])),
    responses(
        (status = 200, body = PerformanceResponse),
        (status = 401, body = Problem),
        (status = 403, description = "Without `monitoring:read`", body = Problem),
    )
)]
async fn performance(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<PerformanceResponse>, ApiError> {
    principal.require(Permission::MonitoringRead)?;
    let Some(window) = state.metrics.performance() else {
        return Ok(ApiJson(PerformanceResponse {
            enabled: false,
            window_seconds: performance::WINDOW.as_secs(),
            total_requests: 0,
            error_rate: 0.0,
            routes: Vec::new(),
        }));
    };
    let report = window.report();
    Ok(ApiJson(PerformanceResponse {
        enabled: true,
        window_seconds: report.window_seconds,
        total_requests: report.total_requests,
        error_rate: report.error_rate,
        routes: report
            .routes
            .into_iter()
            .map(|r| RoutePerformance {
                method: r.method,
                route: r.route,
                count: r.count,
                p50_ms: r.p50_ms,
                p95_ms: r.p95_ms,
                p99_ms: r.p99_ms,
                error_rate: r.error_rate,
            })
            .collect(),
    }))
}

/// The connection pool.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pool {
    /// Connections open, idle or in use.
    pub size: u32,
    pub idle: u32,
    pub in_use: u32,
    /// The most the pool opens (`DATABASE_MAX_CONNECTIONS`).
    pub max: u32,
}

/// One slow query.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlowQueryResponse {
    /// The statement as sent, quoted literals blanked and cut to 1,000 characters.
    /// Bound values are never kept.
    pub sql: String,
    pub duration_ms: f64,
    /// When it finished.
    pub at: DateTime<Utc>,
    /// Whether it returned an error.
    pub failed: bool,
}

/// The database as this instance uses it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseResponse {
    /// `false` when `ENABLE_DATABASE_MONITORING` is off: queries are not timed, and
    /// the counts and list stay empty. The pool is reported either way.
    pub enabled: bool,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// `null` only for a connection that is not a pool.
    pub pool: Option<Pool>,
    /// A query is kept when it takes at least this long (100 ms).
    pub slow_query_threshold_ms: u64,
    /// Statements timed since start.
    pub queries_total: u64,
    /// Of which at or over the threshold.
    pub slow_queries_total: u64,
    /// The 20 most recent slow queries, slowest first.
    pub slow_queries: Vec<SlowQueryResponse>,
}

/// The connection pool's occupancy and the slowest recent queries (at least 100 ms),
/// timed as they ran on this instance.
#[utoipa::path(
    get,
    path = "/monitoring/database",
    tag = "monitoring",
    security(("bearer" = [])),
    responses(
        (status = 200, body = DatabaseResponse),
        (status = 401, body = Problem),
        (status = 403, description = "Without `monitoring:read`", body = Problem),
    )
)]
async fn database(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<DatabaseResponse>, ApiError> {
    principal.require(Permission::MonitoringRead)?;
    Ok(ApiJson(database_report(&state)))
}

/// As `/monitoring/database`: the path earlier clients call.
#[utoipa::path(
    get,
    path = "/monitoring/database/status",
    tag = "monitoring",
    security(("bearer" = [])),
    responses(
        (status = 200, body = DatabaseResponse),
        (status = 401, body = Problem),
        (status = 403, description = "Without `monitoring:read`", body = Problem),
    )
)]
async fn database_status(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<DatabaseResponse>, ApiError> {
    principal.require(Permission::MonitoringRead)?;
    Ok(ApiJson(database_report(&state)))
}

fn database_report(state: &AppState) -> DatabaseResponse {
    let log = &state.queries;
    DatabaseResponse {
        enabled: state.settings.monitoring.database,
        backend: state.settings.database.url.backend().as_str().to_owned(),
        pool: ruleiq_db::pool_stats(&state.db).map(|p| Pool {
            size: p.size,
            idle: p.idle,
            in_use: p.in_use,
            max: p.max,
        }),
        slow_query_threshold_ms: u64::try_from(log.threshold().as_millis()).unwrap_or(u64::MAX),
        queries_total: log.queries_total(),
        slow_queries_total: log.slow_total(),
        slow_queries: log
            .slowest()
            .into_iter()
            .map(|q: queries::SlowQuery| SlowQueryResponse {
                sql: q.sql,
                duration_ms: q.duration_ms,
                at: q.at,
                failed: q.failed,
            })
            .collect(),
    }
}

/// `/metrics`: the Prometheus text exposition.
///
/// Request counts and latencies and rate-limit refusals are counted as they happen.
/// The job queue gauges cost a query, so they are re-counted at most once every
/// `MONITORING_INTERVAL_SECONDS` (on the first scrape after it has passed); the pool
/// gauges, the AI counters and the providers' breakers are read at every scrape,
/// as reading them costs nothing.
pub async fn scrape(State(state): State<AppState>) -> Response {
    let metrics = &state.metrics;
    if metrics.refresh_due(state.settings.monitoring.interval) {
        match state.jobs.counts().await {
            Ok(c) => {
                metrics.set_gauge("ruleiq_jobs_queued", c.queued as f64);
                metrics.set_gauge("ruleiq_jobs_running", c.running as f64);
                metrics.set_gauge("ruleiq_jobs_failed", c.failed as f64);
            }
            // The previous values stay; the next due scrape tries again.
            Err(e) => tracing::warn!(error = %e, "could not count jobs for /metrics"),
        }
    }
    if let Some(pool) = ruleiq_db::pool_stats(&state.db) {
        metrics.set_gauge("ruleiq_db_pool_size", f64::from(pool.size));
        metrics.set_gauge("ruleiq_db_pool_idle", f64::from(pool.idle));
        metrics.set_gauge("ruleiq_db_pool_in_use", f64::from(pool.in_use));
        metrics.set_gauge("ruleiq_db_pool_max", f64::from(pool.max));
    }
    let mut body = metrics.render();
    append_ai(&mut body, &state);
    let _ = write!(
        body,
        "# HELP ruleiq_db_unreachable 1 while requests are turned away because the database does not answer.\n\
         # TYPE ruleiq_db_unreachable gauge\n\
         ruleiq_db_unreachable {}\n\
         # HELP ruleiq_db_unreachable_refused_total Requests answered 503 because the database did not answer.\n\
         # TYPE ruleiq_db_unreachable_refused_total counter\n\
         ruleiq_db_unreachable_refused_total {}\n\
         # HELP ruleiq_requests_in_flight Requests being handled now.\n\
         # TYPE ruleiq_requests_in_flight gauge\n\
         ruleiq_requests_in_flight {}\n\
         # HELP ruleiq_requests_limit The most requests handled at once (MAX_CONCURRENT_REQUESTS).\n\
         # TYPE ruleiq_requests_limit gauge\n\
         ruleiq_requests_limit {}\n\
         # HELP ruleiq_requests_shed_total Requests answered 503 because the server was at capacity.\n\
         # TYPE ruleiq_requests_shed_total counter\n\
         ruleiq_requests_shed_total {}\n",
        u8::from(state.db_gate.is_closed()),
        state.db_gate.turned_away(),
        state.shedder.in_flight(),
        state.shedder.limit(),
        state.shedder.shed(),
    );
    if state.settings.monitoring.database {
        let log = &state.queries;
        let _ = write!(
            body,
            "# HELP ruleiq_db_queries_total Database statements timed since start.\n\
             # TYPE ruleiq_db_queries_total counter\n\
             ruleiq_db_queries_total {}\n\
             # HELP ruleiq_db_slow_queries_total Statements that took at least the slow-query threshold.\n\
             # TYPE ruleiq_db_slow_queries_total counter\n\
             ruleiq_db_slow_queries_total {}\n",
            log.queries_total(),
            log.slow_total(),
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// The AI providers' circuit breakers and the calls and spend since start.
fn append_ai(body: &mut String, state: &AppState) {
    // 0 closed (in use), 1 half open (being retried), 2 open (failing; skipped).
    body.push_str(
        "# HELP ruleiq_ai_provider_state Circuit breaker of each AI provider: 0 closed, 1 half open, 2 open.\n\
         # TYPE ruleiq_ai_provider_state gauge\n",
    );
    for p in provider_statuses(state) {
        let value = match p.state.as_str() {
            "open" => 2,
            "half_open" => 1,
            _ => 0,
        };
        let _ = writeln!(
            body,
            "ruleiq_ai_provider_state{{provider=\"{}\",configured=\"{}\"}} {value}",
            p.name, p.configured
        );
    }
    let totals = state.ai.meter().totals();
    body.push_str(
        "# HELP ruleiq_ai_calls_total AI calls answered since start, by provider; cache_hit=\"true\" were answered from the cache.\n\
         # TYPE ruleiq_ai_calls_total counter\n",
    );
    for t in &totals {
        let name = t.provider.as_str();
        let _ = writeln!(
            body,
            "ruleiq_ai_calls_total{{provider=\"{name}\",cache_hit=\"false\"}} {}\n\
             ruleiq_ai_calls_total{{provider=\"{name}\",cache_hit=\"true\"}} {}",
            t.calls.saturating_sub(t.cache_hits),
            t.cache_hits
        );
    }
    body.push_str(
        "# HELP ruleiq_ai_cost_usd_total What AI calls cost since start, in US dollars (the providers' currency), by provider.\n\
         # TYPE ruleiq_ai_cost_usd_total counter\n",
    );
    for t in &totals {
        let _ = writeln!(
            body,
            "ruleiq_ai_cost_usd_total{{provider=\"{}\"}} {}",
            t.provider.as_str(),
            t.cost_usd
        );
    }
}
