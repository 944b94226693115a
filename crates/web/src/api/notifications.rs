//! `/notifications`: the caller's own notices and the channels they want each kind on.
//!
//! Every member may use these, and only on their own notices: the service confines
//! every query to the caller and their organisation, so anyone else's notice is 404.

use axum::extract::{Path, State};
use ruleiq_services::notifications::{
    ListQuery, NotificationError, NotificationPage, NotificationView, Preference,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    api::frameworks::invalid,
    extract::AuthUser,
    problem::{ApiError, ApiJson, ApiQuery, Problem},
    state::AppState,
};

/// The notification routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(unread_count))
        .routes(routes!(read))
        .routes(routes!(read_all))
        .routes(routes!(preferences, set_preferences))
}

impl From<NotificationError> for ApiError {
    fn from(e: NotificationError) -> Self {
        match e {
            NotificationError::NotFound => ApiError::NotFound("no such notification".into()),
            NotificationError::Invalid { field, message } => invalid(field, &message),
            NotificationError::Db(db) => ApiError::internal(db),
        }
    }
}

/// Filter and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only unread notices.
    #[serde(default)]
    pub unread: bool,
    /// 1-based; default 1.
    pub page: Option<u64>,
    /// Default 20, at most 100.
    pub per_page: Option<u64>,
}

/// The caller's notices, newest first, with how many match and how many are unread.
#[utoipa::path(
    get,
    path = "/notifications",
    tag = "notifications",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, body = NotificationPage),
        (status = 401, body = Problem),
        (status = 422, description = "A page below 1 or a page size outside 1–100", body = Problem)
    )
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<ApiJson<NotificationPage>, ApiError> {
    let query = ListQuery {
        unread_only: q.unread,
        page: q.page,
        per_page: q.per_page,
    };
    Ok(ApiJson(state.notifications.list(&principal, query).await?))
}

/// How many notices are unread.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadCount {
    pub unread: u64,
}

/// The bell's number: how many of the caller's notices are unread.
#[utoipa::path(
    get,
    path = "/notifications/unread-count",
    tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, body = UnreadCount), (status = 401, body = Problem))
)]
async fn unread_count(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<UnreadCount>, ApiError> {
    let unread = state.notifications.unread_count(&principal).await?;
    Ok(ApiJson(UnreadCount { unread }))
}

/// Marks one of the caller's notices read (again is harmless) and returns it.
#[utoipa::path(
    post,
    path = "/notifications/{id}/read",
    tag = "notifications",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The notice's id")),
    responses(
        (status = 200, body = NotificationView),
        (status = 401, body = Problem),
        (status = 404, description = "Not one of the caller's notices", body = Problem)
    )
)]
async fn read(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<NotificationView>, ApiError> {
    // Anything that is not an id names no notice of the caller's: the same 404.
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::from(NotificationError::NotFound))?;
    Ok(ApiJson(
        state.notifications.mark_read(&principal, id).await?,
    ))
}

/// How many notices changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Updated {
    pub updated: u64,
}

/// Marks every unread notice of the caller read.
#[utoipa::path(
    post,
    path = "/notifications/read-all",
    tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, body = Updated), (status = 401, body = Problem))
)]
async fn read_all(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<Updated>, ApiError> {
    let updated = state.notifications.mark_all_read(&principal).await?;
    Ok(ApiJson(Updated { updated }))
}

/// The caller's channels for every kind: their choices, and the defaults for kinds
/// they have not changed.
#[utoipa::path(
    get,
    path = "/notifications/preferences",
    tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, body = [Preference]), (status = 401, body = Problem))
)]
async fn preferences(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<Vec<Preference>>, ApiError> {
    Ok(ApiJson(state.notifications.preferences(&principal).await?))
}

/// New channels for some kinds.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPreferences {
    /// Kinds not listed keep their channels.
    pub preferences: Vec<Preference>,
}

/// Saves the caller's channels for the kinds listed, all or nothing; answers with
/// every kind's channels.
#[utoipa::path(
    put,
    path = "/notifications/preferences",
    tag = "notifications",
    security(("bearer" = [])),
    request_body = SetPreferences,
    responses(
        (status = 200, body = [Preference]),
        (status = 400, description = "Not JSON", body = Problem),
        (status = 401, body = Problem),
        (status = 422, description = "An unknown kind, a missing channel, or a kind listed twice", body = Problem)
    )
)]
async fn set_preferences(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiJson(body): ApiJson<SetPreferences>,
) -> Result<ApiJson<Vec<Preference>>, ApiError> {
    Ok(ApiJson(
        state
            .notifications
            .set_preferences(&principal, body.preferences)
            .await?,
    ))
}
