//! `/ai`: the providers and their circuit breakers, spending, usage and the budget.

use axum::extract::State;
use chrono::{Duration, NaiveDate, Utc};
use ruleiq_core::Permission;
use ruleiq_db::repositories::ai::GroupBy;
use ruleiq_services::ai::{
    Budget, BudgetInput, DailySummary, UsageRow,
    budget::{BudgetError, as_number},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::frameworks::invalid,
    extract::AuthUser,
    problem::{ApiError, ApiJson, ApiQuery, Problem},
    state::AppState,
};

/// The AI routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(providers))
        .routes(routes!(daily_summary))
        .routes(routes!(usage))
        .routes(routes!(get_budget, put_budget))
}

impl From<BudgetError> for ApiError {
    fn from(e: BudgetError) -> Self {
        match e {
            BudgetError::Invalid { field, message } => invalid(field, &message),
            BudgetError::Db(db) => ApiError::internal(db),
        }
    }
}

/// A provider and the state of its circuit breaker.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderResponse {
    /// `openai`, `anthropic`, `gemini`, `ollama` or `offline`.
    pub name: String,
    /// Whether it has what it needs (a key, or a URL for Ollama).
    pub configured: bool,
    pub model: String,
    /// `closed` (in use), `open` (failing; skipped) or `half_open` (being retried).
    pub state: String,
    pub last_error: Option<String>,
}

/// The AI providers in preference order, and whether each is in use.
#[utoipa::path(
    get,
    path = "/ai/providers",
    tag = "ai",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<ProviderResponse>), (status = 401, body = Problem))
)]
async fn providers(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<Vec<ProviderResponse>>, ApiError> {
    principal.require(Permission::AiUse)?;
    Ok(ApiJson(provider_statuses(&state)))
}

/// Every provider's state, for this endpoint and for monitoring.
#[must_use]
pub fn provider_statuses(state: &AppState) -> Vec<ProviderResponse> {
    state
        .ai
        .providers()
        .into_iter()
        .map(|p| ProviderResponse {
            name: p.name.as_str().to_owned(),
            configured: p.configured,
            model: p.model,
            state: p.state.as_str().to_owned(),
            last_error: p.last_error,
        })
        .collect()
}

/// Which day.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DayParams {
    /// `YYYY-MM-DD` (UTC); today when absent.
    pub date: Option<NaiveDate>,
}

/// One day's AI spending, requests and tokens by provider and feature, with the
/// budget's state.
#[utoipa::path(
    get,
    path = "/ai/cost/daily-summary",
    tag = "ai",
    security(("bearer" = [])),
    params(DayParams),
    responses((status = 200, body = DailySummary), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem))
)]
async fn daily_summary(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiQuery(q): ApiQuery<DayParams>,
) -> Result<ApiJson<DailySummary>, ApiError> {
    let permit = principal.require(Permission::AiUse)?;
    let date = q.date.unwrap_or_else(|| Utc::now().date_naive());
    Ok(ApiJson(
        state
            .ai
            .daily_summary(permit.organization_id().as_uuid(), date)
            .await
            .map_err(ApiError::internal)?,
    ))
}

/// How to group usage.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Grouping {
    Day,
    Feature,
    Provider,
}

/// A range of days.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// First day (UTC), default 29 days before `to`.
    pub from: Option<NaiveDate>,
    /// Last day (UTC), default today.
    pub to: Option<NaiveDate>,
    /// `day` (default), `feature` or `provider`.
    #[param(inline)]
    pub group_by: Option<Grouping>,
}

/// Usage over a range of days.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageResponse {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group_by: String,
    #[serde(serialize_with = "as_number")]
    #[schema(value_type = f64)]
    pub total_cost_usd: rust_decimal::Decimal,
    pub items: Vec<UsageRow>,
}

/// AI usage between two days, grouped by day, feature or provider.
#[utoipa::path(
    get,
    path = "/ai/cost/usage",
    tag = "ai",
    security(("bearer" = [])),
    params(UsageParams),
    responses((status = 200, body = UsageResponse), (status = 401, body = Problem), (status = 422, description = "`from` after `to`, or a range over 366 days", body = Problem))
)]
async fn usage(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiQuery(q): ApiQuery<UsageParams>,
) -> Result<ApiJson<UsageResponse>, ApiError> {
    let permit = principal.require(Permission::AiUse)?;
    let to = q.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = q.from.unwrap_or(to - Duration::days(29));
    if from > to {
        return Err(invalid("from", "must not be after `to`"));
    }
    if (to - from).num_days() > 366 {
        return Err(invalid("from", "a range of at most 366 days"));
    }
    let grouping = q.group_by.unwrap_or(Grouping::Day);
    let (group_by, name) = match grouping {
        Grouping::Day => (GroupBy::Day, "day"),
        Grouping::Feature => (GroupBy::Feature, "feature"),
        Grouping::Provider => (GroupBy::Provider, "provider"),
    };
    let items = state
        .ai
        .usage(permit.organization_id().as_uuid(), from, to, group_by)
        .await
        .map_err(ApiError::internal)?;
    let total = items.iter().map(|i| i.cost_usd).sum();
    Ok(ApiJson(UsageResponse {
        from,
        to,
        group_by: name.to_owned(),
        total_cost_usd: total,
        items,
    }))
}

/// The organisation's AI budget (no limits until one is set).
#[utoipa::path(
    get,
    path = "/ai/budget",
    tag = "ai",
    security(("bearer" = [])),
    responses((status = 200, body = Budget), (status = 401, body = Problem))
)]
async fn get_budget(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<Budget>, ApiError> {
    let permit = principal.require(Permission::AiUse)?;
    let s = state
        .ai
        .budget_state(permit.organization_id().as_uuid(), Utc::now())
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiJson(s.budget))
}

/// Sets the budget. Over a hard limit, answers come from the offline engine and say
/// so; otherwise the limit only warns.
#[utoipa::path(
    put,
    path = "/ai/budget",
    tag = "ai",
    security(("bearer" = [])),
    request_body = BudgetInput,
    responses((status = 200, body = Budget), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, description = "A negative or absurd limit, or a threshold outside 1–100", body = Problem))
)]
async fn put_budget(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiJson(body): ApiJson<BudgetInput>,
) -> Result<ApiJson<Budget>, ApiError> {
    let permit = principal.require(Permission::AiManage)?;
    Ok(ApiJson(
        state
            .ai
            .put_budget(
                permit.organization_id().as_uuid(),
                permit.principal().user_id.as_uuid(),
                body,
            )
            .await?,
    ))
}
