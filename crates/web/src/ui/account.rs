//! Account, organisation settings, members and the audit log, for people.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use ruleiq_core::{Permission, Role};
use ruleiq_services::identity::{IdentityError, MemberChange};
use serde::Deserialize;

use super::{Chrome, EXPIRED_FORM, Viewer, form_error};
use crate::{extract::Client, state::AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(account_page))
        .route("/account/password", post(change_password))
        .route("/account/organization", post(rename))
        .route("/members", get(members_page))
        .route("/members/invite", post(invite))
        .route("/members/{id}", post(update_member))
        .route("/audit", get(audit_page))
}

#[derive(Template)]
#[template(path = "account/index.html")]
struct AccountPage {
    chrome: Chrome,
    error: Option<String>,
    name: String,
    email: String,
    organization: String,
    role: String,
    can_rename: bool,
}

fn account_view(viewer: &Viewer, error: Option<String>) -> Option<AccountPage> {
    let a = viewer.account.as_ref()?;
    Some(AccountPage {
        chrome: viewer.chrome(),
        error,
        name: a.account.full_name.clone(),
        email: a.account.email.clone(),
        organization: a.account.organization_name.clone(),
        role: a.principal.role.as_str().replace('_', " "),
        can_rename: a.principal.can(Permission::OrganizationManage),
    })
}

fn sign_in_first(viewer: &Viewer) -> Response {
    viewer.redirect("/sign-in", Some("Please sign in first."), None)
}

async fn account_page(viewer: Viewer) -> Response {
    match account_view(&viewer, None) {
        Some(page) => viewer.page(StatusCode::OK, &page),
        None => sign_in_first(&viewer),
    }
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Form(form): Form<PasswordForm>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    if !viewer.csrf_ok(&form.csrf_token) {
        return viewer.redirect("/account", Some(EXPIRED_FORM), None);
    }
    match state
        .identity
        .change_password(
            &account.principal,
            &form.current_password,
            &form.new_password,
            &client,
        )
        .await
    {
        Ok(()) => viewer.redirect(
            "/account",
            Some("Your password is changed; your other sessions are signed out."),
            None,
        ),
        Err(e) => {
            let status = match e {
                IdentityError::BadCredentials => StatusCode::UNAUTHORIZED,
                IdentityError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let message = if matches!(e, IdentityError::BadCredentials) {
                "Your current password is not right.".to_owned()
            } else {
                form_error(&e).1
            };
            match account_view(&viewer, Some(message)) {
                Some(page) => viewer.page(status, &page),
                None => sign_in_first(&viewer),
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct RenameForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
}

async fn rename(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Form(form): Form<RenameForm>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    if !viewer.csrf_ok(&form.csrf_token) {
        return viewer.redirect("/account", Some(EXPIRED_FORM), None);
    }
    let Ok(permit) = account.principal.require(Permission::OrganizationManage) else {
        return viewer.redirect(
            "/account",
            Some("Your role cannot rename the organisation."),
            None,
        );
    };
    match state
        .identity
        .rename_organization(&permit, &form.name, &client)
        .await
    {
        Ok(_) => viewer.redirect("/account", Some("The organisation is renamed."), None),
        Err(e) => match account_view(&viewer, Some(form_error(&e).1)) {
            Some(page) => viewer.page(StatusCode::UNPROCESSABLE_ENTITY, &page),
            None => sign_in_first(&viewer),
        },
    }
}

struct MemberRow {
    id: String,
    name: String,
    email: String,
    role: String,
    active: bool,
    is_self: bool,
}

#[derive(Template)]
#[template(path = "members/index.html")]
struct MembersPage {
    chrome: Chrome,
    error: Option<String>,
    organization: String,
    members: Vec<MemberRow>,
    roles: Vec<&'static str>,
}

async fn members_view(
    state: &AppState,
    viewer: &Viewer,
    error: Option<String>,
) -> Result<(StatusCode, MembersPage), Response> {
    let Some(account) = &viewer.account else {
        return Err(sign_in_first(viewer));
    };
    let Ok(permit) = account.principal.require(Permission::UsersManage) else {
        return Err(viewer.redirect("/dashboard", Some("Your role cannot manage members."), None));
    };
    let rows = state.identity.members(&permit).await.map_err(|e| {
        tracing::error!(error = %e, "members page");
        viewer.redirect(
            "/dashboard",
            Some("The members could not be read; please try again."),
            None,
        )
    })?;
    let me = account.principal.user_id.as_uuid();
    Ok((
        if error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        MembersPage {
            chrome: viewer.chrome(),
            error,
            organization: account.account.organization_name.clone(),
            members: rows
                .into_iter()
                .map(|(m, u)| MemberRow {
                    id: u.id.to_string(),
                    name: u.full_name,
                    email: u.email,
                    role: m.role,
                    active: u.is_active,
                    is_self: u.id == me,
                })
                .collect(),
            roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        },
    ))
}

async fn members_page(State(state): State<AppState>, viewer: Viewer) -> Response {
    match members_view(&state, &viewer, None).await {
        Ok((status, page)) => viewer.page(status, &page),
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
struct InviteForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

async fn invite(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Form(form): Form<InviteForm>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    if !viewer.csrf_ok(&form.csrf_token) {
        return viewer.redirect("/members", Some(EXPIRED_FORM), None);
    }
    let Ok(permit) = account.principal.require(Permission::UsersManage) else {
        return viewer.redirect("/dashboard", Some("Your role cannot manage members."), None);
    };
    match state
        .identity
        .invite(&permit, &form.email, &form.role, &client)
        .await
    {
        Ok(sent) => viewer.redirect(
            "/members",
            Some(&format!("Invitation sent to {}.", sent.invitation.email)),
            None,
        ),
        Err(e) => match members_view(&state, &viewer, Some(form_error(&e).1)).await {
            Ok((status, page)) => viewer.page(status, &page),
            Err(response) => response,
        },
    }
}

#[derive(Debug, Deserialize)]
struct MemberForm {
    #[serde(default)]
    csrf_token: String,
    role: Option<String>,
    is_active: Option<String>,
}

async fn update_member(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path(id): Path<String>,
    Form(form): Form<MemberForm>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    if !viewer.csrf_ok(&form.csrf_token) {
        return viewer.redirect("/members", Some(EXPIRED_FORM), None);
    }
    let Ok(permit) = account.principal.require(Permission::UsersManage) else {
        return viewer.redirect("/dashboard", Some("Your role cannot manage members."), None);
    };
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return viewer.redirect(
            "/members",
            Some("No such member in your organisation."),
            None,
        );
    };
    let change = MemberChange {
        role: form.role,
        is_active: form.is_active.as_deref().map(|v| v == "true"),
    };
    match state
        .identity
        .update_member(&permit, id, change, &client)
        .await
    {
        Ok((_, user)) => viewer.redirect(
            "/members",
            Some(&format!("Saved {}.", user.full_name)),
            None,
        ),
        Err(e) => match members_view(&state, &viewer, Some(form_error(&e).1)).await {
            Ok((status, page)) => viewer.page(status, &page),
            Err(response) => response,
        },
    }
}

struct AuditRow {
    seq: i64,
    at: String,
    event: String,
    actor: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "audit/index.html")]
struct AuditPage {
    chrome: Chrome,
    valid: bool,
    checked: u64,
    broken: String,
    entries: Vec<AuditRow>,
}

async fn audit_page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let Ok(permit) = account.principal.require(Permission::AuditRead) else {
        return viewer.redirect(
            "/dashboard",
            Some("Your role cannot read the audit log."),
            None,
        );
    };
    let (entries, report) = match (
        state.audit.list(&permit, None, 100).await,
        state.audit.verify(&permit).await,
    ) {
        (Ok(entries), Ok(report)) => (entries, report),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "audit page");
            return viewer.redirect(
                "/dashboard",
                Some("The audit log could not be read; please try again."),
                None,
            );
        }
    };
    let page = AuditPage {
        chrome: viewer.chrome(),
        valid: report.valid,
        checked: report.entries_checked,
        broken: report
            .first_broken_id
            .map(|i| i.to_string())
            .unwrap_or_default(),
        entries: entries
            .into_iter()
            .map(|e| AuditRow {
                seq: e.seq,
                at: e.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                event: e.event,
                actor: e.actor_user_id.map(|a| a.to_string()).unwrap_or_default(),
                ip: e.ip.unwrap_or_default(),
            })
            .collect(),
    };
    viewer.page(StatusCode::OK, &page)
}
