//! The jobs page for owners and admins: the organisation's background jobs by
//! status, with what went wrong, and buttons to run a failed or cancelled job again
//! or to cancel one still queued.
//!
//! Only members with `jobs:manage` see it; everyone else gets the forbidden page.
//! Both buttons are plain forms carrying the CSRF token, and come back to the tab
//! they were pressed on with a message saying what happened.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use ruleiq_core::{JobId, OrganizationId, Permission};
use ruleiq_services::{
    identity::Permit,
    jobs::{JobError, JobStatus},
};
use uuid::Uuid;

use super::{
    Chrome, EXPIRED_FORM, Viewer,
    assessments::{FieldError, capitalise, failed, not_found, sign_in_first},
    policies::{field, forbidden, role_name, when},
    urlencoding_encode,
};
use crate::state::AppState;

/// Jobs per page.
const PAGE_SIZE: u64 = 50;
/// Errors longer than this show their start, with the whole in a `<details>`.
pub(super) const SHORT_ERROR: usize = 80;

/// The statuses a job can have, in the order the tabs show them.
const STATUSES: [(&str, &str); 5] = [
    ("queued", "Queued"),
    ("running", "Running"),
    ("failed", "Failed"),
    ("succeeded", "Succeeded"),
    ("cancelled", "Cancelled"),
];

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/jobs", get(list))
        .route("/admin/jobs/{id}/retry", post(retry))
        .route("/admin/jobs/{id}/cancel", post(cancel))
}

/// The owner's or an admin's permit, or the page to answer with.
fn manager(viewer: &Viewer) -> Result<Permit<'_>, Box<Response>> {
    let Some(account) = &viewer.account else {
        return Err(Box::new(sign_in_first(viewer)));
    };
    account.principal.require(Permission::JobsManage).map_err(|_| {
        Box::new(forbidden(
            viewer,
            &format!(
                "Your role ({}) cannot see or manage background jobs; only the owner and admins can.",
                role_name(viewer)
            ),
            "/dashboard",
            "the dashboard",
        ))
    })
}

/// `/admin/jobs`, on the tab for `status` (every status when empty).
fn href(status: &str, cursor: Option<&str>) -> String {
    tab_href("/admin/jobs", status, cursor)
}

/// `base` on the tab for `status` (every status when empty), at `cursor`.
pub(super) fn tab_href(base: &str, status: &str, cursor: Option<&str>) -> String {
    let mut pairs = Vec::new();
    if !status.is_empty() {
        pairs.push(format!("status={}", urlencoding_encode(status)));
    }
    if let Some(c) = cursor {
        pairs.push(format!("cursor={}", urlencoding_encode(c)));
    }
    if pairs.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", pairs.join("&"))
    }
}

/// A known status, or "" for any other value.
fn known(status: &str) -> &'static str {
    STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map_or("", |(s, _)| *s)
}

fn label_of(status: &str) -> &'static str {
    STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map_or("Unknown", |(_, l)| *l)
}

/// The start of a long error, ending in an ellipsis.
pub(super) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars()
            .take(max.saturating_sub(1))
            .chain(['…'])
            .collect::<String>()
    }
}

pub(super) struct Tab {
    pub(super) href: String,
    pub(super) label: &'static str,
    pub(super) current: bool,
}

struct Row {
    id: Uuid,
    kind: String,
    status: &'static str,
    status_slug: &'static str,
    attempts: i32,
    max_attempts: i32,
    /// The error, whole when short.
    error: Option<String>,
    /// The whole error, when `error` is only its start.
    full_error: Option<String>,
    created: String,
    finished: String,
    can_retry: bool,
    can_cancel: bool,
}

impl Row {
    fn of(j: JobStatus) -> Self {
        let status = known(&j.status);
        let (error, full_error) = match j.error {
            Some(e) if e.chars().count() > SHORT_ERROR => (Some(shorten(&e, SHORT_ERROR)), Some(e)),
            other => (other, None),
        };
        Self {
            id: j.id.as_uuid(),
            kind: j.kind,
            status: label_of(status),
            status_slug: if status.is_empty() { "unknown" } else { status },
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            error,
            full_error,
            created: when(j.created_at),
            finished: j.finished_at.map(when).unwrap_or_default(),
            can_retry: matches!(status, "failed" | "cancelled"),
            can_cancel: status == "queued",
        }
    }
}

#[derive(Template)]
#[template(path = "jobs/list.html")]
struct ListPage {
    chrome: Chrome,
    tabs: Vec<Tab>,
    /// The tab shown: a status, or "" for all.
    status: &'static str,
    status_label: &'static str,
    rows: Vec<Row>,
    errors: Vec<FieldError>,
    next_href: Option<String>,
    first_href: Option<String>,
}

/// The page for `status` and `cursor` (both as sent), with a refused action's error.
async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    org: OrganizationId,
    status: &str,
    cursor: &str,
    failure: Option<(StatusCode, String)>,
) -> Response {
    let mut code = failure.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let mut errors: Vec<FieldError> = failure
        .into_iter()
        .map(|(_, m)| FieldError::new("jobs", m))
        .collect();
    let status = status.trim();
    let filter = known(status);
    if !status.is_empty() && filter.is_empty() {
        code = StatusCode::UNPROCESSABLE_ENTITY;
        errors.push(FieldError::new(
            "jobs",
            "Status must be queued, running, failed, succeeded or cancelled.",
        ));
    }
    let cursor = cursor.trim();
    let before = match cursor {
        "" => None,
        c => match c.parse::<Uuid>() {
            Ok(id) => Some(id),
            Err(_) => {
                code = StatusCode::UNPROCESSABLE_ENTITY;
                errors.push(FieldError::new(
                    "jobs",
                    "That page link is not one this server gave out; start again from the first page.",
                ));
                None
            }
        },
    };
    let mut rows = Vec::new();
    let mut next_cursor = None;
    if code != StatusCode::UNPROCESSABLE_ENTITY {
        let found = state
            .jobs
            .list_in_org(
                org.as_uuid(),
                (!filter.is_empty()).then_some(filter),
                before,
                PAGE_SIZE + 1,
            )
            .await;
        let mut found = match found {
            Ok(j) => j,
            Err(e) => return failed(viewer, e),
        };
        if found.len() as u64 > PAGE_SIZE {
            found.truncate(usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX));
            next_cursor = found.last().map(|j| j.id.as_uuid().to_string());
        }
        rows = found.into_iter().map(Row::of).collect();
    }
    let mut tabs = vec![Tab {
        href: href("", None),
        label: "All",
        current: filter.is_empty() && status.is_empty(),
    }];
    tabs.extend(STATUSES.iter().map(|(s, l)| Tab {
        href: href(s, None),
        label: l,
        current: *s == filter,
    }));
    let page = ListPage {
        chrome: viewer.chrome(),
        tabs,
        status: filter,
        status_label: label_of(filter),
        rows,
        errors,
        next_href: next_cursor.map(|c| href(filter, Some(&c))),
        first_href: (!cursor.is_empty()).then(|| href(filter, None)),
    };
    viewer.page(code, &page)
}

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let permit = match manager(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    list_page(
        &state,
        &viewer,
        permit.organization_id(),
        field(&raw, "status"),
        field(&raw, "cursor"),
        None,
    )
    .await
}

/// Which button was pressed.
#[derive(Clone, Copy)]
enum Action {
    Retry,
    Cancel,
}

async fn act(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    raw: &[(String, String)],
    action: Action,
) -> Response {
    let permit = match manager(viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let org = permit.organization_id();
    // Back to the tab the button was on.
    let tab = known(field(raw, "status").trim());
    if !viewer.csrf_ok(field(raw, "csrf_token")) {
        let failure = Some((StatusCode::FORBIDDEN, EXPIRED_FORM.to_owned()));
        return list_page(state, viewer, org, tab, "", failure).await;
    }
    let missing = || {
        not_found(
            viewer,
            "There is no such job in your organisation.",
            "/admin/jobs",
            "the jobs",
        )
    };
    let Ok(id) = id.parse::<JobId>() else {
        return missing();
    };
    let done = match action {
        Action::Retry => state.jobs.retry(Some(org.as_uuid()), id).await,
        Action::Cancel => state.jobs.cancel(Some(org.as_uuid()), id).await,
    };
    let failure = match done {
        Ok(job) => {
            let message = match action {
                Action::Retry => format!(
                    "Queued the {} job again, with a fresh set of {} attempts.",
                    job.kind, job.max_attempts
                ),
                Action::Cancel => format!(
                    "Cancelled the queued {} job; it will not run unless you retry it.",
                    job.kind
                ),
            };
            return viewer.redirect(&href(tab, None), Some(&message), None);
        }
        Err(JobError::NotFound) => return missing(),
        Err(JobError::Conflict(m)) => (StatusCode::CONFLICT, capitalise(&m)),
        Err(JobError::Queue(e)) => {
            tracing::warn!(error = %e, "a job could not be queued again");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The job queue is unavailable; please try again in a minute.".to_owned(),
            )
        }
        Err(e) => return failed(viewer, e),
    };
    list_page(state, viewer, org, tab, "", Some(failure)).await
}

async fn retry(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    act(&state, &viewer, &id, &raw, Action::Retry).await
}

async fn cancel(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    act(&state, &viewer, &id, &raw, Action::Cancel).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_link_to_their_status_and_long_errors_are_shortened() {
        assert_eq!(href("", None), "/admin/jobs");
        assert_eq!(href("failed", None), "/admin/jobs?status=failed");
        assert_eq!(
            href("queued", Some("abc")),
            "/admin/jobs?status=queued&cursor=abc"
        );
        assert_eq!(known("failed"), "failed");
        assert_eq!(known("dead"), "");
        assert_eq!(shorten("short", 10), "short");
        let long = shorten(&"x".repeat(100), 10);
        assert_eq!(long.chars().count(), 10);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn a_long_error_keeps_its_whole_text_for_the_details() {
        let now = chrono::Utc::now();
        let job = JobStatus {
            id: JobId::new(),
            kind: "report_generate".into(),
            status: "failed".into(),
            attempts: 3,
            max_attempts: 3,
            error: Some("e".repeat(200)),
            result: None,
            next_attempt_at: None,
            created_at: now,
            started_at: Some(now),
            finished_at: Some(now),
        };
        let row = Row::of(job);
        assert_eq!(
            row.error.as_deref().map(|e| e.chars().count()),
            Some(SHORT_ERROR)
        );
        assert_eq!(row.full_error.as_deref().map(str::len), Some(200));
        assert!(row.can_retry && !row.can_cancel);
        assert_eq!((row.status, row.status_slug), ("Failed", "failed"));
    }
}
