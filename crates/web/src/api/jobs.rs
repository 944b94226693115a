//! `/jobs`: the status of the organisation's background jobs.

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use ruleiq_core::{JobId, Permission};
use ruleiq_services::jobs::{JobError, JobStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    extract::AuthUser,
    problem::{ApiError, ApiJson, ApiQuery, FieldError, Problem},
    state::AppState,
};

/// The job routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(retry))
        .routes(routes!(cancel))
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::NotFound => ApiError::NotFound("no such job in your organisation".into()),
            JobError::Conflict(m) => ApiError::Conflict(m),
            JobError::Queue(q) => ApiError::Unavailable(q.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// A background job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobResponse {
    pub id: Uuid,
    pub kind: String,
    /// queued, running, succeeded, failed (after its last attempt) or cancelled.
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub error: Option<String>,
    pub result: Option<serde_json::Value>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<JobStatus> for JobResponse {
    fn from(j: JobStatus) -> Self {
        Self {
            id: j.id.as_uuid(),
            kind: j.kind,
            status: j.status,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            error: j.error,
            result: j.result,
            next_attempt_at: j.next_attempt_at,
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
        }
    }
}

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub items: Vec<JobResponse>,
    pub next_cursor: Option<String>,
}

/// Filters and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// queued, running, succeeded, failed or cancelled.
    pub status: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::Validation {
        detail: format!("{field}: {message}"),
        errors: vec![FieldError {
            field: field.into(),
            message: message.into(),
        }],
    }
}

/// The organisation's jobs, newest first.
#[utoipa::path(
    get,
    path = "/jobs",
    tag = "jobs",
    security(("bearer" = [])),
    params(ListParams),
    responses((status = 200, body = JobPage), (status = 401, body = Problem), (status = 422, body = Problem))
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<ApiJson<JobPage>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(invalid("limit", "must be between 1 and 200"));
    }
    if let Some(status) = params.status.as_deref()
        && !["queued", "running", "succeeded", "failed", "cancelled"].contains(&status)
    {
        return Err(invalid(
            "status",
            "must be queued, running, succeeded, failed or cancelled",
        ));
    }
    let before = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<Uuid>()
                .map_err(|_| invalid("cursor", "is not one this server issued"))?,
        ),
    };
    let org = permit.organization_id().as_uuid();
    let mut items: Vec<JobResponse> = state
        .jobs
        .list_in_org(org, params.status.as_deref(), before, limit + 1)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(JobResponse::from)
        .collect();
    let next_cursor = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(|j| j.id.to_string())
    } else {
        None
    };
    Ok(ApiJson(JobPage { items, next_cursor }))
}

/// One of the organisation's jobs.
#[utoipa::path(
    get,
    path = "/jobs/{id}",
    tag = "jobs",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The job id")),
    responses(
        (status = 200, body = JobResponse),
        (status = 401, body = Problem),
        (status = 404, description = "No such job in your organisation", body = Problem),
    )
)]
async fn get(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<JobResponse>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let not_found = || ApiError::NotFound("no such job in your organisation".into());
    let id = id.parse::<JobId>().map_err(|_| not_found())?;
    let job = state
        .jobs
        .get_in_org(permit.organization_id().as_uuid(), id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    Ok(ApiJson(job.into()))
}

/// Runs a failed or cancelled job of the organisation again, with a fresh set of
/// attempts.
#[utoipa::path(
    post,
    path = "/jobs/{id}/retry",
    tag = "jobs",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The job id")),
    responses(
        (status = 200, body = JobResponse),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "No such job in your organisation", body = Problem),
        (status = 409, description = "The job is not failed or cancelled", body = Problem),
    )
)]
async fn retry(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<JobResponse>, ApiError> {
    let permit = principal.require(Permission::JobsManage)?;
    let id = id.parse::<JobId>().map_err(|_| JobError::NotFound)?;
    let job = state
        .jobs
        .retry(Some(permit.organization_id().as_uuid()), id)
        .await?;
    Ok(ApiJson(job.into()))
}

/// Cancels a queued job of the organisation.
#[utoipa::path(
    post,
    path = "/jobs/{id}/cancel",
    tag = "jobs",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The job id")),
    responses(
        (status = 200, body = JobResponse),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "No such job in your organisation", body = Problem),
        (status = 409, description = "The job is running or finished", body = Problem),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<JobResponse>, ApiError> {
    let permit = principal.require(Permission::JobsManage)?;
    let id = id.parse::<JobId>().map_err(|_| JobError::NotFound)?;
    let job = state
        .jobs
        .cancel(Some(permit.organization_id().as_uuid()), id)
        .await?;
    Ok(ApiJson(job.into()))
}
