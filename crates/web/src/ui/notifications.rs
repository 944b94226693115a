//! The notifications pages: the signed-in member's notices (all, or only unread), with
//! a "mark read" button on each and "mark all read"; and the preferences page, a
//! checkbox per kind per channel.
//!
//! Every member has these pages, for their own notices only. Buttons are plain forms
//! carrying the CSRF token and come back with a message, so nothing needs JavaScript.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use ruleiq_services::{
    identity::Principal,
    notifications::{
        DEFAULT_PER_PAGE, Kind, ListQuery, NotificationError, NotificationView, Preference,
    },
};
use uuid::Uuid;

use super::{
    Chrome, EXPIRED_FORM, Viewer,
    assessments::{FieldError, failed, not_found, sign_in_first},
    policies::{field, when},
};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/notifications", get(list))
        .route("/notifications/read-all", post(read_all))
        .route("/notifications/{id}/read", post(read))
        .route(
            "/notifications/preferences",
            get(preferences).post(save_preferences),
        )
}

/// The signed-in member, or the page to answer with.
fn member(viewer: &Viewer) -> Result<&Principal, Box<Response>> {
    viewer
        .account
        .as_ref()
        .map(|a| &a.principal)
        .ok_or_else(|| Box::new(sign_in_first(viewer)))
}

/// `/notifications`, only unread ones when `unread`, on page `page`.
fn href(unread: bool, page: u64) -> String {
    match (unread, page) {
        (false, 1) => "/notifications".to_owned(),
        (true, 1) => "/notifications?unread=true".to_owned(),
        (false, p) => format!("/notifications?page={p}"),
        (true, p) => format!("/notifications?unread=true&page={p}"),
    }
}

struct Row {
    id: Uuid,
    kind: &'static str,
    title: String,
    body: String,
    link: Option<String>,
    read: bool,
    created: String,
    emailed: bool,
}

impl From<NotificationView> for Row {
    fn from(n: NotificationView) -> Self {
        Self {
            id: n.id,
            kind: n.kind.label(),
            title: n.title,
            body: n.body,
            link: n.link,
            read: n.read,
            created: when(n.created_at),
            emailed: n.emailed_at.is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "notifications/list.html")]
struct ListPage {
    chrome: Chrome,
    unread_only: bool,
    rows: Vec<Row>,
    total: u64,
    unread: u64,
    page: u64,
    all_href: String,
    unread_href: String,
    prev_href: Option<String>,
    next_href: Option<String>,
    errors: Vec<FieldError>,
}

/// Reads `unread` and `page` as sent; anything unreadable is the first page of all.
fn view_of(raw: &[(String, String)]) -> (bool, u64) {
    let unread = matches!(field(raw, "unread").trim(), "true" | "1" | "on");
    let page = field(raw, "page")
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    (unread, page)
}

async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    who: &Principal,
    unread_only: bool,
    page: u64,
    failure: Option<(StatusCode, String)>,
) -> Response {
    let code = failure.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let errors = failure
        .into_iter()
        .map(|(_, m)| FieldError::new("notices", m))
        .collect();
    let query = ListQuery {
        unread_only,
        page: Some(page),
        per_page: Some(DEFAULT_PER_PAGE),
    };
    let found = match state.notifications.list(who, query).await {
        Ok(p) => p,
        Err(e) => return failed(viewer, e),
    };
    let shown = (page - 1) * found.per_page + found.items.len() as u64;
    let mut chrome = viewer.chrome();
    // The bell agrees with the list even if this page changed the count.
    if let Some(u) = chrome.user.as_mut() {
        u.unread = Some(found.unread);
    }
    let view = ListPage {
        chrome,
        unread_only,
        total: found.total,
        unread: found.unread,
        page,
        all_href: href(false, 1),
        unread_href: href(true, 1),
        prev_href: (page > 1).then(|| href(unread_only, page - 1)),
        next_href: (shown < found.total).then(|| href(unread_only, page + 1)),
        rows: found.items.into_iter().map(Row::from).collect(),
        errors,
    };
    viewer.page(code, &view)
}

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let who = match member(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let (unread, page) = view_of(&raw);
    list_page(&state, &viewer, who, unread, page, None).await
}

async fn read(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let who = match member(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let (unread, page) = view_of(&raw);
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        let failure = Some((StatusCode::FORBIDDEN, EXPIRED_FORM.to_owned()));
        return list_page(&state, &viewer, who, unread, page, failure).await;
    }
    let missing = || {
        not_found(
            &viewer,
            "There is no such notification among yours.",
            "/notifications",
            "your notifications",
        )
    };
    let Ok(id) = id.parse::<Uuid>() else {
        return missing();
    };
    match state.notifications.mark_read(who, id).await {
        Ok(n) => viewer.redirect(
            &href(unread, page),
            Some(&format!("Marked “{}” read.", n.title)),
            None,
        ),
        Err(NotificationError::NotFound) => missing(),
        Err(e) => failed(&viewer, e),
    }
}

async fn read_all(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let who = match member(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        let failure = Some((StatusCode::FORBIDDEN, EXPIRED_FORM.to_owned()));
        return list_page(&state, &viewer, who, false, 1, failure).await;
    }
    match state.notifications.mark_all_read(who).await {
        Ok(0) => viewer.redirect("/notifications", Some("Nothing was unread."), None),
        Ok(n) => viewer.redirect(
            "/notifications",
            Some(&format!(
                "Marked {n} notification{} read.",
                if n == 1 { "" } else { "s" }
            )),
            None,
        ),
        Err(e) => failed(&viewer, e),
    }
}

struct PreferenceRow {
    kind: &'static str,
    label: &'static str,
    description: &'static str,
    in_app: bool,
    email: bool,
}

#[derive(Template)]
#[template(path = "notifications/preferences.html")]
struct PreferencesPage {
    chrome: Chrome,
    rows: Vec<PreferenceRow>,
    errors: Vec<FieldError>,
}

async fn preferences_page(
    state: &AppState,
    viewer: &Viewer,
    who: &Principal,
    failure: Option<(StatusCode, String)>,
) -> Response {
    let code = failure.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let errors = failure
        .into_iter()
        .map(|(_, m)| FieldError::new("preferences", m))
        .collect();
    let prefs = match state.notifications.preferences(who).await {
        Ok(p) => p,
        Err(e) => return failed(viewer, e),
    };
    let rows = prefs
        .into_iter()
        .map(|p| PreferenceRow {
            kind: p.kind.as_str(),
            label: p.kind.label(),
            description: p.kind.description(),
            in_app: p.in_app,
            email: p.email,
        })
        .collect();
    let page = PreferencesPage {
        chrome: viewer.chrome(),
        rows,
        errors,
    };
    viewer.page(code, &page)
}

async fn preferences(State(state): State<AppState>, viewer: Viewer) -> Response {
    let who = match member(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    preferences_page(&state, &viewer, who, None).await
}

/// The form lists every kind; a box left unticked is not sent, so a kind's channel
/// is on exactly when its box came back.
fn choices_of(raw: &[(String, String)]) -> Vec<Preference> {
    let ticked = |name: String| raw.iter().any(|(k, _)| *k == name);
    Kind::ALL
        .into_iter()
        .map(|kind| Preference {
            kind,
            in_app: ticked(format!("{kind}.in_app")),
            email: ticked(format!("{kind}.email")),
        })
        .collect()
}

async fn save_preferences(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let who = match member(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        let failure = Some((StatusCode::FORBIDDEN, EXPIRED_FORM.to_owned()));
        return preferences_page(&state, &viewer, who, failure).await;
    }
    match state
        .notifications
        .set_preferences(who, choices_of(&raw))
        .await
    {
        Ok(_) => viewer.redirect(
            "/notifications/preferences",
            Some("Saved your notification preferences."),
            None,
        ),
        Err(e) => failed(&viewer, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn links_keep_the_filter_and_page() {
        assert_eq!(href(false, 1), "/notifications");
        assert_eq!(href(true, 1), "/notifications?unread=true");
        assert_eq!(href(true, 3), "/notifications?unread=true&page=3");
        assert_eq!(
            view_of(&form(&[("unread", "true"), ("page", "2")])),
            (true, 2)
        );
        assert_eq!(view_of(&form(&[("page", "0")])), (false, 1));
        assert_eq!(view_of(&form(&[("page", "x")])), (false, 1));
    }

    #[test]
    fn only_ticked_boxes_turn_a_channel_on() {
        let choices = choices_of(&form(&[
            ("csrf_token", "t"),
            ("task_due.in_app", "on"),
            ("report_ready.email", "on"),
        ]));
        assert_eq!(choices.len(), Kind::ALL.len());
        let of = |k: Kind| *choices.iter().find(|c| c.kind == k).unwrap();
        assert!(of(Kind::TaskDue).in_app && !of(Kind::TaskDue).email);
        assert!(!of(Kind::ReportReady).in_app && of(Kind::ReportReady).email);
        assert!(!of(Kind::WeeklyDigest).in_app && !of(Kind::WeeklyDigest).email);
    }
}
