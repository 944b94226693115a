//! Policies for people: the library, writing one from a template, one policy's page
//! with its workflow buttons, the editor (with a server-side preview), versions and
//! the comparison of two, and exports.
//!
//! Every page works without JavaScript. A policy being written shows "being
//! written…" and refreshes itself every two seconds with a `<meta http-equiv>` until
//! its text is there. Text written by members or models is rendered by
//! [`crate::markdown::to_html`], which sanitises it; no other HTML is trusted.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use ruleiq_core::{OrganizationId, Permission};
use ruleiq_db::repositories::{frameworks as frameworks_repo, identity};
use ruleiq_services::{
    audit::ClientInfo,
    identity::Permit,
    policies::{
        ExportFormat, GenerateRequest, GeneratedBy, Generation, MAX_INSTRUCTIONS, PolicyError,
        PolicyView, Status, TemplateView, template_views,
    },
};
use std::collections::HashMap;
use uuid::Uuid;

use super::{
    Chrome, EXPIRED_FORM, Viewer,
    assessments::{FieldError, capitalise, day, failed, not_found, sign_in_first},
    urlencoding_encode,
};
use crate::{api::evidence::disposition, extract::Client, markdown, state::AppState};

/// Policies per page of the library.
const PAGE_SIZE: u64 = 25;
/// Unchanged lines kept either side of a change in a comparison.
const CONTEXT: usize = 3;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/policies", get(list))
        .route("/policies/new", get(new_page).post(generate))
        .route("/policies/{id}", get(show))
        .route("/policies/{id}/edit", get(edit_page).post(save))
        .route("/policies/{id}/submit", post(submit))
        .route("/policies/{id}/approve", post(approve))
        .route("/policies/{id}/withdraw", post(withdraw))
        .route("/policies/{id}/archive", post(archive))
        .route("/policies/{id}/delete", get(confirm_delete).post(delete))
        .route("/policies/{id}/export", get(export))
        .route("/policies/{id}/versions", get(versions))
        .route("/policies/{id}/diff", get(diff))
}

// ---- Shared with the assistant and AI settings pages ----

/// The first value of `name` in a form or query, or "".
pub(super) fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[derive(Template)]
#[template(path = "policies/forbidden.html")]
struct ForbiddenPage {
    chrome: Chrome,
    message: String,
    back_href: String,
    back_label: String,
}

/// A 403 page: the reader's role does not allow what they tried.
pub(super) fn forbidden(
    viewer: &Viewer,
    message: &str,
    back_href: &str,
    back_label: &str,
) -> Response {
    viewer.page(
        StatusCode::FORBIDDEN,
        &ForbiddenPage {
            chrome: viewer.chrome(),
            message: message.to_owned(),
            back_href: back_href.to_owned(),
            back_label: back_label.to_owned(),
        },
    )
}

/// The reader's role as people read it: "compliance manager".
pub(super) fn role_name(viewer: &Viewer) -> String {
    viewer
        .account
        .as_ref()
        .map(|a| a.principal.role.as_str().replace('_', " "))
        .unwrap_or_default()
}

/// A time as pages show it (UTC).
pub(super) fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%-d %b %Y %H:%M").to_string()
}

// ---- Words ----

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Draft => "Draft",
        Status::InReview => "In review",
        Status::Approved => "Approved",
        Status::Archived => "Archived",
    }
}

fn parse_status(s: &str) -> Option<Status> {
    match s {
        "draft" => Some(Status::Draft),
        "in_review" => Some(Status::InReview),
        "approved" => Some(Status::Approved),
        "archived" => Some(Status::Archived),
        _ => None,
    }
}

const STATUSES: [Status; 4] = [
    Status::Draft,
    Status::InReview,
    Status::Approved,
    Status::Archived,
];

/// The templates, or none when the library cannot be read (logged).
fn templates() -> Vec<TemplateView> {
    template_views().unwrap_or_else(|e| {
        tracing::error!(error = %e, "policy templates failed to load");
        Vec::new()
    })
}

/// `access_control` as people read it: the template's name, else "Access control".
fn type_label(templates: &[TemplateView], policy_type: &str) -> String {
    templates
        .iter()
        .find(|t| t.policy_type == policy_type)
        .map_or_else(
            || {
                capitalise(&policy_type.replace('_', " "))
                    .trim_end_matches('.')
                    .to_owned()
            },
            |t| t.name.clone(),
        )
}

/// A model's provenance; `None` for our template filled by the offline engine.
fn model_of(g: Option<&GeneratedBy>) -> Option<&GeneratedBy> {
    g.filter(|g| g.provider != "offline")
}

/// The short badge of who first drafted a policy.
fn drafted_badge(p: &PolicyView) -> String {
    match model_of(p.generated_by.as_ref()) {
        Some(g) => format!("AI: {} {}", g.provider, g.model),
        None => "Template".to_owned(),
    }
}

fn policy_missing(viewer: &Viewer) -> Response {
    not_found(
        viewer,
        "There is no such policy in your organisation.",
        "/policies",
        "the policy library",
    )
}

/// The status and sentence of a refused policy operation; `Err` for our failure.
fn explain(e: PolicyError) -> Result<(StatusCode, String, &'static str), String> {
    Ok(match e {
        PolicyError::NotFound(m) => (StatusCode::NOT_FOUND, capitalise(m), ""),
        PolicyError::Conflict(m) => (StatusCode::CONFLICT, capitalise(&m), ""),
        PolicyError::Invalid { field, message } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            field_sentence(field, &message),
            field,
        ),
        PolicyError::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            capitalise(&PolicyError::TooLarge.to_string()),
            "content_markdown",
        ),
        PolicyError::Queue(m) => (StatusCode::SERVICE_UNAVAILABLE, capitalise(&m), ""),
        PolicyError::Export(m) => return Err(m),
        PolicyError::Db(e) => return Err(e.to_string()),
    })
}

fn field_sentence(field: &str, message: &str) -> String {
    let label = match field {
        "title" => "Title",
        "content_markdown" => "Text",
        "policy_type" => "Policy type",
        "instructions" => "Instructions",
        "framework_ids" => "Frameworks",
        "cursor" => "Page",
        _ => return capitalise(message),
    };
    format!("{label}: {}", capitalise(message))
}

/// The signed-in member's permit for `permission`, or the page to answer with.
fn permit_for<'a>(
    viewer: &'a Viewer,
    permission: Permission,
    refusal: &str,
) -> Result<Permit<'a>, Box<Response>> {
    let Some(account) = &viewer.account else {
        return Err(Box::new(sign_in_first(viewer)));
    };
    account.principal.require(permission).map_err(|_| {
        Box::new(forbidden(
            viewer,
            &format!("Your role ({}) cannot {refusal}.", role_name(viewer)),
            "/policies",
            "the policy library",
        ))
    })
}

fn reader(viewer: &Viewer) -> Result<Permit<'_>, Box<Response>> {
    permit_for(viewer, Permission::ComplianceRead, "see policies")
}

// ---- The library ----

struct Row {
    href: String,
    title: String,
    type_label: String,
    status: &'static str,
    status_slug: &'static str,
    version: i32,
    next_review: String,
    badge: String,
    pending: bool,
    failed: bool,
}

struct StatusChoice {
    value: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "policies/list.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    errors: Vec<FieldError>,
    statuses: Vec<StatusChoice>,
    status: String,
    can_write: bool,
    next_href: Option<String>,
    first_href: Option<String>,
}

impl ListPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::assessments::error_for(&self.errors, field)
    }
}

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let permit = match reader(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let status = field(&raw, "status").trim();
    let cursor = field(&raw, "cursor").trim();
    let mut errors = Vec::new();
    let filter = if status.is_empty() {
        None
    } else {
        let parsed = parse_status(status);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "status",
                "Status must be one from the list.",
            ));
        }
        parsed
    };
    let templates = templates();
    let mut rows = Vec::new();
    let mut next_cursor = None;
    if errors.is_empty() {
        let cursor = (!cursor.is_empty()).then_some(cursor);
        match state
            .policies
            .list(permit.organization_id(), filter, None, cursor, PAGE_SIZE)
            .await
        {
            Ok(page) => {
                rows = page
                    .items
                    .iter()
                    .map(|p| Row {
                        href: format!("/policies/{}", p.id),
                        title: p.title.clone(),
                        type_label: type_label(&templates, &p.policy_type),
                        status: status_label(p.status),
                        status_slug: p.status.as_str(),
                        version: p.version,
                        next_review: p
                            .next_review_at
                            .map(|t| day(t.date_naive()))
                            .unwrap_or_default(),
                        badge: drafted_badge(p),
                        pending: p.generation == Generation::Pending,
                        failed: p.generation == Generation::Failed,
                    })
                    .collect();
                next_cursor = page.next_cursor;
            }
            Err(PolicyError::Invalid {
                field: "cursor", ..
            }) => errors.push(FieldError::new(
                "status",
                "That page link is not one this server gave out; start again from the first page.",
            )),
            Err(e) => return failed(&viewer, e),
        }
    }
    let href = |cursor: Option<&str>| {
        let mut pairs = Vec::new();
        if !status.is_empty() {
            pairs.push(format!("status={}", urlencoding_encode(status)));
        }
        if let Some(c) = cursor {
            pairs.push(format!("cursor={}", urlencoding_encode(c)));
        }
        if pairs.is_empty() {
            "/policies".to_owned()
        } else {
            format!("/policies?{}", pairs.join("&"))
        }
    };
    let code = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = ListPage {
        chrome: viewer.chrome(),
        rows,
        errors,
        statuses: STATUSES
            .into_iter()
            .map(|s| StatusChoice {
                value: s.as_str(),
                label: status_label(s),
            })
            .collect(),
        status: status.to_owned(),
        can_write: viewer
            .account
            .as_ref()
            .is_some_and(|a| a.principal.can(Permission::ComplianceWrite)),
        next_href: next_cursor.as_deref().map(|c| href(Some(c))),
        first_href: (!cursor.is_empty()).then(|| href(None)),
    };
    viewer.page(code, &page)
}

// ---- Writing one ----

struct TemplateChoice {
    value: String,
    name: String,
    description: String,
    checked: bool,
}

struct FrameworkChoice {
    id: String,
    name: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "policies/new.html")]
struct NewPage {
    chrome: Chrome,
    errors: Vec<FieldError>,
    templates: Vec<TemplateChoice>,
    frameworks: Vec<FrameworkChoice>,
    instructions: String,
    max_instructions: usize,
}

impl NewPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::assessments::error_for(&self.errors, field)
    }
}

async fn new_form(
    state: &AppState,
    viewer: &Viewer,
    org: OrganizationId,
    sent: &[(String, String)],
    failure: Option<(StatusCode, FieldError)>,
) -> Response {
    let frameworks = match frameworks_repo::visible(&state.db, Some(org.as_uuid())).await {
        Ok(f) => f,
        Err(e) => return failed(viewer, e),
    };
    let chosen_type = field(sent, "policy_type");
    let chosen: Vec<&str> = sent
        .iter()
        .filter(|(k, _)| k == "framework_ids")
        .map(|(_, v)| v.as_str())
        .collect();
    let status = failure.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let page = NewPage {
        chrome: viewer.chrome(),
        errors: failure.into_iter().map(|(_, e)| e).collect(),
        templates: templates()
            .into_iter()
            .map(|t| TemplateChoice {
                checked: t.policy_type == chosen_type,
                value: t.policy_type,
                name: t.name,
                description: t.description,
            })
            .collect(),
        frameworks: frameworks
            .into_iter()
            .map(|f| {
                let id = f.id.to_string();
                FrameworkChoice {
                    checked: chosen.contains(&id.as_str()),
                    id,
                    name: f.name,
                }
            })
            .collect(),
        instructions: field(sent, "instructions").to_owned(),
        max_instructions: MAX_INSTRUCTIONS,
    };
    viewer.page(status, &page)
}

async fn new_page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let permit = match permit_for(&viewer, Permission::ComplianceWrite, "write policies") {
        Ok(p) => p,
        Err(r) => return *r,
    };
    new_form(&state, &viewer, permit.organization_id(), &[], None).await
}

async fn generate(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let permit = match permit_for(&viewer, Permission::ComplianceWrite, "write policies") {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let org = permit.organization_id();
    let refuse = |status: StatusCode, field: &str, message: &str| {
        new_form(
            &state,
            &viewer,
            org,
            &raw,
            Some((status, FieldError::new(field, message))),
        )
    };
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        return refuse(StatusCode::FORBIDDEN, "policy_type", EXPIRED_FORM).await;
    }
    let policy_type = field(&raw, "policy_type").trim().to_owned();
    if policy_type.is_empty() {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "policy_type",
            "Choose the type of policy to write.",
        )
        .await;
    }
    let instructions = field(&raw, "instructions").trim().to_owned();
    if instructions.chars().count() > MAX_INSTRUCTIONS {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "instructions",
            &format!("Instructions must be at most {MAX_INSTRUCTIONS} characters."),
        )
        .await;
    }
    let mut framework_ids = Vec::new();
    for (_, v) in raw.iter().filter(|(k, _)| k == "framework_ids") {
        match v.trim().parse::<Uuid>() {
            Ok(id) => framework_ids.push(id),
            Err(_) => {
                return refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "framework_ids",
                    "Frameworks must be chosen from the list.",
                )
                .await;
            }
        }
    }
    let request = GenerateRequest {
        policy_type,
        framework_ids: (!framework_ids.is_empty()).then_some(framework_ids),
        instructions: (!instructions.is_empty()).then_some(instructions),
    };
    match state.policies.generate(&permit, request, &client).await {
        Ok((id, _job)) => viewer.redirect(
            &format!("/policies/{id}"),
            Some("Your policy is being written; this page shows it when it is ready."),
            None,
        ),
        Err(PolicyError::NotFound(_)) => {
            refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "framework_ids",
                "Frameworks must be chosen from the list.",
            )
            .await
        }
        Err(e) => match explain(e) {
            Ok((status, message, f)) => {
                let f = if f.is_empty() { "policy_type" } else { f };
                refuse(status, f, &message).await
            }
            Err(m) => failed(&viewer, m),
        },
    }
}

// ---- One policy ----

struct ControlLink {
    href: String,
    reference: String,
    title: String,
}

struct ControlGroup {
    framework: String,
    controls: Vec<ControlLink>,
}

#[derive(Template)]
#[template(path = "policies/show.html")]
struct ShowPage {
    chrome: Chrome,
    error: Option<String>,
    id: Uuid,
    title: String,
    type_label: String,
    status: &'static str,
    status_slug: &'static str,
    version: i32,
    pending: bool,
    generation_error: Option<String>,
    /// Sanitised HTML of the text.
    html: String,
    groups: Vec<ControlGroup>,
    provenance: String,
    submitted: String,
    approved: String,
    next_review: String,
    can_write: bool,
    can_edit: bool,
    can_submit: bool,
    can_approve: bool,
    approve_note: String,
    can_withdraw: bool,
    can_archive: bool,
    can_restore: bool,
    ready: bool,
}

/// Members' names by id, for "approved by" and version authors.
async fn names(state: &AppState, org: OrganizationId) -> Result<HashMap<Uuid, String>, String> {
    identity::members(&state.db, org.as_uuid())
        .await
        .map(|m| {
            m.into_iter()
                .map(|(_, u)| (u.id, u.full_name))
                .collect::<HashMap<_, _>>()
        })
        .map_err(|e| e.to_string())
}

fn name_of(names: &HashMap<Uuid, String>, me: Uuid, who: Option<Uuid>) -> String {
    match who {
        None => "ruleIQ".to_owned(),
        Some(w) if w == me => "you".to_owned(),
        Some(w) => names
            .get(&w)
            .cloned()
            .unwrap_or_else(|| "someone who has left".to_owned()),
    }
}

/// The policy page, maybe with a refused action's message and status.
async fn policy_page(
    state: &AppState,
    viewer: &Viewer,
    id: Uuid,
    failure: Option<(StatusCode, String)>,
) -> Response {
    let permit = match reader(viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let org = permit.organization_id();
    let principal = permit.principal();
    let p = match state.policies.get(org, id).await {
        Ok(p) => p,
        Err(PolicyError::NotFound(_)) => return policy_missing(viewer),
        Err(e) => return failed(viewer, e),
    };
    let versions = match state.policies.versions(org, id).await {
        Ok(v) => v,
        Err(e) => return failed(viewer, e),
    };
    let frameworks = match frameworks_repo::visible(&state.db, Some(org.as_uuid())).await {
        Ok(f) => f,
        Err(e) => return failed(viewer, e),
    };
    let people = match names(state, org).await {
        Ok(n) => n,
        Err(e) => return failed(viewer, e),
    };
    let me = principal.user_id.as_uuid();
    let templates = templates();
    let mut groups: Vec<ControlGroup> = Vec::new();
    for c in &p.controls {
        let framework = frameworks
            .iter()
            .find(|f| f.slug == c.framework_slug)
            .map_or_else(|| c.framework_slug.clone(), |f| f.name.clone());
        let link = ControlLink {
            href: format!("/controls/{}", c.id),
            reference: c.reference.clone(),
            title: c.title.clone(),
        };
        match groups.iter_mut().find(|g| g.framework == framework) {
            Some(g) => g.controls.push(link),
            None => groups.push(ControlGroup {
                framework,
                controls: vec![link],
            }),
        }
    }
    groups.sort_by(|a, b| a.framework.cmp(&b.framework));
    let ready = p.generation == Generation::Ready;
    let can_write = principal.can(Permission::ComplianceWrite);
    let may_approve = principal.can(Permission::ComplianceApprove);
    let author = versions
        .iter()
        .find(|v| v.version == p.version)
        .and_then(|v| v.author_id)
        .or(p.created_by);
    let own_work = author == Some(me) || p.submitted_by == Some(me);
    let in_review = p.status == Status::InReview;
    let (can_approve, approve_note) = if !ready || !in_review {
        (false, String::new())
    } else if !may_approve {
        (
            false,
            "It awaits approval by a compliance manager, an admin or the owner.".to_owned(),
        )
    } else if own_work {
        (
            false,
            "You wrote or submitted this version, so another member must approve it.".to_owned(),
        )
    } else {
        (true, String::new())
    };
    let provenance = match (model_of(p.generated_by.as_ref()), &p.generated_by) {
        (Some(g), _) => format!(
            "First drafted by {} {} (prompt {}).",
            g.provider, g.model, g.prompt_version
        ),
        (None, Some(g)) => format!(
            "First drafted from ruleIQ's {} template by the offline engine ({}, prompt {}), without an AI model.",
            type_label(&templates, &p.policy_type).to_lowercase(),
            g.model,
            g.prompt_version
        ),
        (None, None) => format!(
            "First drafted from ruleIQ's {} template, without an AI model.",
            type_label(&templates, &p.policy_type).to_lowercase()
        ),
    };
    let status = failure.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let page = ShowPage {
        chrome: viewer.chrome(),
        error: failure.map(|(_, m)| m),
        id,
        title: p.title.clone(),
        type_label: type_label(&templates, &p.policy_type),
        status: status_label(p.status),
        status_slug: p.status.as_str(),
        version: p.version,
        pending: p.generation == Generation::Pending,
        generation_error: (p.generation == Generation::Failed).then(|| {
            p.generation_error.clone().map_or_else(
                || "Writing the policy failed.".to_owned(),
                |e| capitalise(&e),
            )
        }),
        html: markdown::to_html(&p.content_markdown),
        groups,
        provenance,
        submitted: p
            .submitted_at
            .map(|t| format!("{} by {}", when(t), name_of(&people, me, p.submitted_by)))
            .unwrap_or_default(),
        approved: p
            .approved_at
            .map(|t| format!("{} by {}", when(t), name_of(&people, me, p.approved_by)))
            .unwrap_or_default(),
        next_review: p
            .next_review_at
            .map(|t| day(t.date_naive()))
            .unwrap_or_default(),
        can_write,
        can_edit: can_write && ready && p.status != Status::Archived,
        can_submit: can_write && ready && p.status == Status::Draft,
        can_approve,
        approve_note,
        can_withdraw: can_write && ready && matches!(p.status, Status::InReview | Status::Approved),
        can_archive: can_write && ready && p.status != Status::Archived,
        can_restore: can_write && ready && p.status == Status::Archived,
        ready,
    };
    viewer.page(status, &page)
}

fn parse_id(id: &str) -> Option<Uuid> {
    id.parse().ok()
}

async fn show(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return policy_missing(&viewer);
    };
    policy_page(&state, &viewer, id, None).await
}

/// Submit, approve, withdraw (or restore) and archive.
async fn move_to(
    state: &AppState,
    viewer: &Viewer,
    client: &ClientInfo,
    id: &str,
    raw: &[(String, String)],
    to: Status,
) -> Response {
    let (permission, refusal) = if to == Status::Approved {
        (Permission::ComplianceApprove, "approve policies")
    } else {
        (Permission::ComplianceWrite, "change a policy's status")
    };
    let permit = match permit_for(viewer, permission, refusal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let Some(id) = parse_id(id) else {
        return policy_missing(viewer);
    };
    if !viewer.csrf_ok(field(raw, "csrf_token")) {
        let failure = (StatusCode::FORBIDDEN, EXPIRED_FORM.to_owned());
        return policy_page(state, viewer, id, Some(failure)).await;
    }
    match state.policies.transition(&permit, id, to, client).await {
        Ok(p) => {
            let flash = match to {
                Status::InReview => format!(
                    "Submitted “{}” for approval; another member will approve it.",
                    p.title
                ),
                Status::Approved => format!(
                    "Approved “{}”.{}",
                    p.title,
                    p.next_review_at
                        .map(|t| format!(" Review it again by {}.", day(t.date_naive())))
                        .unwrap_or_default()
                ),
                Status::Draft => format!("“{}” is a draft again.", p.title),
                Status::Archived => format!("Archived “{}”.", p.title),
            };
            viewer.redirect(&format!("/policies/{id}"), Some(&flash), None)
        }
        Err(PolicyError::NotFound(_)) => policy_missing(viewer),
        Err(e) => match explain(e) {
            Ok((status, message, _)) => {
                policy_page(state, viewer, id, Some((status, message))).await
            }
            Err(m) => failed(viewer, m),
        },
    }
}

async fn submit(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    move_to(&state, &viewer, &client, &id, &raw, Status::InReview).await
}

async fn approve(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    move_to(&state, &viewer, &client, &id, &raw, Status::Approved).await
}

async fn withdraw(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    move_to(&state, &viewer, &client, &id, &raw, Status::Draft).await
}

async fn archive(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    move_to(&state, &viewer, &client, &id, &raw, Status::Archived).await
}

// ---- Editing ----

#[derive(Template)]
#[template(path = "policies/edit.html")]
struct EditPage {
    chrome: Chrome,
    errors: Vec<FieldError>,
    id: Uuid,
    policy_title: String,
    title: String,
    content: String,
    base_version: i32,
    /// Sanitised HTML of the text as sent, when a preview was asked for.
    preview: Option<String>,
}

impl EditPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::assessments::error_for(&self.errors, field)
    }
}

async fn edit_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let permit = match permit_for(&viewer, Permission::ComplianceWrite, "edit policies") {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let Some(id) = parse_id(&id) else {
        return policy_missing(&viewer);
    };
    let p = match state.policies.get(permit.organization_id(), id).await {
        Ok(p) => p,
        Err(PolicyError::NotFound(_)) => return policy_missing(&viewer),
        Err(e) => return failed(&viewer, e),
    };
    if p.generation == Generation::Pending {
        return viewer.redirect(
            &format!("/policies/{id}"),
            Some("The policy is still being written; edit it once it is ready."),
            None,
        );
    }
    let page = EditPage {
        chrome: viewer.chrome(),
        errors: Vec::new(),
        id,
        policy_title: p.title.clone(),
        title: p.title,
        content: p.content_markdown,
        base_version: p.version,
        preview: None,
    };
    viewer.page(StatusCode::OK, &page)
}

async fn save(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let permit = match permit_for(&viewer, Permission::ComplianceWrite, "edit policies") {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let Some(id) = parse_id(&id) else {
        return policy_missing(&viewer);
    };
    let current = match state.policies.get(permit.organization_id(), id).await {
        Ok(p) => p,
        Err(PolicyError::NotFound(_)) => return policy_missing(&viewer),
        Err(e) => return failed(&viewer, e),
    };
    let title = field(&raw, "title").to_owned();
    let content = field(&raw, "content_markdown").replace("\r\n", "\n");
    let base_version = field(&raw, "base_version").trim().parse::<i32>().ok();
    let again = |status: StatusCode, errors: Vec<FieldError>, preview: Option<String>| {
        let page = EditPage {
            chrome: viewer.chrome(),
            errors,
            id,
            policy_title: current.title.clone(),
            title: title.clone(),
            content: content.clone(),
            base_version: base_version.unwrap_or(current.version),
            preview,
        };
        viewer.page(status, &page)
    };
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        return again(
            StatusCode::FORBIDDEN,
            vec![FieldError::new("content_markdown", EXPIRED_FORM)],
            None,
        );
    }
    if field(&raw, "action") == "preview" {
        return again(
            StatusCode::OK,
            Vec::new(),
            Some(markdown::to_html(&content)),
        );
    }
    if base_version.is_some_and(|v| v != current.version) {
        return again(
            StatusCode::CONFLICT,
            vec![FieldError::new(
                "content_markdown",
                format!(
                    "Someone saved version {} while you were editing. Copy your changes, reload the editor and apply them again.",
                    current.version
                ),
            )],
            None,
        );
    }
    match state
        .policies
        .update(&permit, id, content.clone(), Some(title.clone()), &client)
        .await
    {
        Ok(p) => viewer.redirect(
            &format!("/policies/{id}"),
            Some(&format!(
                "Saved version {} of “{}”. It is a draft again: submit it for approval.",
                p.version, p.title
            )),
            None,
        ),
        Err(PolicyError::NotFound(_)) => policy_missing(&viewer),
        Err(e) => match explain(e) {
            Ok((status, message, f)) => {
                let f = if f == "title" {
                    "title"
                } else {
                    "content_markdown"
                };
                again(status, vec![FieldError::new(f, message)], None)
            }
            Err(m) => failed(&viewer, m),
        },
    }
}

// ---- Deleting ----

#[derive(Template)]
#[template(path = "policies/delete.html")]
struct DeletePage {
    chrome: Chrome,
    id: Uuid,
    title: String,
    error: Option<String>,
}

async fn delete_page(
    state: &AppState,
    viewer: &Viewer,
    org: OrganizationId,
    id: Uuid,
    error: Option<(StatusCode, String)>,
) -> Response {
    let p = match state.policies.get(org, id).await {
        Ok(p) => p,
        Err(PolicyError::NotFound(_)) => return policy_missing(viewer),
        Err(e) => return failed(viewer, e),
    };
    let status = error.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let page = DeletePage {
        chrome: viewer.chrome(),
        id,
        title: p.title,
        error: error.map(|(_, m)| m),
    };
    viewer.page(status, &page)
}

async fn confirm_delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let permit = match permit_for(&viewer, Permission::ComplianceWrite, "delete policies") {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let Some(id) = parse_id(&id) else {
        return policy_missing(&viewer);
    };
    delete_page(&state, &viewer, permit.organization_id(), id, None).await
}

async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let permit = match permit_for(&viewer, Permission::ComplianceWrite, "delete policies") {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let org = permit.organization_id();
    let Some(id) = parse_id(&id) else {
        return policy_missing(&viewer);
    };
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        let error = Some((StatusCode::FORBIDDEN, EXPIRED_FORM.to_owned()));
        return delete_page(&state, &viewer, org, id, error).await;
    }
    let title = match state.policies.get(org, id).await {
        Ok(p) => p.title,
        Err(PolicyError::NotFound(_)) => return policy_missing(&viewer),
        Err(e) => return failed(&viewer, e),
    };
    match state.policies.delete(&permit, id, &client).await {
        Ok(()) => viewer.redirect(
            "/policies",
            Some(&format!(
                "Deleted “{title}”. Its record stays in the audit trail."
            )),
            None,
        ),
        Err(PolicyError::NotFound(_)) => policy_missing(&viewer),
        Err(e) => match explain(e) {
            Ok((status, message, _)) => {
                delete_page(&state, &viewer, org, id, Some((status, message))).await
            }
            Err(m) => failed(&viewer, m),
        },
    }
}

// ---- Exports ----

async fn export(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let permit = match reader(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let Some(id) = parse_id(&id) else {
        return policy_missing(&viewer);
    };
    let format = match field(&raw, "format") {
        "pdf" => ExportFormat::Pdf,
        "docx" => ExportFormat::Docx,
        "md" => ExportFormat::Md,
        _ => {
            return not_found(
                &viewer,
                "Policies export as PDF, Word (docx) or Markdown (md) only.",
                &format!("/policies/{id}"),
                "the policy",
            );
        }
    };
    match state
        .policies
        .export(permit.organization_id(), id, format)
        .await
    {
        Ok(file) => {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            );
            headers.insert(header::CONTENT_DISPOSITION, disposition(&file.file_name));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            (headers, file.bytes).into_response()
        }
        Err(PolicyError::NotFound(_)) => policy_missing(&viewer),
        Err(e) => match explain(e) {
            Ok((status, message, _)) => {
                policy_page(&state, &viewer, id, Some((status, message))).await
            }
            Err(m) => failed(&viewer, m),
        },
    }
}

// ---- Versions and comparisons ----

struct VersionRow {
    number: i32,
    title: String,
    by: String,
    at: String,
    current: bool,
    compare_href: Option<String>,
}

#[derive(Template)]
#[template(path = "policies/versions.html")]
struct VersionsPage {
    chrome: Chrome,
    id: Uuid,
    title: String,
    rows: Vec<VersionRow>,
    numbers: Vec<i32>,
    latest: i32,
    previous: i32,
}

async fn versions(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let permit = match reader(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let org = permit.organization_id();
    let Some(id) = parse_id(&id) else {
        return policy_missing(&viewer);
    };
    let p = match state.policies.get(org, id).await {
        Ok(p) => p,
        Err(PolicyError::NotFound(_)) => return policy_missing(&viewer),
        Err(e) => return failed(&viewer, e),
    };
    let list = match state.policies.versions(org, id).await {
        Ok(v) => v,
        Err(e) => return failed(&viewer, e),
    };
    let people = match names(&state, org).await {
        Ok(n) => n,
        Err(e) => return failed(&viewer, e),
    };
    let me = permit.principal().user_id.as_uuid();
    let numbers: Vec<i32> = list.iter().map(|v| v.version).collect();
    let rows = list
        .into_iter()
        .map(|v| {
            let by = match (model_of(v.generated_by.as_ref()), v.author_id) {
                (Some(g), _) => format!("{} {} (prompt {})", g.provider, g.model, g.prompt_version),
                (None, Some(a)) => name_of(&people, me, Some(a)),
                (None, None) => "ruleIQ's template".to_owned(),
            };
            let earlier = numbers.iter().copied().filter(|n| *n < v.version).max();
            VersionRow {
                compare_href: earlier
                    .map(|e| format!("/policies/{id}/diff?from={e}&to={}", v.version)),
                current: v.version == p.version,
                number: v.version,
                title: v.title,
                by,
                at: when(v.created_at),
            }
        })
        .collect();
    let latest = numbers.iter().copied().max().unwrap_or(0);
    let previous = numbers
        .iter()
        .copied()
        .filter(|n| *n < latest)
        .max()
        .unwrap_or(latest);
    let page = VersionsPage {
        chrome: viewer.chrome(),
        id,
        title: p.title,
        rows,
        numbers,
        latest,
        previous,
    };
    viewer.page(StatusCode::OK, &page)
}

/// One line of a comparison as shown: `insert`, `delete`, `equal`, or `skip` for a
/// run of unchanged lines left out.
struct DiffRow {
    kind: &'static str,
    text: String,
}

#[derive(Template)]
#[template(path = "policies/diff.html")]
struct DiffPage {
    chrome: Chrome,
    id: Uuid,
    title: String,
    from: i32,
    to: i32,
    insertions: usize,
    deletions: usize,
    rows: Vec<DiffRow>,
    numbers: Vec<i32>,
}

/// The lines of a comparison with long unchanged runs folded to `CONTEXT` lines
/// either side of a change.
fn fold(lines: &[ruleiq_services::policies::DiffLine]) -> Vec<DiffRow> {
    let changed: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.tag != "equal")
        .map(|(i, _)| i)
        .collect();
    let near = |i: usize| changed.iter().any(|c| c.abs_diff(i) <= CONTEXT);
    let mut rows = Vec::new();
    let mut skipped = 0usize;
    for (i, l) in lines.iter().enumerate() {
        if l.tag == "equal" && !near(i) {
            skipped += 1;
            continue;
        }
        if skipped > 0 {
            rows.push(DiffRow {
                kind: "skip",
                text: unchanged(skipped),
            });
            skipped = 0;
        }
        rows.push(DiffRow {
            kind: match l.tag {
                "insert" => "insert",
                "delete" => "delete",
                _ => "equal",
            },
            text: l.text.clone(),
        });
    }
    if skipped > 0 {
        rows.push(DiffRow {
            kind: "skip",
            text: unchanged(skipped),
        });
    }
    rows
}

fn unchanged(n: usize) -> String {
    if n == 1 {
        "1 unchanged line".to_owned()
    } else {
        format!("{n} unchanged lines")
    }
}

async fn diff(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let permit = match reader(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let org = permit.organization_id();
    let Some(id) = parse_id(&id) else {
        return policy_missing(&viewer);
    };
    let p = match state.policies.get(org, id).await {
        Ok(p) => p,
        Err(PolicyError::NotFound(_)) => return policy_missing(&viewer),
        Err(e) => return failed(&viewer, e),
    };
    let numbers: Vec<i32> = match state.policies.versions(org, id).await {
        Ok(v) => v.into_iter().map(|v| v.version).collect(),
        Err(e) => return failed(&viewer, e),
    };
    let number = |name: &str, default: i32| match field(&raw, name).trim() {
        "" => Some(default),
        v => v.parse::<i32>().ok(),
    };
    let (Some(to), Some(from)) = (
        number("to", p.version),
        number("from", (p.version - 1).max(1)),
    ) else {
        return not_found(
            &viewer,
            "There is no such version of this policy.",
            &format!("/policies/{id}/versions"),
            "its versions",
        );
    };
    let d = match state.policies.diff(org, id, from, to).await {
        Ok(d) => d,
        Err(PolicyError::NotFound(_)) => {
            return not_found(
                &viewer,
                "There is no such version of this policy.",
                &format!("/policies/{id}/versions"),
                "its versions",
            );
        }
        Err(e) => return failed(&viewer, e),
    };
    let page = DiffPage {
        chrome: viewer.chrome(),
        id,
        title: p.title,
        from: d.from,
        to: d.to,
        insertions: d.insertions,
        deletions: d.deletions,
        rows: fold(&d.lines),
        numbers,
    };
    viewer.page(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleiq_services::policies::DiffLine;

    #[test]
    fn long_unchanged_runs_fold_around_changes() {
        let mut lines: Vec<DiffLine> = (0..20)
            .map(|i| DiffLine {
                tag: "equal",
                text: format!("line {i}"),
            })
            .collect();
        lines.insert(
            10,
            DiffLine {
                tag: "insert",
                text: "new".into(),
            },
        );
        let rows = fold(&lines);
        assert_eq!(rows.first().map(|r| r.kind), Some("skip"));
        assert_eq!(
            rows.first().map(|r| r.text.as_str()),
            Some("7 unchanged lines")
        );
        assert!(rows.iter().any(|r| r.kind == "insert" && r.text == "new"));
        assert_eq!(
            rows.last().map(|r| r.text.as_str()),
            Some("7 unchanged lines")
        );
        assert_eq!(rows.len(), 1 + 3 + 1 + 3 + 1);
    }

    #[test]
    fn statuses_read_well() {
        assert_eq!(status_label(Status::InReview), "In review");
        assert_eq!(parse_status("in_review"), Some(Status::InReview));
        assert_eq!(parse_status("submitted"), None);
    }
}
