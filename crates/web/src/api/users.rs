//! `/users`: member management (`users:manage`).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};
use chrono::{DateTime, Utc};
use ruleiq_core::Permission;
use ruleiq_services::identity::MemberChange;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    extract::{AuthUser, Client},
    problem::{ApiError, ApiJson, Problem},
    state::AppState,
};

/// The member routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(invite))
        .routes(routes!(update))
}

/// A member.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberResponse {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

/// The organisation's members.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    pub items: Vec<MemberResponse>,
    pub next_cursor: Option<String>,
}

fn member(
    (m, u): (
        ruleiq_db::entities::membership::Model,
        ruleiq_db::entities::user::Model,
    ),
) -> MemberResponse {
    MemberResponse {
        id: u.id,
        email: u.email,
        full_name: u.full_name,
        role: m.role,
        is_active: u.is_active,
        created_at: u.created_at,
    }
}

/// An invitation to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    pub email: String,
    /// owner, admin, compliance_manager, contributor, auditor or viewer.
    pub role: String,
}

/// A sent invitation.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationResponse {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    pub expires_at: DateTime<Utc>,
    /// The token that accepts it. Only outside production; in production it is only
    /// e-mailed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Changes to a member.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemberRequest {
    pub role: Option<String>,
    pub is_active: Option<bool>,
}

/// The organisation's members.
#[utoipa::path(
    get,
    path = "/users",
    tag = "identity",
    security(("bearer" = [])),
    responses((status = 200, body = MemberList), (status = 401, body = Problem), (status = 403, body = Problem))
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<MemberList>, ApiError> {
    let permit = principal.require(Permission::UsersManage)?;
    let items = state
        .identity
        .members(&permit)
        .await?
        .into_iter()
        .map(member)
        .collect();
    Ok(ApiJson(MemberList {
        items,
        next_cursor: None,
    }))
}

/// Invites someone to join in a role; the invitation is valid for seven days.
#[utoipa::path(
    post,
    path = "/users/invitations",
    tag = "identity",
    security(("bearer" = [])),
    request_body = InviteRequest,
    responses(
        (status = 201, body = InvitationResponse),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 409, description = "The address already has an account", body = Problem),
        (status = 422, body = Problem),
    )
)]
async fn invite(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    ApiJson(req): ApiJson<InviteRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let permit = principal.require(Permission::UsersManage)?;
    let sent = state
        .identity
        .invite(&permit, &req.email, &req.role, &client)
        .await?;
    let production = state.settings.environment.is_production();
    Ok((
        StatusCode::CREATED,
        ApiJson(InvitationResponse {
            id: sent.invitation.id,
            email: sent.invitation.email,
            role: sent.invitation.role,
            expires_at: sent.invitation.expires_at,
            token: (!production).then_some(sent.token),
        }),
    ))
}

/// Changes a member's role or activation. Deactivating ends their sessions at once.
#[utoipa::path(
    patch,
    path = "/users/{id}",
    tag = "identity",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The member's account id")),
    request_body = UpdateMemberRequest,
    responses(
        (status = 200, body = MemberResponse),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "No such member in your organisation", body = Problem),
        (status = 409, description = "It would leave no active owner", body = Problem),
        (status = 422, body = Problem),
    )
)]
async fn update(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateMemberRequest>,
) -> Result<ApiJson<MemberResponse>, ApiError> {
    let permit = principal.require(Permission::UsersManage)?;
    // An id that is not a UUID names nobody: the same answer as a stranger's id.
    let id = id
        .parse::<Uuid>()
        .map_err(|_| ApiError::NotFound("no such member in your organisation".into()))?;
    let updated = state
        .identity
        .update_member(
            &permit,
            id,
            MemberChange {
                role: req.role,
                is_active: req.is_active,
            },
            &client,
        )
        .await?;
    Ok(ApiJson(member(updated)))
}
