//! `/policies`: templates, generation, versions, comparison, approval and export.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use ruleiq_core::Permission;
use ruleiq_services::policies::{
    ExportFormat, GenerateRequest, PolicyDiff, PolicyError, PolicyPage, PolicyView, Status,
    TemplateView, VersionView,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    api::{evidence::disposition, frameworks::invalid},
    extract::{AuthUser, Client},
    problem::{ApiError, ApiJson, ApiQuery, Problem},
    state::AppState,
};

/// The policy routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(templates))
        .routes(routes!(generate))
        .routes(routes!(list))
        .routes(routes!(get, update, delete))
        .routes(routes!(versions))
        .routes(routes!(diff))
        .routes(routes!(submit))
        .routes(routes!(approve))
        .routes(routes!(set_status))
        .routes(routes!(export))
}

impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::NotFound(m) => ApiError::NotFound(m.into()),
            PolicyError::Conflict(m) => ApiError::Conflict(m),
            PolicyError::Invalid { field, message } => invalid(field, &message),
            PolicyError::TooLarge => ApiError::PayloadTooLarge(e.to_string()),
            PolicyError::Export(m) => ApiError::Internal(m),
            PolicyError::Queue(m) => ApiError::Unavailable(m),
            PolicyError::Db(db) => ApiError::internal(db),
        }
    }
}

fn id_of(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound("no such policy in your organisation".into()))
}

/// The policy types ruleIQ can write, with the controls each covers.
#[utoipa::path(
    get,
    path = "/policies/templates",
    tag = "policies",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<TemplateView>), (status = 401, body = Problem))
)]
async fn templates(AuthUser(principal): AuthUser) -> Result<ApiJson<Vec<TemplateView>>, ApiError> {
    principal.require(Permission::ComplianceRead)?;
    ruleiq_services::policies::template_views()
        .map(ApiJson)
        .map_err(ApiError::internal)
}

/// What `POST /policies/generate` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Generating {
    pub policy_id: Uuid,
    pub job_id: Uuid,
}

/// Writes a policy from its template and the business profile, as a job. The policy
/// exists at once with `generation: pending`; follow the job or the policy.
#[utoipa::path(
    post,
    path = "/policies/generate",
    tag = "policies",
    security(("bearer" = [])),
    request_body = GenerateRequest,
    responses((status = 202, body = Generating), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, description = "A framework the organisation cannot see", body = Problem), (status = 422, body = Problem))
)]
async fn generate(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    ApiJson(body): ApiJson<GenerateRequest>,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    let (policy_id, job_id) = state.policies.generate(&permit, body, &client).await?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(Generating {
            policy_id,
            job_id: job_id.as_uuid(),
        }),
    )
        .into_response())
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub status: Option<Status>,
    pub policy_type: Option<String>,
    /// Default 50, at most 200.
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// The organisation's policies, newest first.
#[utoipa::path(
    get,
    path = "/policies",
    tag = "policies",
    security(("bearer" = [])),
    params(ListParams),
    responses((status = 200, body = PolicyPage), (status = 401, body = Problem), (status = 422, body = Problem))
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<ApiJson<PolicyPage>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    Ok(ApiJson(
        state
            .policies
            .list(
                permit.organization_id(),
                q.status,
                q.policy_type,
                q.cursor.as_deref(),
                q.limit.unwrap_or(50),
            )
            .await?,
    ))
}

/// One policy.
#[utoipa::path(
    get,
    path = "/policies/{id}",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The policy's id")),
    responses((status = 200, body = PolicyView), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn get(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<PolicyView>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    Ok(ApiJson(
        state
            .policies
            .get(permit.organization_id(), id_of(&id)?)
            .await?,
    ))
}

/// An edit: the whole text, and optionally a new title.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    pub content_markdown: String,
    pub title: Option<String>,
}

/// Saves edited text as a new version; the policy goes back to `draft`.
#[utoipa::path(
    put,
    path = "/policies/{id}",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The policy's id")),
    request_body = UpdatePolicy,
    responses((status = 200, body = PolicyView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "Still being generated, archived, or changed meanwhile", body = Problem), (status = 413, body = Problem), (status = 422, body = Problem))
)]
async fn update(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdatePolicy>,
) -> Result<ApiJson<PolicyView>, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    Ok(ApiJson(
        state
            .policies
            .update(
                &permit,
                id_of(&id)?,
                body.content_markdown,
                body.title,
                &client,
            )
            .await?,
    ))
}

/// Deletes a policy (softly: it stays in the audit trail).
#[utoipa::path(
    delete,
    path = "/policies/{id}",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The policy's id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem))
)]
async fn delete(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    state.policies.delete(&permit, id_of(&id)?, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every version of a policy, newest first, with who or what wrote each.
#[utoipa::path(
    get,
    path = "/policies/{id}/versions",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The policy's id")),
    responses((status = 200, body = Vec<VersionView>), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn versions(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<Vec<VersionView>>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    Ok(ApiJson(
        state
            .policies
            .versions(permit.organization_id(), id_of(&id)?)
            .await?,
    ))
}

/// Which versions to compare.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DiffParams {
    pub from: i32,
    pub to: i32,
}

/// What changed between two versions.
#[utoipa::path(
    get,
    path = "/policies/{id}/diff",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The policy's id"), DiffParams),
    responses((status = 200, body = PolicyDiff), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
async fn diff(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DiffParams>,
) -> Result<ApiJson<PolicyDiff>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    Ok(ApiJson(
        state
            .policies
            .diff(permit.organization_id(), id_of(&id)?, q.from, q.to)
            .await?,
    ))
}

async fn move_to(
    state: &AppState,
    principal: &ruleiq_services::identity::Principal,
    client: &ruleiq_services::audit::ClientInfo,
    id: &str,
    to: Status,
) -> Result<ApiJson<PolicyView>, ApiError> {
    let permission = if to == Status::Approved {
        Permission::ComplianceApprove
    } else {
        Permission::ComplianceWrite
    };
    let permit = principal.require(permission)?;
    Ok(ApiJson(
        state
            .policies
            .transition(&permit, id_of(id)?, to, client)
            .await?,
    ))
}

/// Sends a draft for approval (`draft` → `in_review`).
#[utoipa::path(
    post,
    path = "/policies/{id}/submit",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The policy's id")),
    responses((status = 200, body = PolicyView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "Not a draft, or no text yet", body = Problem))
)]
async fn submit(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<ApiJson<PolicyView>, ApiError> {
    move_to(&state, &principal, &client, &id, Status::InReview).await
}

/// Approves a policy in review. The approver must not have written the current
/// version, asked for it to be generated, or submitted it.
#[utoipa::path(
    post,
    path = "/policies/{id}/approve",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The policy's id")),
    responses((status = 200, body = PolicyView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "Not in review, or your own work", body = Problem))
)]
async fn approve(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<ApiJson<PolicyView>, ApiError> {
    move_to(&state, &principal, &client, &id, Status::Approved).await
}

/// A status to move to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStatus {
    pub status: Status,
}

/// Moves a policy: `in_review` and `approved` as submit and approve do; `draft` to
/// withdraw or restore; `archived` to retire it.
#[utoipa::path(
    patch,
    path = "/policies/{id}/status",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The policy's id")),
    request_body = SetStatus,
    responses((status = 200, body = PolicyView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
async fn set_status(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetStatus>,
) -> Result<ApiJson<PolicyView>, ApiError> {
    move_to(&state, &principal, &client, &id, body.status).await
}

/// The export format.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// `pdf`, `docx` or `md`.
    #[param(inline)]
    pub format: ExportFormat,
}

/// The policy as a file: PDF (typeset, fonts embedded), Word or Markdown.
#[utoipa::path(
    get,
    path = "/policies/{id}/export",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The policy's id"), ExportParams),
    responses((status = 200, description = "The file", content_type = "application/octet-stream"), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, description = "No text yet", body = Problem), (status = 422, body = Problem))
)]
async fn export(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let file = state
        .policies
        .export(permit.organization_id(), id_of(&id)?, q.format)
        .await?;
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    );
    h.insert(header::CONTENT_DISPOSITION, disposition(&file.file_name));
    Ok((h, file.bytes).into_response())
}
