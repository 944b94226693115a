//! `/rbac/roles`: the roles and what each may do.

use ruleiq_core::Role;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    extract::AuthUser,
    problem::{ApiJson, Problem},
    state::AppState,
};

/// The rbac routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(roles))
}

/// A role.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleResponse {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

/// Every role, most powerful first.
#[utoipa::path(
    get,
    path = "/rbac/roles",
    tag = "identity",
    security(("bearer" = [])),
    responses((status = 200, body = [RoleResponse]), (status = 401, body = Problem))
)]
async fn roles(AuthUser(_): AuthUser) -> ApiJson<Vec<RoleResponse>> {
    ApiJson(
        Role::ALL
            .iter()
            .map(|r| RoleResponse {
                name: r.as_str().to_owned(),
                description: r.description().to_owned(),
                permissions: r
                    .permissions()
                    .iter()
                    .map(|p| p.as_str().to_owned())
                    .collect(),
            })
            .collect(),
    )
}
