//! `/plans`: an assessment's gaps as a dated implementation plan, and its tasks.
//! `/implementation/plans[/{id}]` answers the original system's clients.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, NaiveDate, Utc};
use ruleiq_core::{Criticality, Permission};
use ruleiq_services::{
    assessments::scoring::Response as Answer,
    plans::{PlanError, PlanView, TaskChange, TaskStatus, TaskView},
};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    api::frameworks::{FrameworkRef, invalid},
    extract::{AuthUser, Client},
    problem::{ApiError, ApiJson, ApiQuery, Problem},
    state::AppState,
};

/// The plan routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get))
        .routes(routes!(update_task))
        .routes(routes!(compat_create, compat_list))
        .routes(routes!(compat_get))
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::NotFound(m) => ApiError::NotFound(m.into()),
            PlanError::Conflict(m) => ApiError::Conflict(m.into()),
            PlanError::Invalid { field, message } => invalid(field, message),
            PlanError::Db(db) => ApiError::internal(db),
        }
    }
}

/// A task: one gap to close.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskResponse {
    pub id: Uuid,
    pub plan_id: Uuid,
    pub control_id: Uuid,
    #[serde(rename = "ref")]
    pub reference: String,
    pub title: String,
    /// What to do, from the control's guidance.
    pub description: String,
    /// The gap's severity: critical, high, medium or low.
    #[schema(value_type = String)]
    pub priority: Criticality,
    /// The answer that made it a gap.
    pub response: Answer,
    pub status: TaskStatus,
    pub assignee_id: Option<Uuid>,
    pub due_date: NaiveDate,
    /// Person-days, in half days.
    pub effort_days: f64,
    pub notes: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<TaskView> for TaskResponse {
    fn from(t: TaskView) -> Self {
        Self {
            id: t.id,
            plan_id: t.plan_id,
            control_id: t.control_id,
            reference: t.reference,
            title: t.title,
            description: t.description,
            priority: t.priority,
            response: t.response,
            status: t.status,
            assignee_id: t.assignee_id,
            due_date: t.due_date,
            effort_days: t.effort_days,
            notes: t.notes,
            completed_at: t.completed_at,
        }
    }
}

/// How far through its tasks a plan is.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanProgress {
    pub done: usize,
    pub total: usize,
}

/// A plan without its tasks.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanSummary {
    pub id: Uuid,
    pub title: String,
    pub framework: FrameworkRef,
    pub assessment_id: Uuid,
    /// `active` until every task is done, then `completed`.
    pub status: String,
    pub start_date: NaiveDate,
    pub target_date: Option<NaiveDate>,
    /// The due date of the last task.
    pub projected_end_date: NaiveDate,
    /// False when the target date cannot be met; `schedule_note` says by how much.
    pub target_met: bool,
    /// What the dates assume, in plain words.
    pub schedule_note: Option<String>,
    pub progress: PlanProgress,
    pub created_at: DateTime<Utc>,
}

/// A plan with its tasks, most urgent first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanResponse {
    #[serde(flatten)]
    pub plan: PlanSummary,
    pub tasks: Vec<TaskResponse>,
}

fn summary(p: PlanView) -> (PlanSummary, Vec<TaskView>) {
    (
        PlanSummary {
            id: p.id,
            title: p.title,
            framework: FrameworkRef {
                id: p.framework_id,
                slug: p.framework_slug,
                name: p.framework_name,
            },
            assessment_id: p.assessment_id,
            status: p.status.to_owned(),
            start_date: p.start_date,
            target_date: p.target_date,
            projected_end_date: p.projected_end_date,
            target_met: p.target_met,
            schedule_note: p.schedule_note,
            progress: PlanProgress {
                done: p.tasks_done,
                total: p.tasks_total,
            },
            created_at: p.created_at,
        },
        p.tasks,
    )
}

impl From<PlanView> for PlanResponse {
    fn from(p: PlanView) -> Self {
        let (plan, tasks) = summary(p);
        Self {
            plan,
            tasks: tasks.into_iter().map(TaskResponse::from).collect(),
        }
    }
}

/// A new plan.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    /// A completed assessment of your organisation.
    pub assessment_id: Uuid,
    /// The first working day of the plan (default today).
    pub start_date: Option<NaiveDate>,
    /// When every task should be done; the plan says if it cannot be.
    pub target_date: Option<NaiveDate>,
}

/// Turns a completed assessment's gaps into a plan: one task per gap, ordered and
/// dated by priority, with effort from the content's estimates.
#[utoipa::path(
    post,
    path = "/plans",
    tag = "plans",
    security(("bearer" = [])),
    request_body = CreatePlan,
    responses((status = 201, body = PlanResponse), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, description = "No such assessment in your organisation", body = Problem), (status = 409, description = "The assessment is not completed", body = Problem), (status = 422, body = Problem))
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    ApiJson(req): ApiJson<CreatePlan>,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    let plan = state
        .plans
        .create(
            permit.organization_id(),
            principal.user_id,
            req.assessment_id,
            req.start_date,
            req.target_date,
            &client,
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(PlanResponse::from(plan))).into_response())
}

/// A page of the organisation's plans.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanList {
    pub items: Vec<PlanSummary>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Paging for plans.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanParams {
    /// 1–200, default 50.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The organisation's plans, newest first.
#[utoipa::path(
    get,
    path = "/plans",
    tag = "plans",
    security(("bearer" = [])),
    params(PlanParams),
    responses((status = 200, body = PlanList), (status = 401, body = Problem), (status = 422, body = Problem))
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiQuery(params): ApiQuery<PlanParams>,
) -> Result<ApiJson<PlanList>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(invalid("limit", "must be between 1 and 200"));
    }
    // Plan ids are time-ordered, so the last id shown is where the next page starts.
    let before = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<Uuid>()
                .map_err(|_| invalid("cursor", "is not one this server issued"))?,
        ),
    };
    let mut items: Vec<PlanSummary> = state
        .plans
        .list(permit.organization_id())
        .await?
        .into_iter()
        .filter(|p| before.is_none_or(|b| p.id < b))
        .take(limit + 1)
        .map(|p| summary(p).0)
        .collect();
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|p| p.id.to_string())
    } else {
        None
    };
    Ok(ApiJson(PlanList { items, next_cursor }))
}

fn id_of(raw: &str, what: &'static str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(what.into()))
}

/// One plan with its tasks.
#[utoipa::path(
    get,
    path = "/plans/{id}",
    tag = "plans",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The plan's id")),
    responses((status = 200, body = PlanResponse), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn get(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<PlanResponse>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let id = id_of(&id, "no such plan in your organisation")?;
    Ok(ApiJson(
        state.plans.get(permit.organization_id(), id).await?.into(),
    ))
}

/// `null` and absent differ: absent leaves the field, `null` clears it.
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A change to a task. Absent fields are left as they are; `assignee_id: null`
/// unassigns and `notes: null` clears.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    pub status: Option<TaskStatus>,
    /// An active member of your organisation, or null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub assignee_id: Option<Option<Uuid>>,
    pub due_date: Option<NaiveDate>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
}

/// Changes a task's status, assignee, due date or notes (audited).
#[utoipa::path(
    patch,
    path = "/plans/{plan_id}/tasks/{task_id}",
    tag = "plans",
    security(("bearer" = [])),
    params(
        ("plan_id" = Uuid, Path, description = "The plan's id"),
        ("task_id" = Uuid, Path, description = "The task's id"),
    ),
    request_body = TaskPatch,
    responses((status = 200, body = TaskResponse), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, description = "Unknown status, an assignee who is not a member, or nothing to change", body = Problem))
)]
async fn update_task(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path((plan_id, task_id)): Path<(String, String)>,
    ApiJson(patch): ApiJson<TaskPatch>,
) -> Result<ApiJson<TaskResponse>, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    let plan_id = id_of(&plan_id, "no such plan in your organisation")?;
    let task_id = id_of(&task_id, "no such task in this plan")?;
    if patch.status.is_none()
        && patch.assignee_id.is_none()
        && patch.due_date.is_none()
        && patch.notes.is_none()
    {
        return Err(invalid(
            "body",
            "send at least one of status, assignee_id, due_date and notes",
        ));
    }
    let task = state
        .plans
        .update_task(
            permit.organization_id(),
            principal.user_id,
            plan_id,
            task_id,
            TaskChange {
                status: patch.status,
                assignee_id: patch.assignee_id,
                due_date: patch.due_date,
                notes: patch.notes,
            },
            &client,
        )
        .await?;
    Ok(ApiJson(task.into()))
}

/// Compatibility: the original system's `GET /implementation/plans` (= `GET /plans`).
#[utoipa::path(
    get,
    path = "/implementation/plans",
    tag = "plans",
    security(("bearer" = [])),
    params(PlanParams),
    responses((status = 200, body = PlanList), (status = 401, body = Problem), (status = 422, body = Problem))
)]
async fn compat_list(
    state: State<AppState>,
    user: AuthUser,
    params: ApiQuery<PlanParams>,
) -> Result<ApiJson<PlanList>, ApiError> {
    list(state, user, params).await
}

/// Compatibility: `POST /implementation/plans` (= `POST /plans`).
#[utoipa::path(
    post,
    path = "/implementation/plans",
    tag = "plans",
    security(("bearer" = [])),
    request_body = CreatePlan,
    responses((status = 201, body = PlanResponse), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
async fn compat_create(
    state: State<AppState>,
    user: AuthUser,
    client: Client,
    body: ApiJson<CreatePlan>,
) -> Result<Response, ApiError> {
    create(state, user, client, body).await
}

/// Compatibility: `GET /implementation/plans/{id}` (= `GET /plans/{id}`).
#[utoipa::path(
    get,
    path = "/implementation/plans/{id}",
    tag = "plans",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The plan's id")),
    responses((status = 200, body = PlanResponse), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn compat_get(
    state: State<AppState>,
    user: AuthUser,
    id: Path<String>,
) -> Result<ApiJson<PlanResponse>, ApiError> {
    get(state, user, id).await
}
