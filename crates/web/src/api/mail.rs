//! `/mail/outbox`: the organisation's outgoing e-mail, for its administrators.
//!
//! Every message ruleIQ sends for an organisation (scheduled reports, notifications)
//! is kept in the outbox; administrators read it here to see what was sent, what is
//! waiting and why a message failed, and send a failed one again. Account mail
//! (password resets, invitations) belongs to no organisation and is read only by the
//! operator, with `ruleiq mail list`.

use axum::extract::{Path, State};
use ruleiq_core::Permission;
use ruleiq_services::mail::{
    MailError, MailStatus, OutboxEntry, OutboxPage, OutboxQuery, OutboxScope,
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    extract::AuthUser,
    problem::{ApiError, ApiJson, ApiQuery, FieldError, Problem},
    state::AppState,
};

/// The outbox routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(retry))
}

impl From<MailError> for ApiError {
    fn from(e: MailError) -> Self {
        match e {
            MailError::Invalid { field, message } => ApiError::Validation {
                detail: format!("{field}: {message}"),
                errors: vec![FieldError {
                    field: field.to_owned(),
                    message,
                }],
            },
            MailError::NotFound => {
                ApiError::NotFound("no such message in your organisation's outbox".into())
            }
            MailError::NotRetryable(_) | MailError::NotConfigured => {
                ApiError::Conflict(e.to_string())
            }
            MailError::TooLarge { .. } => ApiError::PayloadTooLarge(e.to_string()),
            MailError::Database(_) => ApiError::internal(e),
        }
    }
}

/// Filters and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// queued, sent, failed or logged.
    pub status: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The organisation's outgoing messages, newest first.
#[utoipa::path(
    get,
    path = "/mail/outbox",
    tag = "mail",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, body = OutboxPage),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 422, body = Problem),
    )
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<ApiJson<OutboxPage>, ApiError> {
    let permit = principal.require(Permission::OrganizationManage)?;
    let status = match params.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(MailStatus::parse(s).ok_or_else(|| ApiError::Validation {
            detail: "status: must be queued, sent, failed or logged".into(),
            errors: vec![FieldError {
                field: "status".into(),
                message: "must be queued, sent, failed or logged".into(),
            }],
        })?),
    };
    let page = state
        .outbox
        .list_outbox(
            &OutboxScope::organization(&permit),
            &OutboxQuery {
                status,
                cursor: params.cursor.filter(|c| !c.is_empty()),
                limit: params.limit.unwrap_or(0),
            },
        )
        .await?;
    Ok(ApiJson(page))
}

/// One message of the organisation's outbox.
#[utoipa::path(
    get,
    path = "/mail/outbox/{id}",
    tag = "mail",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The message id")),
    responses(
        (status = 200, body = OutboxEntry),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "No such message in your organisation's outbox", body = Problem),
    )
)]
async fn get(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<OutboxEntry>, ApiError> {
    let permit = principal.require(Permission::OrganizationManage)?;
    let id = id.parse::<Uuid>().map_err(|_| MailError::NotFound)?;
    let entry = state
        .outbox
        .get(&OutboxScope::organization(&permit), id)
        .await?;
    Ok(ApiJson(entry))
}

/// Sends a failed (or only logged) message of the organisation again.
#[utoipa::path(
    post,
    path = "/mail/outbox/{id}/retry",
    tag = "mail",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The message id")),
    responses(
        (status = 200, body = OutboxEntry),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "No such message in your organisation's outbox", body = Problem),
        (status = 409, description = "The message is queued or sent, or no SMTP server is configured", body = Problem),
    )
)]
async fn retry(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<OutboxEntry>, ApiError> {
    let permit = principal.require(Permission::OrganizationManage)?;
    let id = id.parse::<Uuid>().map_err(|_| MailError::NotFound)?;
    let entry = state
        .outbox
        .retry(&OutboxScope::organization(&permit), id)
        .await?;
    Ok(ApiJson(entry))
}
