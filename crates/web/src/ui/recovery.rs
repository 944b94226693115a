//! Forgotten passwords and invitations: the pages the e-mailed links open.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Query, State},
    http::StatusCode,
    response::Response,
    routing::get,
};
use ruleiq_services::identity::AcceptInput;
use serde::Deserialize;

use super::{Chrome, EXPIRED_FORM, Viewer, form_error};
use crate::{extract::Client, state::AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/forgot-password", get(forgot_page).post(forgot))
        .route("/reset-password", get(reset_page).post(reset))
        .route("/accept-invitation", get(accept_page).post(accept))
}

/// Common fields of every page's layout.
macro_rules! page_struct {
    ($name:ident, $path:literal { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Template)]
        #[template(path = $path)]
        struct $name {
            chrome: Chrome,
            $($field: $ty,)*
        }
    };
}

page_struct!(ForgotPage, "auth/forgot.html" {});
page_struct!(ResetPage, "auth/reset.html" { error: Option<String>, token: String });
page_struct!(AcceptPage, "auth/accept.html" { error: Option<String>, token: String, full_name: String });

#[derive(Debug, Deserialize, Default)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn forgot_page(viewer: Viewer) -> Response {
    let page = ForgotPage {
        chrome: viewer.chrome(),
    };
    viewer.page(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
struct ForgotForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
}

async fn forgot(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Form(form): Form<ForgotForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf_token) {
        return viewer.redirect("/forgot-password", Some(EXPIRED_FORM), None);
    }
    if let Err(e) = state.identity.forgot_password(&form.email, &client).await {
        tracing::error!(error = %e, "forgot-password failed");
    }
    viewer.redirect(
        "/sign-in",
        Some("If that address has an account, a link to choose a new password is on its way."),
        None,
    )
}

fn reset_view(viewer: &Viewer, error: Option<String>, token: String) -> ResetPage {
    ResetPage {
        chrome: viewer.chrome(),
        error,
        token,
    }
}

async fn reset_page(viewer: Viewer, Query(q): Query<TokenQuery>) -> Response {
    viewer.page(StatusCode::OK, &reset_view(&viewer, None, q.token))
}

#[derive(Debug, Deserialize)]
struct ResetForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
}

async fn reset(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Form(form): Form<ResetForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf_token) {
        let view = reset_view(&viewer, Some(EXPIRED_FORM.into()), form.token);
        return viewer.page(StatusCode::FORBIDDEN, &view);
    }
    match state
        .identity
        .reset_password(&form.token, &form.new_password, &client)
        .await
    {
        Ok(()) => viewer.redirect(
            "/sign-in",
            Some("Your password is changed; sign in with it."),
            None,
        ),
        Err(e) => {
            let (status, message) = form_error(&e);
            viewer.page(status, &reset_view(&viewer, Some(message), form.token))
        }
    }
}

fn accept_view(
    viewer: &Viewer,
    error: Option<String>,
    token: String,
    full_name: String,
) -> AcceptPage {
    AcceptPage {
        chrome: viewer.chrome(),
        error,
        token,
        full_name,
    }
}

async fn accept_page(viewer: Viewer, Query(q): Query<TokenQuery>) -> Response {
    viewer.page(
        StatusCode::OK,
        &accept_view(&viewer, None, q.token, String::new()),
    )
}

#[derive(Debug, Deserialize)]
struct AcceptForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    password: String,
}

async fn accept(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Form(form): Form<AcceptForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf_token) {
        let view = accept_view(
            &viewer,
            Some(EXPIRED_FORM.into()),
            form.token,
            form.full_name,
        );
        return viewer.page(StatusCode::FORBIDDEN, &view);
    }
    let input = AcceptInput {
        token: form.token.clone(),
        full_name: form.full_name.clone(),
        password: form.password,
    };
    let outcome = match state.identity.accept_invitation(input, &client).await {
        Ok(reg) => state.identity.browser_token(&reg.tokens.access_token),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(token) => viewer.redirect(
            "/dashboard",
            Some("Welcome: you have joined your organisation."),
            Some(&token),
        ),
        Err(e) => {
            let (status, message) = form_error(&e);
            viewer.page(
                status,
                &accept_view(&viewer, Some(message), form.token, form.full_name),
            )
        }
    }
}
