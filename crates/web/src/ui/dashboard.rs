//! The dashboard: readiness per framework with its trend, open gaps by severity,
//! overdue and upcoming tasks, recent activity, and the way in (onboarding) for an
//! organisation that has not described itself yet.
//!
//! Every chart is followed by a table with the same figures. Evidence expiring within
//! 30 days and evidence awaiting approval link into the evidence library's views. AI
//! spend arrives with its own issue; until then the page says nothing about it rather
//! than show figures it does not have.

use askama::Template;
use axum::{Router, extract::State, http::StatusCode, response::Response, routing::get};
use ruleiq_core::{Criticality, Permission};
use ruleiq_services::{dashboard::TREND_DAYS, plans::TaskView, profiles::ProfileError};

use super::{
    Chrome, Viewer,
    assessments::{band_label, day, failed, severity_label, sign_in_first},
    charts::{self, Bar, number},
};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/dashboard", get(index))
}

struct TrendPoint {
    day: String,
    score: String,
}

struct FrameworkRow {
    name: String,
    slug: String,
    readiness: String,
    band: &'static str,
    assessment_score: String,
    last_assessed: String,
    trend_svg: String,
    trend: Vec<TrendPoint>,
}

struct GapRow {
    severity: &'static str,
    count: usize,
}

struct TaskLine {
    href: String,
    reference: String,
    title: String,
    priority: &'static str,
    due: String,
}

struct ActivityRow {
    at: String,
    event: String,
}

struct ExpiringLine {
    href: String,
    title: String,
    expires: String,
}

struct InProgress {
    href: String,
    name: String,
    answered: usize,
    total: usize,
}

#[derive(Template)]
#[template(path = "dashboard/index.html")]
struct DashboardPage {
    chrome: Chrome,
    name: String,
    organization: String,
    role: String,
    has_profile: bool,
    overall: String,
    frameworks: Vec<FrameworkRow>,
    readiness_svg: String,
    gaps: Vec<GapRow>,
    gaps_total: usize,
    gaps_svg: String,
    overdue_count: u64,
    overdue: Vec<TaskLine>,
    upcoming_count: u64,
    upcoming: Vec<TaskLine>,
    upcoming_days: u64,
    activity: Option<Vec<ActivityRow>>,
    in_progress: Vec<InProgress>,
    trend_days: u64,
    evidence_expiring_count: u64,
    evidence_expiring: Vec<ExpiringLine>,
    pending_approvals: u64,
    can_approve: bool,
}

fn task_line(t: TaskView) -> TaskLine {
    TaskLine {
        href: format!("/plans/{}#task-{}", t.plan_id, t.id),
        reference: t.reference,
        title: t.title,
        priority: severity_label(t.priority),
        due: day(t.due_date),
    }
}

/// `plan_task.updated` as people read it: "plan task updated".
fn event_text(event: &str) -> String {
    event.replace(['.', '_'], " ")
}

async fn index(State(state): State<AppState>, viewer: Viewer) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let principal = &account.principal;
    let base = |has_profile| DashboardPage {
        chrome: viewer.chrome(),
        name: account.account.full_name.clone(),
        organization: account.account.organization_name.clone(),
        role: principal.role.as_str().replace('_', " "),
        has_profile,
        overall: String::new(),
        frameworks: Vec::new(),
        readiness_svg: String::new(),
        gaps: Vec::new(),
        gaps_total: 0,
        gaps_svg: String::new(),
        overdue_count: 0,
        overdue: Vec::new(),
        upcoming_count: 0,
        upcoming: Vec::new(),
        upcoming_days: ruleiq_services::dashboard::UPCOMING_DAYS,
        activity: None,
        in_progress: Vec::new(),
        trend_days: TREND_DAYS,
        evidence_expiring_count: 0,
        evidence_expiring: Vec::new(),
        pending_approvals: 0,
        can_approve: principal.can(Permission::ComplianceApprove),
    };
    let Ok(permit) = principal.require(Permission::ComplianceRead) else {
        return viewer.page(StatusCode::OK, &base(true));
    };
    let org = permit.organization_id();
    let has_profile = match state.profiles.get(org).await {
        Ok(_) => true,
        Err(ProfileError::Missing) => false,
        Err(e) => return failed(&viewer, e),
    };
    let summary = match state
        .dashboard
        .summary(org, principal.can(Permission::AuditRead))
        .await
    {
        Ok(s) => s,
        Err(e) => return failed(&viewer, e),
    };
    let assessments = match state.assessments.list(org).await {
        Ok(a) => a,
        Err(e) => return failed(&viewer, e),
    };
    let mut page = base(has_profile);
    page.overall = number(summary.overall_score);
    page.readiness_svg = if summary.frameworks.is_empty() {
        String::new()
    } else {
        let bars: Vec<Bar> = summary
            .frameworks
            .iter()
            .map(|f| Bar {
                label: f.readiness.framework_name.clone(),
                value: f.readiness.readiness_score,
            })
            .collect();
        charts::bar_chart(
            "readiness-chart",
            "Readiness by framework",
            "Readiness out of 100 for each assessed framework; the table below gives the figures.",
            &bars,
            100.0,
        )
    };
    page.frameworks = summary
        .frameworks
        .into_iter()
        .map(|f| {
            let r = f.readiness;
            let first = f.trend.first().map(|(_, s)| *s).unwrap_or_default();
            let last = f.trend.last().map(|(_, s)| *s).unwrap_or_default();
            let direction = match last.partial_cmp(&first) {
                _ if f.trend.len() < 2 => "one reading so far".to_owned(),
                Some(std::cmp::Ordering::Greater) => {
                    format!("up from {} to {}", number(first), number(last))
                }
                Some(std::cmp::Ordering::Less) => {
                    format!("down from {} to {}", number(first), number(last))
                }
                _ => format!("steady at {}", number(last)),
            };
            FrameworkRow {
                trend_svg: charts::trend_line(
                    &format!("trend-{}", r.framework_slug),
                    &format!("{} readiness over time", r.framework_name),
                    &format!("Readiness out of 100 over the last {TREND_DAYS} days: {direction}."),
                    &f.trend,
                ),
                trend: f
                    .trend
                    .iter()
                    .map(|(d, s)| TrendPoint {
                        day: day(*d),
                        score: number(*s),
                    })
                    .collect(),
                name: r.framework_name,
                slug: r.framework_slug,
                readiness: number(r.readiness_score),
                band: band_label(r.band),
                assessment_score: number(r.assessment_score),
                last_assessed: day(r.last_assessed_at.date_naive()),
            }
        })
        .collect();
    let g = summary.open_gaps;
    page.gaps = [
        (Criticality::Critical, g.critical),
        (Criticality::High, g.high),
        (Criticality::Medium, g.medium),
        (Criticality::Low, g.low),
    ]
    .into_iter()
    .map(|(s, count)| GapRow {
        severity: severity_label(s),
        count,
    })
    .collect();
    page.gaps_total = g.total();
    if g.total() > 0 {
        let bars: Vec<Bar> = page
            .gaps
            .iter()
            .map(|r| Bar {
                label: r.severity.to_owned(),
                value: r.count as f64,
            })
            .collect();
        let max = bars.iter().map(|b| b.value).fold(1.0, f64::max);
        page.gaps_svg = charts::bar_chart(
            "gaps-chart",
            "Open gaps by severity",
            &format!(
                "{} open gaps: {} critical, {} high, {} medium, {} low.",
                g.total(),
                g.critical,
                g.high,
                g.medium,
                g.low
            ),
            &bars,
            max,
        );
    }
    page.overdue_count = summary.overdue_count;
    page.overdue = summary.overdue.into_iter().map(task_line).collect();
    page.upcoming_count = summary.upcoming_count;
    page.upcoming = summary.upcoming.into_iter().map(task_line).collect();
    page.evidence_expiring_count = summary.evidence_expiring_count;
    page.evidence_expiring = summary
        .evidence_expiring
        .iter()
        .map(|(id, title, expires)| ExpiringLine {
            href: format!("/evidence/{id}"),
            title: title.clone(),
            expires: day(expires.date_naive()),
        })
        .collect();
    page.pending_approvals = summary.pending_approvals;
    page.activity = summary.recent_activity.map(|entries| {
        entries
            .into_iter()
            .map(|e| ActivityRow {
                at: e.created_at.format("%-d %b %Y %H:%M").to_string(),
                event: event_text(&e.event),
            })
            .collect()
    });
    page.in_progress = assessments
        .into_iter()
        .filter(|a| a.status != "completed")
        .map(|a| InProgress {
            href: format!("/assessments/{}", a.id),
            name: a.name,
            answered: a.answered,
            total: a.total,
        })
        .collect();
    viewer.page(StatusCode::OK, &page)
}
