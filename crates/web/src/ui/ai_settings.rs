//! AI settings for people: the providers and their circuit breakers, the budget
//! form, today's spending, and spending by day and by feature over the last 30 days
//! as charts with their tables. Members with `ai:use` see the page; those with
//! `ai:manage` may change the budget.
//!
//! Costs are fractions of a cent, so the charts here are drawn with dollar labels
//! rather than through `charts::bar_chart`, whose scale starts at 1.

use askama::Template;
use axum::{
    Form, Router,
    extract::State,
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use chrono::{Duration, NaiveDate};
use ruleiq_core::Permission;
use ruleiq_db::repositories::ai::GroupBy;
use ruleiq_services::ai::{BudgetInput, UsageRow, budget::BudgetError, budget::Standing};
use rust_decimal::{Decimal, prelude::ToPrimitive};
use std::fmt::Write;
use uuid::Uuid;

use super::{
    Chrome, EXPIRED_FORM, Viewer,
    assessments::{FieldError, capitalise, day, failed, sign_in_first},
    charts::escape,
    policies::{field, forbidden, role_name},
};
use crate::state::AppState;

/// Days of history the charts show.
const DAYS: i64 = 30;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/ai", get(show))
        .route("/settings/ai/budget", post(put_budget))
}

/// Dollars as people read them: `$0`, `$1.50`, `$0.0012`.
fn dollars(d: Decimal) -> String {
    if d.is_zero() {
        return "$0".to_owned();
    }
    let s = if d.abs() >= Decimal::ONE {
        d.round_dp(2).to_string()
    } else {
        d.round_dp(6).normalize().to_string()
    };
    format!("${s}")
}

fn feature_label(key: &str) -> String {
    match key {
        "assistant" => "Assistant".to_owned(),
        "assessment_help" => "Question help".to_owned(),
        "policy_generation" => "Policy writing".to_owned(),
        other => capitalise(&other.replace('_', " "))
            .trim_end_matches('.')
            .to_owned(),
    }
}

fn breaker_label(state: &str) -> &'static str {
    match state {
        "closed" => "In use",
        "open" => "Failing: skipped for now",
        "half_open" => "Being retried",
        _ => "Unknown",
    }
}

fn standing_label(s: Standing) -> &'static str {
    match s {
        Standing::Ok => "Within budget",
        Standing::Warning => "Near the limit",
        Standing::Exceeded => "Over the limit",
    }
}

/// A horizontal bar chart of dollar amounts, as `charts::bar_chart` draws (same
/// classes, `role="img"`, `<title>` and `<desc>`), with dollar labels.
fn dollar_chart(id: &str, title: &str, desc: &str, bars: &[(String, Decimal)]) -> String {
    const LABEL: u32 = 160;
    const PLOT: u32 = 300;
    const ROW: u32 = 22;
    let max = bars
        .iter()
        .map(|(_, v)| v.to_f64().unwrap_or(0.0))
        .fold(0.0_f64, f64::max);
    let height = ROW * u32::try_from(bars.len()).unwrap_or(0) + 8;
    let width = LABEL + PLOT + 90;
    let id = escape(id);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-labelledby="{id}-t {id}-d"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        escape(title),
        escape(desc)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = 4 + ROW * u32::try_from(i).unwrap_or(0);
        let v = value.to_f64().unwrap_or(0.0).max(0.0);
        let w = if max > 0.0 {
            (v / max * f64::from(PLOT)).round()
        } else {
            0.0
        };
        let _ = write!(
            out,
            r#"<text class="chart-label" x="{}" y="{}" text-anchor="end">{}</text><rect class="chart-bar" x="{LABEL}" y="{}" width="{w}" height="{}"></rect><text class="chart-value" x="{}" y="{}">{}</text>"#,
            LABEL - 6,
            y + 15,
            escape(label),
            y + 3,
            ROW - 6,
            f64::from(LABEL) + w + 6.0,
            y + 15,
            escape(&dollars(*value))
        );
    }
    let _ = write!(
        out,
        r#"<line class="chart-axis" x1="{LABEL}" y1="0" x2="{LABEL}" y2="{height}"></line></svg>"#
    );
    out
}

struct ProviderRow {
    name: String,
    configured: bool,
    model: String,
    state: &'static str,
    last_error: String,
}

struct SpendRow {
    label: String,
    requests: i64,
    tokens: i64,
    cost: String,
}

/// What the budget form shows: the saved budget, or what was sent.
struct BudgetForm {
    daily: String,
    monthly: String,
    warning: String,
    hard_limit: bool,
}

#[derive(Template)]
#[template(path = "ai/settings.html")]
struct SettingsPage {
    chrome: Chrome,
    errors: Vec<FieldError>,
    can_manage: bool,
    providers: Vec<ProviderRow>,
    form: BudgetForm,
    today: String,
    today_cost: String,
    today_requests: i64,
    today_input_tokens: i64,
    today_output_tokens: i64,
    today_cache_hits: i64,
    today_errors: i64,
    today_by_provider: Vec<SpendRow>,
    daily_limit: String,
    monthly_limit: String,
    spent_month: String,
    standing: &'static str,
    standing_slug: &'static str,
    hard_limit: bool,
    days_svg: String,
    days: Vec<SpendRow>,
    days_total: String,
    features_svg: String,
    features: Vec<SpendRow>,
    from: String,
}

impl SettingsPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::assessments::error_for(&self.errors, field)
    }
}

fn spend_row(label: String, r: &UsageRow) -> SpendRow {
    SpendRow {
        label,
        requests: r.requests,
        tokens: r.input_tokens + r.output_tokens,
        cost: dollars(r.cost_usd),
    }
}

async fn page(
    state: &AppState,
    viewer: &Viewer,
    sent: Option<BudgetForm>,
    failure: Option<(StatusCode, FieldError)>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(viewer);
    };
    let Ok(permit) = account.principal.require(Permission::AiUse) else {
        return forbidden(
            viewer,
            &format!("Your role ({}) cannot see AI settings.", role_name(viewer)),
            "/dashboard",
            "the dashboard",
        );
    };
    let org: Uuid = permit.organization_id().as_uuid();
    let today: NaiveDate = state.plans.today();
    let from = today - Duration::days(DAYS - 1);
    let now = today
        .and_hms_opt(12, 0, 0)
        .map_or_else(chrono::Utc::now, |t| t.and_utc());
    let budget = match state.ai.budget_state(org, now).await {
        Ok(b) => b,
        Err(e) => return failed(viewer, e),
    };
    let summary = match state.ai.daily_summary(org, today).await {
        Ok(s) => s,
        Err(e) => return failed(viewer, e),
    };
    let by_day = match state.ai.usage(org, from, today, GroupBy::Day).await {
        Ok(r) => r,
        Err(e) => return failed(viewer, e),
    };
    let by_feature = match state.ai.usage(org, from, today, GroupBy::Feature).await {
        Ok(r) => r,
        Err(e) => return failed(viewer, e),
    };
    // Every day of the range, with nothing spent where there is no row.
    let mut day_bars = Vec::new();
    let mut days = Vec::new();
    let mut total = Decimal::ZERO;
    for n in 0..DAYS {
        let d = from + Duration::days(n);
        let key = d.format("%Y-%m-%d").to_string();
        let label = d.format("%-d %b").to_string();
        let r = by_day.iter().find(|r| r.key == key);
        let cost = r.map_or(Decimal::ZERO, |r| r.cost_usd);
        total += cost;
        day_bars.push((label.clone(), cost));
        days.push(match r {
            Some(r) => spend_row(day(d), r),
            None => SpendRow {
                label: day(d),
                requests: 0,
                tokens: 0,
                cost: dollars(Decimal::ZERO),
            },
        });
    }
    let feature_bars: Vec<(String, Decimal)> = by_feature
        .iter()
        .map(|r| (feature_label(&r.key), r.cost_usd))
        .collect();
    let b = &budget.budget;
    let form = sent.unwrap_or_else(|| BudgetForm {
        daily: b
            .daily_limit_usd
            .map(|d| d.normalize().to_string())
            .unwrap_or_default(),
        monthly: b
            .monthly_limit_usd
            .map(|d| d.normalize().to_string())
            .unwrap_or_default(),
        warning: b.warning_threshold_percent.to_string(),
        hard_limit: b.hard_limit,
    });
    let standing = summary.budget.status;
    let status = failure.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let page = SettingsPage {
        chrome: viewer.chrome(),
        errors: failure.map(|(_, e)| e).into_iter().collect(),
        can_manage: account.principal.can(Permission::AiManage),
        providers: state
            .ai
            .providers()
            .into_iter()
            .map(|p| ProviderRow {
                name: p.name.as_str().to_owned(),
                configured: p.configured,
                model: p.model,
                state: breaker_label(p.state.as_str()),
                last_error: p.last_error.unwrap_or_default(),
            })
            .collect(),
        form,
        today: day(today),
        today_cost: dollars(summary.total_cost_usd),
        today_requests: summary.requests,
        today_input_tokens: summary.input_tokens,
        today_output_tokens: summary.output_tokens,
        today_cache_hits: summary.cache_hits,
        today_errors: summary.errors,
        today_by_provider: summary
            .by_provider
            .iter()
            .map(|r| spend_row(r.key.clone(), r))
            .collect(),
        daily_limit: b.daily_limit_usd.map(dollars).unwrap_or_default(),
        monthly_limit: b.monthly_limit_usd.map(dollars).unwrap_or_default(),
        spent_month: dollars(ruleiq_services::ai::usd(budget.spent_month_nanos)),
        standing: standing_label(standing),
        standing_slug: match standing {
            Standing::Ok => "ok",
            Standing::Warning => "warning",
            Standing::Exceeded => "exceeded",
        },
        hard_limit: b.hard_limit,
        days_svg: dollar_chart(
            "spend-by-day",
            &format!("AI spending by day, last {DAYS} days"),
            &format!(
                "{} in total from {} to {}; the table below gives each day.",
                dollars(total),
                day(from),
                day(today)
            ),
            &day_bars,
        ),
        days,
        days_total: dollars(total),
        features_svg: dollar_chart(
            "spend-by-feature",
            &format!("AI spending by feature, last {DAYS} days"),
            &if feature_bars.is_empty() {
                "No AI use in this period.".to_owned()
            } else {
                format!(
                    "{} features; the table below gives the figures.",
                    feature_bars.len()
                )
            },
            &feature_bars,
        ),
        features: by_feature
            .iter()
            .map(|r| spend_row(feature_label(&r.key), r))
            .collect(),
        from: day(from),
    };
    viewer.page(status, &page)
}

async fn show(State(state): State<AppState>, viewer: Viewer) -> Response {
    page(&state, &viewer, None, None).await
}

/// A limit from the form: empty is none.
fn parse_limit(raw: &str) -> Result<Option<Decimal>, ()> {
    let raw = raw.trim().trim_start_matches('$').trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<Decimal>().map(Some).map_err(|_| ())
}

async fn put_budget(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let Ok(permit) = account.principal.require(Permission::AiManage) else {
        return forbidden(
            &viewer,
            &format!(
                "Your role ({}) cannot change the AI budget.",
                role_name(&viewer)
            ),
            "/settings/ai",
            "AI settings",
        );
    };
    let sent = || BudgetForm {
        daily: field(&raw, "daily_limit_usd").to_owned(),
        monthly: field(&raw, "monthly_limit_usd").to_owned(),
        warning: field(&raw, "warning_threshold_percent").to_owned(),
        hard_limit: !field(&raw, "hard_limit").is_empty(),
    };
    let refuse = |status: StatusCode, f: &str, message: String| {
        page(
            &state,
            &viewer,
            Some(sent()),
            Some((status, FieldError::new(f, message))),
        )
    };
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        return refuse(
            StatusCode::FORBIDDEN,
            "daily_limit_usd",
            EXPIRED_FORM.to_owned(),
        )
        .await;
    }
    let Ok(daily) = parse_limit(field(&raw, "daily_limit_usd")) else {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "daily_limit_usd",
            "Daily limit must be an amount in dollars, such as 5 or 2.50, or empty for none."
                .to_owned(),
        )
        .await;
    };
    let Ok(monthly) = parse_limit(field(&raw, "monthly_limit_usd")) else {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "monthly_limit_usd",
            "Monthly limit must be an amount in dollars, such as 50, or empty for none.".to_owned(),
        )
        .await;
    };
    let warning = match field(&raw, "warning_threshold_percent").trim() {
        "" => 80,
        w => match w.trim_end_matches('%').trim().parse::<i64>() {
            Ok(w) => w,
            Err(_) => {
                return refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "warning_threshold_percent",
                    "Warn at must be a whole percentage from 1 to 100.".to_owned(),
                )
                .await;
            }
        },
    };
    let input = BudgetInput {
        daily_limit_usd: daily,
        monthly_limit_usd: monthly,
        warning_threshold_percent: warning,
        hard_limit: !field(&raw, "hard_limit").is_empty(),
    };
    let org = permit.organization_id().as_uuid();
    let by = permit.principal().user_id.as_uuid();
    match state.ai.put_budget(org, by, input).await {
        Ok(_) => viewer.redirect("/settings/ai", Some("Saved the AI budget."), None),
        Err(BudgetError::Invalid { field, message }) => {
            let label = match field {
                "daily_limit_usd" => "Daily limit",
                "monthly_limit_usd" => "Monthly limit",
                _ => "Warn at",
            };
            refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                field,
                format!("{label}: {}", capitalise(&message)),
            )
            .await
        }
        Err(e) => failed(&viewer, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_read_well() {
        assert_eq!(dollars(Decimal::ZERO), "$0");
        assert_eq!(dollars(Decimal::new(150, 2)), "$1.50");
        assert_eq!(dollars(Decimal::new(12, 4)), "$0.0012");
        assert_eq!(parse_limit(" $5 "), Ok(Some(Decimal::from(5))));
        assert_eq!(parse_limit(""), Ok(None));
        assert!(parse_limit("five").is_err());
    }

    #[test]
    fn the_chart_is_named_and_escapes_labels() {
        let svg = dollar_chart(
            "c",
            "Spend",
            "Two days",
            &[
                ("<a>".to_owned(), Decimal::ONE),
                ("b".to_owned(), Decimal::ZERO),
            ],
        );
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains("<title id=\"c-t\">Spend</title>"));
        assert!(svg.contains("&lt;a&gt;"));
        assert!(svg.contains("$1"));
    }
}
