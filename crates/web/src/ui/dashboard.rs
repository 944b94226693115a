//! The dashboard. A placeholder until the dashboard issue lands.

use askama::Template;
use axum::{Router, http::StatusCode, response::Response, routing::get};

use super::{Chrome, Viewer};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/dashboard", get(index))
}

#[derive(Template)]
#[template(path = "dashboard/index.html")]
struct DashboardPage {
    chrome: Chrome,
    name: String,
    organization: String,
    role: String,
}

async fn index(viewer: Viewer) -> Response {
    let Some(account) = &viewer.account else {
        return viewer.redirect("/sign-in", Some("Please sign in first."), None);
    };
    let page = DashboardPage {
        chrome: viewer.chrome(),
        name: account.account.full_name.clone(),
        organization: account.account.organization_name.clone(),
        role: account.principal.role.as_str().replace('_', " "),
    };
    viewer.page(StatusCode::OK, &page)
}
