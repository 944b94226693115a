//! The outbox page for owners and admins: every message ruleIQ sent or is sending for
//! the organisation (scheduled reports, notifications), by status, with why a failed
//! one failed and a button to send it again.
//!
//! Only members with `organization:manage` see it. Account mail (password resets,
//! invitations) belongs to no organisation and is not shown; the operator reads it
//! with `ruleiq mail list`.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use ruleiq_core::Permission;
use ruleiq_services::{
    identity::Permit,
    mail::{MailError, MailStatus, OutboxEntry, OutboxQuery, OutboxScope},
};
use uuid::Uuid;

use super::{
    Chrome, EXPIRED_FORM, Viewer,
    assessments::{FieldError, capitalise, failed, not_found, sign_in_first},
    jobs::{SHORT_ERROR, Tab, shorten, tab_href},
    policies::{field, forbidden, role_name, when},
};
use crate::state::AppState;

/// Messages per page.
const PAGE_SIZE: u64 = 50;
const BASE: &str = "/admin/mail";

/// The statuses a message can have, in the order the tabs show them.
const STATUSES: [(MailStatus, &str); 4] = [
    (MailStatus::Queued, "Waiting to send"),
    (MailStatus::Failed, "Failed"),
    (MailStatus::Sent, "Sent"),
    (MailStatus::Logged, "Logged only"),
];

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(BASE, get(list))
        .route("/admin/mail/{id}/retry", post(retry))
}

/// The owner's or an admin's permit, or the page to answer with.
fn administrator(viewer: &Viewer) -> Result<Permit<'_>, Box<Response>> {
    let Some(account) = &viewer.account else {
        return Err(Box::new(sign_in_first(viewer)));
    };
    account
        .principal
        .require(Permission::OrganizationManage)
        .map_err(|_| {
            Box::new(forbidden(
                viewer,
                &format!(
                    "Your role ({}) cannot read the organisation's outgoing mail; only the owner and admins can.",
                    role_name(viewer)
                ),
                "/dashboard",
                "the dashboard",
            ))
        })
}

fn label_of(status: Option<MailStatus>) -> &'static str {
    STATUSES
        .iter()
        .find(|(s, _)| Some(*s) == status)
        .map_or("All", |(_, l)| *l)
}

struct Row {
    id: Uuid,
    subject: String,
    recipients: String,
    attachments: String,
    status: &'static str,
    status_slug: &'static str,
    attempts: i32,
    max_attempts: i32,
    error: Option<String>,
    full_error: Option<String>,
    created: String,
    sent: String,
    can_retry: bool,
}

impl Row {
    fn of(e: OutboxEntry) -> Self {
        let (error, full_error) = match e.last_error {
            Some(m) if m.chars().count() > SHORT_ERROR => (Some(shorten(&m, SHORT_ERROR)), Some(m)),
            other => (other, None),
        };
        Self {
            id: e.id,
            subject: e.subject,
            recipients: e.recipients.join(", "),
            attachments: e
                .attachments
                .iter()
                .map(|a| format!("{} ({})", a.filename, ruleiq_core::human_size(a.size_bytes)))
                .collect::<Vec<_>>()
                .join(", "),
            status: label_of(Some(e.status)),
            status_slug: e.status.as_str(),
            attempts: e.attempts,
            max_attempts: e.max_attempts,
            error,
            full_error,
            created: when(e.created_at),
            sent: e.sent_at.map(when).unwrap_or_default(),
            can_retry: matches!(e.status, MailStatus::Failed | MailStatus::Logged),
        }
    }
}

#[derive(Template)]
#[template(path = "mail/list.html")]
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
    /// Whether an SMTP server is configured; without one nothing is sent.
    sending: bool,
}

async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    permit: &Permit<'_>,
    status: &str,
    cursor: &str,
    failure: Option<(StatusCode, String)>,
) -> Response {
    let mut code = failure.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let mut errors: Vec<FieldError> = failure
        .into_iter()
        .map(|(_, m)| FieldError::new("mail", m))
        .collect();
    let status = status.trim();
    let filter = MailStatus::parse(status);
    if !status.is_empty() && filter.is_none() {
        code = StatusCode::UNPROCESSABLE_ENTITY;
        errors.push(FieldError::new(
            "mail",
            "Status must be queued, failed, sent or logged.",
        ));
    }
    let cursor = cursor.trim();
    let mut rows = Vec::new();
    let mut next_cursor = None;
    if code != StatusCode::UNPROCESSABLE_ENTITY {
        let found = state
            .outbox
            .list_outbox(
                &OutboxScope::organization(permit),
                &OutboxQuery {
                    status: filter,
                    cursor: (!cursor.is_empty()).then(|| cursor.to_owned()),
                    limit: PAGE_SIZE,
                },
            )
            .await;
        match found {
            Ok(page) => {
                next_cursor = page.next_cursor;
                rows = page.items.into_iter().map(Row::of).collect();
            }
            Err(MailError::Invalid { .. }) => {
                code = StatusCode::UNPROCESSABLE_ENTITY;
                errors.push(FieldError::new(
                    "mail",
                    "That page link is not one this server gave out; start again from the first page.",
                ));
            }
            Err(e) => return failed(viewer, e),
        }
    }
    let slug = filter.map_or("", MailStatus::as_str);
    let mut tabs = vec![Tab {
        href: tab_href(BASE, "", None),
        label: "All",
        current: filter.is_none() && status.is_empty(),
    }];
    tabs.extend(STATUSES.iter().map(|(s, l)| Tab {
        href: tab_href(BASE, s.as_str(), None),
        label: l,
        current: Some(*s) == filter,
    }));
    let page = ListPage {
        chrome: viewer.chrome(),
        tabs,
        status: slug,
        status_label: label_of(filter),
        rows,
        errors,
        next_href: next_cursor.map(|c| tab_href(BASE, slug, Some(&c))),
        first_href: (!cursor.is_empty()).then(|| tab_href(BASE, slug, None)),
        sending: state.outbox.is_sending(),
    };
    viewer.page(code, &page)
}

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let permit = match administrator(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    list_page(
        &state,
        &viewer,
        &permit,
        field(&raw, "status"),
        field(&raw, "cursor"),
        None,
    )
    .await
}

async fn retry(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let permit = match administrator(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    // Back to the tab the button was on.
    let tab = MailStatus::parse(field(&raw, "status").trim()).map_or("", MailStatus::as_str);
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        let failure = Some((StatusCode::FORBIDDEN, EXPIRED_FORM.to_owned()));
        return list_page(&state, &viewer, &permit, tab, "", failure).await;
    }
    let missing = || {
        not_found(
            &viewer,
            "There is no such message in your organisation's outbox.",
            BASE,
            "the outbox",
        )
    };
    let Ok(id) = id.parse::<Uuid>() else {
        return missing();
    };
    let failure = match state
        .outbox
        .retry(&OutboxScope::organization(&permit), id)
        .await
    {
        Ok(entry) => {
            let message = format!(
                "Queued “{}” again, with a fresh set of {} attempts.",
                entry.subject, entry.max_attempts
            );
            return viewer.redirect(&tab_href(BASE, tab, None), Some(&message), None);
        }
        Err(MailError::NotFound) => return missing(),
        Err(e @ (MailError::NotRetryable(_) | MailError::NotConfigured)) => {
            (StatusCode::CONFLICT, capitalise(&e.to_string()))
        }
        Err(e) => return failed(&viewer, e),
    };
    list_page(&state, &viewer, &permit, tab, "", Some(failure)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_has_a_tab_label_and_retry_is_offered_only_where_it_works() {
        assert_eq!(label_of(None), "All");
        assert_eq!(label_of(Some(MailStatus::Failed)), "Failed");
        let now = chrono::Utc::now();
        let entry = |status| OutboxEntry {
            id: Uuid::nil(),
            organization_id: None,
            recipients: vec!["a@example.com".into(), "b@example.com".into()],
            subject: "Report".into(),
            body: None,
            html_body: None,
            attachments: vec![],
            status,
            attempts: 5,
            max_attempts: 5,
            last_error: Some("4".repeat(200)),
            next_attempt_at: None,
            created_at: now,
            sent_at: None,
        };
        let row = Row::of(entry(MailStatus::Failed));
        assert!(row.can_retry);
        assert_eq!(row.recipients, "a@example.com, b@example.com");
        assert_eq!(row.full_error.as_deref().map(str::len), Some(200));
        assert!(!Row::of(entry(MailStatus::Sent)).can_retry);
        assert!(!Row::of(entry(MailStatus::Queued)).can_retry);
    }
}
