//! `/organization`: the caller's organisation.

use axum::extract::State;
use chrono::{DateTime, Utc};
use ruleiq_core::Permission;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    extract::{AuthUser, Client},
    problem::{ApiError, ApiJson, Problem},
    state::AppState,
};

/// The organisation routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get, update))
}

/// An organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationResponse {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ruleiq_db::entities::organization::Model> for OrganizationResponse {
    fn from(o: ruleiq_db::entities::organization::Model) -> Self {
        Self {
            id: o.id,
            name: o.name,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// Changes to the organisation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganizationRequest {
    /// 2–200 characters.
    pub name: String,
}

/// The caller's organisation (any member).
#[utoipa::path(
    get,
    path = "/organization",
    tag = "identity",
    security(("bearer" = [])),
    responses((status = 200, body = OrganizationResponse), (status = 401, body = Problem))
)]
async fn get(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<OrganizationResponse>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    Ok(ApiJson(state.identity.organization(&permit).await?.into()))
}

/// Renames the caller's organisation (`organization:manage`).
#[utoipa::path(
    patch,
    path = "/organization",
    tag = "identity",
    security(("bearer" = [])),
    request_body = UpdateOrganizationRequest,
    responses(
        (status = 200, body = OrganizationResponse),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 422, body = Problem),
    )
)]
async fn update(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    ApiJson(req): ApiJson<UpdateOrganizationRequest>,
) -> Result<ApiJson<OrganizationResponse>, ApiError> {
    let permit = principal.require(Permission::OrganizationManage)?;
    let org = state
        .identity
        .rename_organization(&permit, &req.name, &client)
        .await?;
    Ok(ApiJson(org.into()))
}
