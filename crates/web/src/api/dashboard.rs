//! `/dashboard`: where the organisation stands and what needs doing, in one answer.

use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use ruleiq_core::Permission;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    api::{assessments::FrameworkReadiness, plans::TaskResponse},
    extract::AuthUser,
    problem::{ApiError, ApiJson, Problem},
    state::AppState,
};

/// The dashboard route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dashboard))
}

/// One day's readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendPoint {
    pub day: NaiveDate,
    pub readiness_score: f64,
}

/// A framework's readiness and its daily trend (today's point is live).
#[derive(Debug, Serialize, ToSchema)]
pub struct FrameworkTrend {
    #[serde(flatten)]
    pub readiness: FrameworkReadiness,
    /// Oldest first, over the last 90 days.
    pub trend: Vec<TrendPoint>,
}

/// Gaps of the latest assessments not yet closed by a done task.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenGaps {
    pub total: usize,
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
}

/// A count with the first few items.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskGroup {
    pub count: u64,
    /// At most ten, soonest due first.
    pub items: Vec<TaskResponse>,
}

/// One audited event.
#[derive(Debug, Serialize, ToSchema)]
pub struct Activity {
    pub event: String,
    pub actor_user_id: Option<Uuid>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The dashboard.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardResponse {
    pub today: NaiveDate,
    /// The mean readiness of the assessed frameworks.
    pub overall_score: f64,
    pub frameworks: Vec<FrameworkTrend>,
    pub open_gaps: OpenGaps,
    /// Unfinished tasks whose due date has passed.
    pub overdue_tasks: TaskGroup,
    /// Unfinished tasks due in the next 14 days.
    pub upcoming_tasks: TaskGroup,
    /// Evidence expiring within 30 days (and not yet expired).
    pub evidence_expiring_30d: Option<u64>,
    /// The first of them, soonest first.
    pub evidence_expiring: Vec<ExpiringEvidence>,
    /// Evidence awaiting approval (policies join it with the policy store).
    pub pending_approvals: Option<u64>,
    /// AI spend this month in US dollars; null while this build makes no AI calls.
    pub ai_spend_this_month_usd: Option<f64>,
    /// The last ten audited events, for readers of the audit trail; null otherwise.
    pub recent_activity: Option<Vec<Activity>>,
}

/// An evidence item about to expire.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpiringEvidence {
    pub id: uuid::Uuid,
    pub title: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Readiness per framework with its trend, open gaps by severity, overdue and
/// upcoming tasks, and recent activity.
#[utoipa::path(
    get,
    path = "/dashboard",
    tag = "dashboard",
    security(("bearer" = [])),
    responses((status = 200, body = DashboardResponse), (status = 401, body = Problem), (status = 403, body = Problem))
)]
async fn dashboard(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<DashboardResponse>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let s = state
        .dashboard
        .summary(
            permit.organization_id(),
            principal.can(Permission::AuditRead),
        )
        .await
        .map_err(ApiError::internal)?;
    let spend = state
        .ai
        .month_to_date(permit.organization_id().as_uuid(), s.today)
        .await
        .map_err(ApiError::internal)?;
    let group = |count: u64, items: Vec<ruleiq_services::plans::TaskView>| TaskGroup {
        count,
        items: items.into_iter().map(TaskResponse::from).collect(),
    };
    Ok(ApiJson(DashboardResponse {
        today: s.today,
        overall_score: s.overall_score,
        frameworks: s
            .frameworks
            .into_iter()
            .map(|f| FrameworkTrend {
                readiness: f.readiness.into(),
                trend: f
                    .trend
                    .into_iter()
                    .map(|(day, readiness_score)| TrendPoint {
                        day,
                        readiness_score,
                    })
                    .collect(),
            })
            .collect(),
        open_gaps: OpenGaps {
            total: s.open_gaps.total(),
            critical: s.open_gaps.critical,
            high: s.open_gaps.high,
            medium: s.open_gaps.medium,
            low: s.open_gaps.low,
        },
        overdue_tasks: group(s.overdue_count, s.overdue),
        upcoming_tasks: group(s.upcoming_count, s.upcoming),
        evidence_expiring_30d: Some(s.evidence_expiring_count),
        evidence_expiring: s
            .evidence_expiring
            .into_iter()
            .map(|(id, title, expires_at)| ExpiringEvidence {
                id,
                title,
                expires_at,
            })
            .collect(),
        pending_approvals: Some(s.pending_approvals),
        ai_spend_this_month_usd: rust_decimal::prelude::ToPrimitive::to_f64(&spend),
        recent_activity: s.recent_activity.map(|entries| {
            entries
                .into_iter()
                .map(|e| Activity {
                    event: e.event,
                    actor_user_id: e.actor_user_id,
                    target_type: e.target_type,
                    target_id: e.target_id,
                    created_at: e.created_at,
                })
                .collect()
        }),
    }))
}
