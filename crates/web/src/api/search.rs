//! `/search`: controls (and later evidence and policies) within the caller's reach.

use axum::extract::State;
use ruleiq_core::Permission;
use ruleiq_services::search::{SearchHit, SearchKind, SearchQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::frameworks::invalid,
    extract::AuthUser,
    problem::{ApiError, ApiJson, ApiQuery, Problem},
    state::AppState,
};

/// The search route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search))
}

/// Search parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to find (all must match); punctuation is ignored.
    pub q: Option<String>,
    /// control, evidence or policy.
    pub kind: Option<String>,
    /// 1–50, default 20.
    pub limit: Option<usize>,
}

/// Results, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
    pub next_cursor: Option<String>,
}

/// Ranked results with highlighted snippets (`<mark>`; the rest is HTML-escaped).
#[utoipa::path(
    get,
    path = "/search",
    tag = "frameworks",
    security(("bearer" = [])),
    params(SearchParams),
    responses((status = 200, body = SearchResults), (status = 401, body = Problem), (status = 422, body = Problem))
)]
async fn search(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<ApiJson<SearchResults>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let (items, _) = run(&state, permit.organization_id().as_uuid(), &params).await?;
    Ok(ApiJson(SearchResults {
        items,
        next_cursor: None,
    }))
}

/// Runs a search for an organisation (shared with the search page). Returns the hits
/// and the parsed words.
pub(crate) async fn run(
    state: &AppState,
    org: uuid::Uuid,
    params: &SearchParams,
) -> Result<(Vec<SearchHit>, Vec<String>), ApiError> {
    let kind = match params.kind.as_deref() {
        None | Some("") => None,
        Some(k) => Some(
            SearchKind::parse(k)
                .ok_or_else(|| invalid("kind", "must be control, evidence or policy"))?,
        ),
    };
    let limit = params.limit.unwrap_or(20);
    if !(1..=50).contains(&limit) {
        return Err(invalid("limit", "must be between 1 and 50"));
    }
    let query = SearchQuery::parse(params.q.as_deref().unwrap_or(""), kind, limit)
        .map_err(|e| invalid("q", &e.to_string()))?;
    let hits = state
        .search
        .search(Some(org), &query)
        .await
        .map_err(ApiError::internal)?;
    Ok((hits, query.terms))
}
