//! `/health`, `/health/live`, `/health/ready`: what load balancers and operators ask.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use chrono::{DateTime, Utc};
use ruleiq_services::monitoring::{self, ComponentStatus};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::{AppState, VERSION};

/// The health routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(live))
        .routes(routes!(ready))
}

/// A component's state.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = HealthStatus)]
pub enum Status {
    Healthy,
    Degraded,
    Unhealthy,
}

impl From<ComponentStatus> for Status {
    fn from(s: ComponentStatus) -> Self {
        match s {
            ComponentStatus::Healthy => Self::Healthy,
            ComponentStatus::Degraded => Self::Degraded,
            ComponentStatus::Unhealthy => Self::Unhealthy,
        }
    }
}

/// The database round trip.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseCheck {
    pub status: Status,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Duration of the round trip made for this response.
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether the data directory accepts writes.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorageCheck {
    pub status: Status,
    pub writable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The job queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobsCheck {
    pub status: Status,
    /// Where jobs are queued: `sqlite`, `postgres` or `redis`.
    pub backend: String,
    pub queued: u64,
    pub running: u64,
    /// Jobs that failed their last attempt.
    pub failed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The Redis rate limits are shared through (present only when `REDIS_URL` is set).
#[derive(Debug, Serialize, ToSchema)]
pub struct RedisCheck {
    pub status: Status,
    /// Where requests are being counted: `redis`, or `memory` while Redis does not answer.
    pub rate_limits: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every component checked.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthChecks {
    pub database: DatabaseCheck,
    pub storage: StorageCheck,
    pub jobs: JobsCheck,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisCheck>,
}

/// The health of this instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `unhealthy` when the database does not answer; `degraded` when another
    /// component is unwell.
    pub status: Status,
    pub version: String,
    pub environment: String,
    pub timestamp: DateTime<Utc>,
    pub checks: HealthChecks,
}

/// Health of this instance and its components.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses(
        (status = 200, description = "Healthy or degraded", body = HealthResponse),
        (status = 503, description = "Unhealthy: the database does not answer", body = HealthResponse),
    )
)]
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let report: monitoring::HealthReport = state.monitor.health().await;
    let code = if report.status == ComponentStatus::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = HealthResponse {
        status: report.status.into(),
        version: VERSION.to_owned(),
        environment: state.settings.environment.to_string(),
        timestamp: Utc::now(),
        checks: report.into(),
    };
    (code, Json(body))
}

impl From<monitoring::HealthReport> for HealthChecks {
    fn from(report: monitoring::HealthReport) -> Self {
        Self {
            database: DatabaseCheck {
                status: report.database.status.into(),
                backend: report.database.backend.to_owned(),
                latency_ms: report.database.latency_ms,
                error: report.database.error,
            },
            storage: StorageCheck {
                status: report.storage.status.into(),
                writable: report.storage.writable,
                error: report.storage.error,
            },
            jobs: JobsCheck {
                status: report.jobs.status.into(),
                backend: report.jobs.backend.to_owned(),
                queued: report.jobs.queued,
                running: report.jobs.running,
                failed: report.jobs.failed,
                error: report.jobs.error,
            },
            redis: report.redis.map(|r| RedisCheck {
                status: r.status.into(),
                rate_limits: r.rate_limits.to_owned(),
                error: r.error,
            }),
        }
    }
}

/// The process is up.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveResponse {
    /// Always `alive`.
    pub status: String,
    pub version: String,
    pub uptime_seconds: u64,
}

/// Liveness: the process answers. It checks nothing else, so a slow database never
/// gets a healthy process restarted.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    responses((status = 200, description = "The process is up", body = LiveResponse))
)]
async fn live(State(state): State<AppState>) -> Json<LiveResponse> {
    Json(LiveResponse {
        status: "alive".into(),
        version: VERSION.to_owned(),
        uptime_seconds: state.started_at.elapsed().as_secs(),
    })
}

/// Whether this instance should receive traffic.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyResponse {
    /// `ready` or `not_ready`.
    pub status: String,
    pub database: bool,
    /// Migrations not yet applied; the instance is not ready while any remain.
    pub pending_migrations: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Readiness: the database answers and its schema is current.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = ReadyResponse),
        (status = 503, description = "Not ready", body = ReadyResponse),
    )
)]
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let r = state.monitor.readiness().await;
    let code = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(ReadyResponse {
            status: if r.ready { "ready" } else { "not_ready" }.into(),
            database: r.database,
            pending_migrations: r.pending_migrations,
            error: r.error,
        }),
    )
}
