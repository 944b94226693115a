//! `/audit-log`: the organisation's security events and the check of their chain.

use axum::extract::State;
use chrono::{DateTime, Utc};
use ruleiq_core::Permission;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    extract::AuthUser,
    problem::{ApiError, ApiJson, ApiQuery, Problem},
    state::AppState,
};

/// The audit routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(verify))
}

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1–200, default 50.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One security event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryResponse {
    pub id: Uuid,
    pub seq: i64,
    pub event: String,
    pub actor_user_id: Option<Uuid>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: serde_json::Value,
    pub hash: String,
    pub created_at: DateTime<Utc>,
}

/// A page of events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntryResponse>,
    pub next_cursor: Option<String>,
}

/// The result of recomputing the chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    pub valid: bool,
    pub entries_checked: u64,
    /// The first entry whose content, position or link does not match its hash.
    pub first_broken_id: Option<Uuid>,
}

/// The organisation's security events, newest first (`audit:read`).
#[utoipa::path(
    get,
    path = "/audit-log",
    tag = "identity",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, body = AuditPage),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 422, body = Problem),
    )
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<ApiJson<AuditPage>, ApiError> {
    let permit = principal.require(Permission::AuditRead)?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::Validation {
            detail: "limit must be between 1 and 200".into(),
            errors: vec![crate::problem::FieldError {
                field: "limit".into(),
                message: "must be between 1 and 200".into(),
            }],
        });
    }
    let before = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| ApiError::Validation {
            detail: "cursor is not one this server issued".into(),
            errors: vec![crate::problem::FieldError {
                field: "cursor".into(),
                message: "invalid".into(),
            }],
        })?),
    };
    let rows = state.audit.list(&permit, before, limit + 1).await?;
    let more = rows.len() as u64 > limit;
    let items: Vec<AuditEntryResponse> = rows
        .into_iter()
        .take(limit as usize)
        .map(|m| AuditEntryResponse {
            id: m.id,
            seq: m.seq,
            event: m.event,
            actor_user_id: m.actor_user_id,
            target_type: m.target_type,
            target_id: m.target_id,
            ip: m.ip,
            user_agent: m.user_agent,
            details: m.details,
            hash: m.hash,
            created_at: m.created_at,
        })
        .collect();
    let next_cursor = if more {
        items.last().map(|i| i.seq.to_string())
    } else {
        None
    };
    Ok(ApiJson(AuditPage { items, next_cursor }))
}

/// Recomputes the organisation's hash chain and reports the first broken entry
/// (`audit:read`).
#[utoipa::path(
    get,
    path = "/audit-log/verify",
    tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 200, body = VerifyResponse),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
    )
)]
async fn verify(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<VerifyResponse>, ApiError> {
    let permit = principal.require(Permission::AuditRead)?;
    let report = state.audit.verify(&permit).await?;
    Ok(ApiJson(VerifyResponse {
        valid: report.valid,
        entries_checked: report.entries_checked,
        first_broken_id: report.first_broken_id,
    }))
}
