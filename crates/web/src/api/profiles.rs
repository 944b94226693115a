//! `/business-profile`: the organisation's one profile, and the paths clients of the
//! original system use for it (`/business-profiles[/{id}]`).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use ruleiq_core::{BusinessProfile, Permission};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    extract::{AuthUser, Client},
    problem::{ApiError, ApiJson, Problem},
    state::AppState,
};

/// The profile routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_profile, put_profile))
        .routes(routes!(compat_list, compat_create))
        .routes(routes!(compat_get, compat_put, compat_delete))
}

/// The saved profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileResponse {
    pub id: Uuid,
    #[serde(flatten)]
    pub profile: BusinessProfile,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<ruleiq_services::profiles::SavedProfile> for ProfileResponse {
    fn from(saved: ruleiq_services::profiles::SavedProfile) -> Self {
        Self {
            id: saved.id,
            profile: saved.profile,
            updated_at: saved.updated_at,
        }
    }
}

/// Your organisation's business profile.
#[utoipa::path(
    get,
    path = "/business-profile",
    tag = "profiles",
    security(("bearer" = [])),
    responses((status = 200, body = ProfileResponse), (status = 401, body = Problem), (status = 404, description = "Not saved yet", body = Problem))
)]
async fn get_profile(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<ProfileResponse>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    Ok(ApiJson(
        state.profiles.get(permit.organization_id()).await?.into(),
    ))
}

/// Saves your organisation's business profile (the whole of it): 201 the first time,
/// 200 after.
#[utoipa::path(
    put,
    path = "/business-profile",
    tag = "profiles",
    security(("bearer" = [])),
    request_body = BusinessProfile,
    responses((status = 200, body = ProfileResponse), (status = 201, body = ProfileResponse), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem))
)]
async fn put_profile(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    ApiJson(profile): ApiJson<BusinessProfile>,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    let (saved, created) = state
        .profiles
        .save(
            permit.organization_id(),
            principal.user_id,
            profile,
            &state.catalog,
            &client,
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ApiJson(ProfileResponse::from(saved))).into_response())
}

/// Compatibility: the original system's `GET /business-profiles` (= `GET /business-profile`).
#[utoipa::path(
    get,
    path = "/business-profiles",
    tag = "profiles",
    security(("bearer" = [])),
    responses((status = 200, body = ProfileResponse), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn compat_list(
    state: State<AppState>,
    user: AuthUser,
) -> Result<ApiJson<ProfileResponse>, ApiError> {
    get_profile(state, user).await
}

/// Compatibility: `POST /business-profiles` (= `PUT /business-profile`).
#[utoipa::path(
    post,
    path = "/business-profiles",
    tag = "profiles",
    security(("bearer" = [])),
    request_body = BusinessProfile,
    responses((status = 200, body = ProfileResponse), (status = 201, body = ProfileResponse), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem))
)]
async fn compat_create(
    state: State<AppState>,
    user: AuthUser,
    client: Client,
    body: ApiJson<BusinessProfile>,
) -> Result<Response, ApiError> {
    put_profile(state, user, client, body).await
}

/// The profile with this id, if it is the caller's organisation's.
async fn own_profile(
    state: &AppState,
    principal: &ruleiq_services::identity::Principal,
    id: &str,
) -> Result<(), ApiError> {
    let saved = state.profiles.get(principal.organization_id).await?;
    if id.parse::<Uuid>().ok() != Some(saved.id) {
        return Err(ApiError::NotFound(
            "no such business profile in your organisation".into(),
        ));
    }
    Ok(())
}

/// Compatibility: `GET /business-profiles/{id}`.
#[utoipa::path(
    get,
    path = "/business-profiles/{id}",
    tag = "profiles",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The profile's id")),
    responses((status = 200, body = ProfileResponse), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn compat_get(
    state: State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<ProfileResponse>, ApiError> {
    user.0.require(Permission::ComplianceRead)?;
    own_profile(&state, &user.0, &id).await?;
    get_profile(state, user).await
}

/// Compatibility: `PUT /business-profiles/{id}` (= `PUT /business-profile`).
#[utoipa::path(
    put,
    path = "/business-profiles/{id}",
    tag = "profiles",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The profile's id")),
    request_body = BusinessProfile,
    responses((status = 200, body = ProfileResponse), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
async fn compat_put(
    state: State<AppState>,
    user: AuthUser,
    client: Client,
    Path(id): Path<String>,
    body: ApiJson<BusinessProfile>,
) -> Result<Response, ApiError> {
    user.0.require(Permission::ComplianceWrite)?;
    own_profile(&state, &user.0, &id).await?;
    put_profile(state, user, client, body).await
}

/// Compatibility: `DELETE /business-profiles/{id}`: removes the profile (audited).
#[utoipa::path(
    delete,
    path = "/business-profiles/{id}",
    tag = "profiles",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The profile's id")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem))
)]
async fn compat_delete(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    own_profile(&state, &principal, &id).await?;
    state
        .profiles
        .delete(permit.organization_id(), principal.user_id, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
