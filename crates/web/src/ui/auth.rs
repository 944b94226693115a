//! Sign in, register, sign out.

use askama::Template;
use axum::{
    Form, Router,
    extract::State,
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use ruleiq_services::identity::{IdentityError, RegisterInput};
use serde::Deserialize;

use super::{Chrome, EXPIRED_FORM, Viewer, form_error};
use crate::{extract::Client, state::AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/register", get(register_page).post(register))
        .route("/sign-out", post(sign_out))
}

#[derive(Template)]
#[template(path = "auth/sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    error: Option<String>,
    email: String,
}

fn sign_in_view(viewer: &Viewer, error: Option<String>, email: String) -> SignInPage {
    SignInPage {
        chrome: viewer.chrome(),
        error,
        email,
    }
}

async fn sign_in_page(viewer: Viewer) -> Response {
    if viewer.account.is_some() {
        return viewer.redirect("/dashboard", None, None);
    }
    viewer.page(StatusCode::OK, &sign_in_view(&viewer, None, String::new()))
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn sign_in(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Form(form): Form<SignInForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf_token) {
        let view = sign_in_view(&viewer, Some(EXPIRED_FORM.into()), form.email);
        return viewer.page(StatusCode::FORBIDDEN, &view);
    }
    match state
        .identity
        .login(&form.email, &form.password, &client)
        .await
    {
        Ok(pair) => match state.identity.browser_token(&pair.access_token) {
            Ok(token) => viewer.redirect("/dashboard", None, Some(&token)),
            Err(e) => failed(&viewer, &e, form.email),
        },
        Err(e) => failed(&viewer, &e, form.email),
    }
}

fn failed(viewer: &Viewer, e: &IdentityError, email: String) -> Response {
    let (status, message) = form_error(e);
    viewer.page(status, &sign_in_view(viewer, Some(message), email))
}

#[derive(Template)]
#[template(path = "auth/register.html")]
struct RegisterPage {
    chrome: Chrome,
    error: Option<String>,
    email: String,
    full_name: String,
    organization_name: String,
}

#[derive(Debug, Deserialize, Default)]
struct RegisterForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    organization_name: String,
}

fn register_view(viewer: &Viewer, error: Option<String>, form: &RegisterForm) -> RegisterPage {
    RegisterPage {
        chrome: viewer.chrome(),
        error,
        email: form.email.clone(),
        full_name: form.full_name.clone(),
        organization_name: form.organization_name.clone(),
    }
}

async fn register_page(viewer: Viewer) -> Response {
    viewer.page(
        StatusCode::OK,
        &register_view(&viewer, None, &RegisterForm::default()),
    )
}

async fn register(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Form(form): Form<RegisterForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf_token) {
        let view = register_view(&viewer, Some(EXPIRED_FORM.into()), &form);
        return viewer.page(StatusCode::FORBIDDEN, &view);
    }
    let input = RegisterInput {
        email: form.email.clone(),
        password: form.password.clone(),
        full_name: form.full_name.clone(),
        organization_name: form.organization_name.clone(),
    };
    let outcome = match state.identity.register(input, &client).await {
        Ok(reg) => state.identity.browser_token(&reg.tokens.access_token),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(token) => viewer.redirect(
            "/dashboard",
            Some("Welcome to ruleIQ: your organisation is ready."),
            Some(&token),
        ),
        Err(e) => {
            let (status, message) = form_error(&e);
            viewer.page(status, &register_view(&viewer, Some(message), &form))
        }
    }
}

#[derive(Debug, Deserialize)]
struct SignOutForm {
    #[serde(default)]
    csrf_token: String,
}

async fn sign_out(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Form(form): Form<SignOutForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf_token) {
        return viewer.redirect("/dashboard", Some(EXPIRED_FORM), None);
    }
    if let Some(account) = &viewer.account
        && let Err(e) = state.identity.logout(&account.principal, &client).await
    {
        tracing::error!(error = %e, "sign-out failed");
    }
    viewer.redirect("/sign-in", Some("You are signed out."), Some(""))
}
