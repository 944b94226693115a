//! Evidence for people: the library with its filters and its two views (expiring
//! soon, awaiting my approval), adding a file or a link, and one item's page with its
//! file, versions, controls, history and the workflow buttons its status and the
//! reader's role allow.
//!
//! Every form works without JavaScript (post, redirect, get with a flash message; a
//! rejected form is shown again with its status and the values sent, except a file).
//! The upload forms carry the CSRF token before the file, and the check runs when the
//! file part begins, so a forged upload is refused before any of its bytes is stored.
//!
//! `static/evidence.js` adds a drop zone and a progress bar. It posts the same form
//! with `X-Requested-With: XMLHttpRequest` and is answered `201 Created` with
//! `Location` instead of `303`: an XHR follows a 303 by itself, and the page it
//! fetched would use up the flash message before the browser got there.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::NaiveDate;
use ruleiq_core::{OrganizationId, Permission};
use ruleiq_db::{
    DbErr,
    entities::{control, framework},
    repositories::{evidence as evidence_repo, frameworks as frameworks_repo, identity},
};
use ruleiq_services::evidence::{
    EvidenceError, EvidenceView, ListQuery, MAX_CONTROLS, TYPES,
    workflow::{Action, Status},
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

use super::{
    Chrome, EXPIRED_FORM, Viewer,
    assessments::{FieldError, capitalise, day, failed, not_found, sentence, sign_in_first},
    urlencoding_encode,
};
use crate::{
    api::evidence::{new_from_form, send_file},
    extract::Client,
    problem::ApiError,
    state::AppState,
    upload::{self, Upload},
};

const EVIDENCE_JS: &str = include_str!("../../static/evidence.js");

/// Items per page of the library.
const PAGE_SIZE: u64 = 25;
/// What "expiring soon" means, in days.
const SOON_DAYS: u32 = 30;
/// Linked controls named in a row of the library before "and N more".
const REFS_IN_ROW: usize = 3;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/evidence", get(list))
        .route("/evidence/new", get(new_page).post(create))
        .route("/evidence/new-link", post(create_link))
        .route("/evidence/{id}", get(show))
        .route("/evidence/{id}/download", get(download))
        .route("/evidence/{id}/versions", post(add_version))
        .route("/evidence/{id}/controls", post(set_controls))
        .route("/evidence/{id}/submit", post(submit))
        .route("/evidence/{id}/approve", post(approve))
        .route("/evidence/{id}/reject", post(reject))
        .route("/evidence/{id}/delete", get(confirm_delete).post(delete))
        .route("/static/evidence.js", get(script))
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        EVIDENCE_JS,
    )
        .into_response()
}

// ---- Words ----

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Draft => "Draft",
        Status::Submitted => "Submitted",
        Status::Approved => "Approved",
        Status::Rejected => "Rejected",
        Status::Expired => "Expired",
    }
}

/// `training_record` as people read it: "Training record".
fn type_label(t: &str) -> String {
    capitalise(&t.replace('_', " "))
        .trim_end_matches('.')
        .to_owned()
}

/// What a history entry's action says.
fn action_label(action: &str) -> String {
    match action {
        "created" => "Added".to_owned(),
        "submitted" => "Submitted for approval".to_owned(),
        "approved" => "Approved".to_owned(),
        "rejected" => "Rejected".to_owned(),
        "expired" => "Expired".to_owned(),
        "revised" => "Sent back to draft".to_owned(),
        "new_version" => "New version uploaded".to_owned(),
        "edited" => "Details changed".to_owned(),
        other => type_label(other),
    }
}

pub(super) use ruleiq_core::human_size;

fn label_of(field: &str) -> &'static str {
    match field {
        "title" => "Title",
        "description" => "Description",
        "evidence_type" => "Type",
        "control_ids" => "Controls",
        "control_refs" => "Control references",
        "effective_date" => "Effective date",
        "expires_at" => "Expiry date",
        "url" => "Address",
        "comment" => "Comment",
        "q" => "Search",
        "cursor" => "Page",
        _ => "File",
    }
}

/// The sentence for a service's `field: message`.
fn field_sentence(field: &str, message: &str) -> String {
    if field == "file" {
        capitalise(message)
    } else if message.starts_with("must") || message.starts_with("is ") {
        sentence(label_of(field), message)
    } else {
        format!("{}: {}", label_of(field), capitalise(message))
    }
}

// ---- Form values ----

/// A form's fields, in the order sent; a field may repeat.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn from_map(map: &HashMap<String, Vec<String>>) -> Self {
        Self(
            map.iter()
                .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
                .collect(),
        )
    }

    /// The first value of `name`, or "".
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn as_upload(&self) -> Upload {
        let mut upload = Upload::default();
        for (k, v) in &self.0 {
            upload.fields.entry(k.clone()).or_default().push(v.clone());
        }
        upload
    }
}

/// What the add forms show: empty, or what was sent.
#[derive(Debug, Default, Clone)]
struct Values {
    title: String,
    description: String,
    evidence_type: String,
    control_ids: Vec<String>,
    control_refs: String,
    effective_date: String,
    expires_at: String,
    url: String,
}

impl Values {
    fn from_fields(f: &Fields) -> Self {
        Self {
            title: f.get("title").to_owned(),
            description: f.get("description").to_owned(),
            evidence_type: f.get("evidence_type").to_owned(),
            control_ids: f
                .all("control_ids")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            control_refs: f.get("control_refs").to_owned(),
            effective_date: f.get("effective_date").to_owned(),
            expires_at: f.get("expires_at").to_owned(),
            url: f.get("url").to_owned(),
        }
    }
}

/// Why a form was refused: the status to answer with and the message, next to the
/// input it concerns.
struct Failure {
    status: StatusCode,
    error: FieldError,
}

impl Failure {
    fn new(status: StatusCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            error: FieldError::new(field, message),
        }
    }
}

/// A refusal as a page shows it; `Err` for a failure on our side. A field of the
/// form is named `prefix` + its name; anything else is put on `general`.
fn explain(e: ApiError, prefix: &str, general: &str, max_bytes: u64) -> Result<Failure, String> {
    let known = |f: &str| {
        matches!(
            f,
            "title"
                | "description"
                | "evidence_type"
                | "control_ids"
                | "control_refs"
                | "effective_date"
                | "expires_at"
                | "url"
                | "file"
                | "comment"
        )
    };
    let on = |f: &str| {
        if known(f) {
            format!("{prefix}{f}")
        } else {
            general.to_owned()
        }
    };
    Ok(match e {
        ApiError::Validation { errors, detail } => match errors.into_iter().next() {
            Some(fe) => Failure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                on(&fe.field),
                field_sentence(&fe.field, &fe.message),
            ),
            None => Failure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                general,
                capitalise(&detail),
            ),
        },
        ApiError::PayloadTooLarge(_) => Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            on("file"),
            format!(
                "The file is larger than the limit of {}; choose a smaller file.",
                human_size(max_bytes)
            ),
        ),
        ApiError::UnsupportedMediaType(m) => Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            on("file"),
            capitalise(&m),
        ),
        ApiError::BadRequest(m) => {
            Failure::new(StatusCode::BAD_REQUEST, on("file"), capitalise(&m))
        }
        ApiError::Forbidden(m) => Failure::new(StatusCode::FORBIDDEN, general, capitalise(&m)),
        ApiError::Conflict(m) => Failure::new(StatusCode::CONFLICT, general, capitalise(&m)),
        ApiError::NotFound(m) => Failure::new(StatusCode::NOT_FOUND, general, capitalise(&m)),
        ApiError::Unauthorized(m) => {
            Failure::new(StatusCode::UNAUTHORIZED, general, capitalise(&m))
        }
        ApiError::Locked(m) => Failure::new(StatusCode::LOCKED, general, capitalise(&m)),
        ApiError::Gone(m) => Failure::new(StatusCode::GONE, general, capitalise(&m)),
        ApiError::Unavailable(m) => {
            Failure::new(StatusCode::SERVICE_UNAVAILABLE, general, capitalise(&m))
        }
        ApiError::Internal(m) => return Err(m),
    })
}

/// The CSRF check of a form, as an upload error so that it can refuse the file.
fn check_csrf(viewer: &Viewer, token: &str) -> Result<(), ApiError> {
    if viewer.csrf_ok(token) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(EXPIRED_FORM.to_owned()))
    }
}

/// Whether the form was posted by `evidence.js`.
fn is_script(headers: &HeaderMap) -> bool {
    headers
        .get("x-requested-with")
        .is_some_and(|v| v.as_bytes() == b"XMLHttpRequest")
}

/// Success: a 303 to `to` with a flash message, or for the script a 201 with the
/// same `Location` and cookie (see the module's header).
fn done(viewer: &Viewer, script: bool, to: &str, flash: &str) -> Response {
    let mut response = viewer.redirect(to, Some(flash), None);
    if script {
        *response.status_mut() = StatusCode::CREATED;
    }
    response
}

fn evidence_missing(viewer: &Viewer) -> Response {
    not_found(
        viewer,
        "There is no such evidence in your organisation.",
        "/evidence",
        "the evidence library",
    )
}

#[derive(Template)]
#[template(path = "evidence/forbidden.html")]
struct ForbiddenPage {
    chrome: Chrome,
    message: String,
}

/// A 403 page: the reader's role does not allow what they tried.
fn forbidden(viewer: &Viewer, message: &str) -> Response {
    viewer.page(
        StatusCode::FORBIDDEN,
        &ForbiddenPage {
            chrome: viewer.chrome(),
            message: message.to_owned(),
        },
    )
}

fn role_name(viewer: &Viewer) -> String {
    viewer
        .account
        .as_ref()
        .map(|a| a.principal.role.as_str().replace('_', " "))
        .unwrap_or_default()
}

// ---- Controls to choose from ----

/// The frameworks a reader can see, and the controls offered in pickers: those of
/// the frameworks the organisation has assessed or already links evidence to (which
/// are also preferred when a reference is in several frameworks).
struct Catalogue {
    frameworks: Vec<framework::Model>,
    groups: Vec<(framework::Model, Vec<control::Model>)>,
}

/// The catalogue; the picker's controls only `with_controls`.
async fn catalogue(state: &AppState, org: Uuid, with_controls: bool) -> Result<Catalogue, DbErr> {
    let frameworks = frameworks_repo::visible(&state.db, Some(org)).await?;
    let mut ids = evidence_repo::assessed_frameworks(&state.db, org).await?;
    ids.extend(evidence_repo::linked_frameworks(&state.db, org).await?);
    ids.retain(|id| frameworks.iter().any(|f| f.id == *id));
    ids.sort_unstable();
    ids.dedup();
    let controls = if ids.is_empty() || !with_controls {
        Vec::new()
    } else {
        frameworks_repo::all_controls(&state.db, &ids).await?
    };
    let mut groups: Vec<(framework::Model, Vec<control::Model>)> = frameworks
        .iter()
        .filter(|f| ids.contains(&f.id))
        .map(|f| (f.clone(), Vec::new()))
        .collect();
    for c in controls {
        if let Some((_, list)) = groups.iter_mut().find(|(f, _)| f.id == c.framework_id) {
            list.push(c);
        }
    }
    groups.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(Catalogue { frameworks, groups })
}

struct ControlOption {
    id: String,
    label: String,
    selected: bool,
}

struct ControlGroup {
    framework: String,
    controls: Vec<ControlOption>,
}

impl Catalogue {
    /// The picker's groups, with `selected` chosen.
    fn options(&self, selected: &HashSet<String>) -> Vec<ControlGroup> {
        self.groups
            .iter()
            .map(|(f, controls)| ControlGroup {
                framework: f.name.clone(),
                controls: controls
                    .iter()
                    .map(|c| {
                        let id = c.id.to_string();
                        let mut title: String = c.title.chars().take(90).collect();
                        if title.len() < c.title.len() {
                            title.push('…');
                        }
                        ControlOption {
                            selected: selected.contains(&id),
                            label: format!("{} {title}", c.reference),
                            id,
                        }
                    })
                    .collect(),
            })
            .collect()
    }
}

/// Controls named by reference (`A.5.1`, or `iso27001-2022:A.5.1` where a reference
/// is shared by several frameworks) or by id, separated by commas, semicolons or
/// lines. `Ok(Err(message))` names the first that matches no control, or several.
async fn resolve_refs(
    state: &AppState,
    cat: &Catalogue,
    text: &str,
) -> Result<Result<Vec<Uuid>, String>, DbErr> {
    let tokens: Vec<&str> = text
        .split([',', ';', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    if tokens.len() > MAX_CONTROLS {
        return Ok(Err(format!(
            "Name at most {MAX_CONTROLS} controls for one item."
        )));
    }
    let ids: Vec<Uuid> = cat.frameworks.iter().map(|f| f.id).collect();
    let controls = frameworks_repo::all_controls(&state.db, &ids).await?;
    let preferred: HashSet<Uuid> = cat.groups.iter().map(|(f, _)| f.id).collect();
    let slug_of = |id: Uuid| {
        cat.frameworks
            .iter()
            .find(|f| f.id == id)
            .map_or("", |f| f.slug.as_str())
    };
    let mut out = Vec::new();
    for token in tokens {
        if let Ok(id) = token.parse::<Uuid>() {
            out.push(id);
            continue;
        }
        let qualified = token.split_once(':').and_then(|(slug, reference)| {
            cat.frameworks
                .iter()
                .find(|f| f.slug.eq_ignore_ascii_case(slug.trim()))
                .map(|f| (f.id, reference.trim()))
        });
        let mut found: Vec<&control::Model> = match qualified {
            Some((framework, reference)) => controls
                .iter()
                .filter(|c| {
                    c.framework_id == framework && c.reference.eq_ignore_ascii_case(reference)
                })
                .collect(),
            None => controls
                .iter()
                .filter(|c| c.reference.eq_ignore_ascii_case(token))
                .collect(),
        };
        if found.len() > 1 && found.iter().any(|c| preferred.contains(&c.framework_id)) {
            found.retain(|c| preferred.contains(&c.framework_id));
        }
        match found.as_slice() {
            [one] => out.push(one.id),
            [] => {
                return Ok(Err(format!(
                    "No control “{token}” in the frameworks you can see. Write a reference such as A.5.1, or framework:reference such as cyber-essentials:SCOPE.1."
                )));
            }
            several => {
                let slugs: Vec<&str> = several.iter().map(|c| slug_of(c.framework_id)).collect();
                return Ok(Err(format!(
                    "“{token}” is a control of several frameworks ({}); write it as framework:reference, such as {}:{token}.",
                    slugs.join(", "),
                    slugs.first().copied().unwrap_or_default()
                )));
            }
        }
    }
    Ok(Ok(out))
}

/// The type choices of a select.
struct TypeChoice {
    value: &'static str,
    label: String,
}

fn type_choices() -> Vec<TypeChoice> {
    TYPES
        .iter()
        .map(|t| TypeChoice {
            value: t,
            label: type_label(t),
        })
        .collect()
}

/// What the upload forms say about the files they take.
struct FileRules {
    /// For the file input's `accept`: `.pdf,.docx`.
    accept: String,
    /// For people: `pdf, docx`.
    extensions: String,
    max_size: String,
    max_bytes: u64,
}

fn file_rules(state: &AppState) -> FileRules {
    let exts = &state.settings.uploads.allowed_extensions;
    let max_bytes = state.evidence.max_upload_size();
    FileRules {
        accept: exts
            .iter()
            .map(|e| format!(".{e}"))
            .collect::<Vec<_>>()
            .join(","),
        extensions: exts.join(", "),
        max_size: human_size(max_bytes),
        max_bytes,
    }
}

// ---- The library ----

struct Row {
    href: String,
    title: String,
    type_label: String,
    is_link: bool,
    status: &'static str,
    status_slug: &'static str,
    version: i32,
    controls_count: usize,
    control_refs: String,
    expires: String,
    expires_soon: bool,
    updated: String,
}

struct FrameworkChoice {
    value: String,
    label: String,
}

struct StatusChoice {
    value: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "evidence/list.html")]
struct ListPage {
    chrome: Chrome,
    /// `all`, `expiring` or `awaiting`.
    view: &'static str,
    rows: Vec<Row>,
    errors: Vec<FieldError>,
    filtered: bool,
    can_write: bool,
    can_approve: bool,
    statuses: Vec<StatusChoice>,
    types: Vec<TypeChoice>,
    frameworks: Vec<FrameworkChoice>,
    status: String,
    evidence_type: String,
    framework: String,
    control: String,
    expiring_within_days: String,
    q: String,
    awaiting: bool,
    next_href: Option<String>,
    first_href: Option<String>,
    soon_days: u32,
}

impl ListPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::assessments::error_for(&self.errors, field)
    }
}

fn row(item: EvidenceView, today: NaiveDate) -> Row {
    let refs: Vec<&str> = item
        .controls
        .iter()
        .take(REFS_IN_ROW)
        .map(|c| c.reference.as_str())
        .collect();
    let mut control_refs = refs.join(", ");
    if item.controls.len() > REFS_IN_ROW {
        control_refs.push_str(&format!(" and {} more", item.controls.len() - REFS_IN_ROW));
    }
    let expires = item.expires_at.map(|e| e.date_naive());
    Row {
        href: format!("/evidence/{}", item.id),
        type_label: type_label(&item.evidence_type),
        is_link: item.kind == "link",
        status: status_label(item.status),
        status_slug: item.status.as_str(),
        version: item.version,
        controls_count: item.controls.len(),
        control_refs,
        expires: expires.map(day).unwrap_or_default(),
        expires_soon: item.status != Status::Expired
            && expires.is_some_and(|e| e <= today + chrono::Days::new(u64::from(SOON_DAYS))),
        updated: day(item.updated_at.date_naive()),
        title: item.title,
    }
}

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let Ok(permit) = account.principal.require(Permission::ComplianceRead) else {
        return viewer.redirect("/dashboard", Some("Your role cannot see evidence."), None);
    };
    let org = permit.organization_id();
    let p = Fields(raw);
    let cat = match catalogue(&state, org.as_uuid(), false).await {
        Ok(c) => c,
        Err(e) => return failed(&viewer, e),
    };
    let mut errors = Vec::new();
    let mut query = ListQuery {
        limit: PAGE_SIZE,
        ..ListQuery::default()
    };
    let status = p.get("status").trim();
    if !status.is_empty() {
        match Status::parse(status) {
            Some(s) => query.status = Some(s),
            None => errors.push(FieldError::new(
                "status",
                "Status must be one from the list.",
            )),
        }
    }
    let evidence_type = p.get("evidence_type").trim();
    if !evidence_type.is_empty() {
        if TYPES.contains(&evidence_type) {
            query.evidence_type = Some(evidence_type.to_owned());
        } else {
            errors.push(FieldError::new(
                "evidence_type",
                "Type must be one from the list.",
            ));
        }
    }
    let framework = p.get("framework").trim();
    if !framework.is_empty() {
        match cat
            .frameworks
            .iter()
            .find(|f| f.id.to_string() == framework || f.slug == framework)
        {
            Some(f) => query.framework_id = Some(f.id),
            None => errors.push(FieldError::new(
                "framework",
                "Framework must be one from the list.",
            )),
        }
    }
    let control = p.get("control").trim();
    if !control.is_empty() {
        match resolve_refs(&state, &cat, control).await {
            Ok(Ok(ids)) if ids.len() == 1 => query.control_id = ids.first().copied(),
            Ok(Ok(_)) => errors.push(FieldError::new("control", "Name one control.")),
            Ok(Err(m)) => errors.push(FieldError::new("control", m)),
            Err(e) => return failed(&viewer, e),
        }
    }
    let expiring = p.get("expiring_within_days").trim();
    if !expiring.is_empty() {
        match expiring.parse::<u32>() {
            Ok(n) if (1..=3650).contains(&n) => query.expiring_within_days = Some(n),
            _ => errors.push(FieldError::new(
                "expiring_within_days",
                "Expiring within must be a number of days from 1 to 3650.",
            )),
        }
    }
    let q = p.get("q").trim();
    if !q.is_empty() {
        query.q = Some(q.to_owned());
    }
    let awaiting = p.get("awaiting") == "me";
    let can_approve = account.principal.can(Permission::ComplianceApprove);
    if awaiting {
        query.awaiting_approval_by = Some(account.principal.user_id.as_uuid());
        query.status = Some(Status::Submitted);
    }
    let cursor = p.get("cursor").trim();
    if !cursor.is_empty() {
        query.cursor = Some(cursor.to_owned());
    }
    let mut rows = Vec::new();
    let mut next_cursor = None;
    if errors.is_empty() && (can_approve || !awaiting) {
        match state.evidence.list(org, query).await {
            Ok(page) => {
                let today = state.plans.today();
                rows = page.items.into_iter().map(|i| row(i, today)).collect();
                next_cursor = page.next_cursor;
            }
            Err(EvidenceError::Invalid {
                field: "cursor", ..
            }) => {
                errors.push(FieldError::new(
                    "q",
                    "That page link is not one this server gave out; start again from the first page.",
                ));
            }
            Err(EvidenceError::Invalid { field, message }) => {
                errors.push(FieldError::new(field, field_sentence(field, &message)));
            }
            Err(e) => return failed(&viewer, e),
        }
    }
    // The filters as a query string, for the page links.
    let kept: Vec<(&str, &str)> = [
        ("status", status),
        ("evidence_type", evidence_type),
        ("framework", framework),
        ("control", control),
        ("expiring_within_days", expiring),
        ("q", q),
        ("awaiting", if awaiting { "me" } else { "" }),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let href = |extra: Option<(&str, &str)>| {
        let pairs: Vec<String> = kept
            .iter()
            .copied()
            .chain(extra)
            .map(|(k, v)| format!("{k}={}", urlencoding_encode(v)))
            .collect();
        if pairs.is_empty() {
            "/evidence".to_owned()
        } else {
            format!("/evidence?{}", pairs.join("&"))
        }
    };
    let view = if awaiting {
        "awaiting"
    } else if expiring == SOON_DAYS.to_string() && kept.len() == 1 {
        "expiring"
    } else if kept.is_empty() {
        "all"
    } else {
        ""
    };
    let page = ListPage {
        chrome: viewer.chrome(),
        view,
        filtered: !kept.is_empty(),
        can_write: account.principal.can(Permission::ComplianceWrite),
        can_approve,
        statuses: Status::ALL
            .into_iter()
            .map(|s| StatusChoice {
                value: s.as_str(),
                label: status_label(s),
            })
            .collect(),
        types: type_choices(),
        frameworks: cat
            .frameworks
            .iter()
            .map(|f| FrameworkChoice {
                value: f.id.to_string(),
                label: f.name.clone(),
            })
            .collect(),
        status: status.to_owned(),
        evidence_type: evidence_type.to_owned(),
        framework: cat
            .frameworks
            .iter()
            .find(|f| f.id.to_string() == framework || f.slug == framework)
            .map_or_else(|| framework.to_owned(), |f| f.id.to_string()),
        control: control.to_owned(),
        expiring_within_days: expiring.to_owned(),
        q: q.to_owned(),
        awaiting,
        next_href: next_cursor.map(|c| href(Some(("cursor", &c)))),
        first_href: (!cursor.is_empty()).then(|| href(None)),
        soon_days: SOON_DAYS,
        rows,
        errors,
    };
    let status = if page.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    viewer.page(status, &page)
}

// ---- Adding evidence ----

#[derive(Template)]
#[template(path = "evidence/new.html")]
struct NewPage {
    chrome: Chrome,
    errors: Vec<FieldError>,
    form: Values,
    link: Values,
    types: Vec<TypeChoice>,
    groups: Vec<ControlGroup>,
    rules: FileRules,
}

impl NewPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::assessments::error_for(&self.errors, field)
    }
}

/// Which of the two add forms a failure belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Upload,
    Link,
}

/// The add page, empty or with a refused form's values and error.
async fn new_form(
    state: &AppState,
    viewer: &Viewer,
    org: OrganizationId,
    which: Which,
    values: Values,
    failure: Option<Failure>,
) -> Response {
    let cat = match catalogue(state, org.as_uuid(), true).await {
        Ok(c) => c,
        Err(e) => return failed(viewer, e),
    };
    let (form, link) = match which {
        Which::Upload => (values, Values::default()),
        Which::Link => (Values::default(), values),
    };
    let selected: HashSet<String> = form.control_ids.iter().cloned().collect();
    let status = failure.as_ref().map_or(StatusCode::OK, |f| f.status);
    let page = NewPage {
        chrome: viewer.chrome(),
        errors: failure.into_iter().map(|f| f.error).collect(),
        form,
        link,
        types: type_choices(),
        groups: cat.options(&selected),
        rules: file_rules(state),
    };
    viewer.page(status, &page)
}

async fn new_page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let Ok(permit) = account.principal.require(Permission::ComplianceWrite) else {
        return forbidden(
            &viewer,
            &format!("Your role ({}) cannot add evidence.", role_name(&viewer)),
        );
    };
    let org = permit.organization_id();
    new_form(&state, &viewer, org, Which::Upload, Values::default(), None).await
}

/// The checks an upload's text fields can have before its file is stored: a missing
/// title or a malformed date refuses the form without storing a byte.
fn precheck(fields: &HashMap<String, Vec<String>>) -> Result<(), ApiError> {
    let probe = Upload {
        fields: fields.clone(),
        file: None,
    };
    let new = new_from_form(&probe)?;
    if new.title.trim().is_empty() {
        return Err(crate::api::frameworks::invalid(
            "title",
            "must not be empty",
        ));
    }
    if !TYPES.contains(&new.evidence_type.as_str()) {
        return Err(crate::api::frameworks::invalid(
            "evidence_type",
            "must be one from the list",
        ));
    }
    Ok(())
}

/// Reads a page's multipart upload: the CSRF token (and, when `check_fields`, the
/// text fields) are checked as the file part begins. On failure, the fields seen
/// are returned with the error so the form can be shown again.
async fn read_upload(
    state: &AppState,
    viewer: &Viewer,
    request: Request,
    check_fields: bool,
) -> Result<(Fields, Upload), (Fields, ApiError)> {
    let Some(boundary) = upload::boundary(request.headers()) else {
        return Err((
            Fields(Vec::new()),
            ApiError::UnsupportedMediaType("send the form as multipart/form-data".into()),
        ));
    };
    let seen = std::sync::Mutex::new(HashMap::new());
    let result = upload::read(&state.evidence, boundary, request.into_body(), |fields| {
        if let Ok(mut s) = seen.lock() {
            s.clone_from(fields);
        }
        let token = fields
            .get("csrf_token")
            .and_then(|v| v.first())
            .map_or("", String::as_str);
        check_csrf(viewer, token)?;
        if check_fields {
            precheck(fields)?;
        }
        Ok(())
    })
    .await;
    match result {
        Ok(form) => {
            let fields = Fields::from_map(&form.fields);
            // A form without a file never reached the check above.
            if let Err(e) = check_csrf(viewer, fields.get("csrf_token")) {
                return Err((fields, e));
            }
            Ok((fields, form))
        }
        Err(e) => {
            let seen = seen
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Err((Fields::from_map(&seen), e))
        }
    }
}

async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    request: Request,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let Ok(permit) = account.principal.require(Permission::ComplianceWrite) else {
        return forbidden(
            &viewer,
            &format!("Your role ({}) cannot add evidence.", role_name(&viewer)),
        );
    };
    let org = permit.organization_id();
    let script = is_script(request.headers());
    let max = state.evidence.max_upload_size();
    let refuse = |fields: &Fields, failure: Failure| {
        new_form(
            &state,
            &viewer,
            org,
            Which::Upload,
            Values::from_fields(fields),
            Some(failure),
        )
    };
    let (fields, form) = match read_upload(&state, &viewer, request, true).await {
        Ok(x) => x,
        Err((fields, e)) => {
            return match explain(e, "", "file", max) {
                Ok(f) => refuse(&fields, f).await,
                Err(e) => failed(&viewer, e),
            };
        }
    };
    let Some(file) = form.file.clone() else {
        let f = Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "file",
            "Choose a file to upload.",
        );
        return refuse(&fields, f).await;
    };
    let mut new = match new_from_form(&form) {
        Ok(n) => n,
        Err(e) => {
            return match explain(e, "", "file", max) {
                Ok(f) => refuse(&fields, f).await,
                Err(e) => failed(&viewer, e),
            };
        }
    };
    let cat = match catalogue(&state, org.as_uuid(), false).await {
        Ok(c) => c,
        Err(e) => return failed(&viewer, e),
    };
    match resolve_refs(&state, &cat, fields.get("control_refs")).await {
        Ok(Ok(ids)) => new.control_ids.extend(ids),
        Ok(Err(m)) => {
            let f = Failure::new(StatusCode::UNPROCESSABLE_ENTITY, "control_refs", m);
            return refuse(&fields, f).await;
        }
        Err(e) => return failed(&viewer, e),
    }
    match state
        .evidence
        .create(&permit, new, Some(file), &client)
        .await
    {
        Ok(item) => done(
            &viewer,
            script,
            &format!("/evidence/{}", item.id),
            &format!(
                "Uploaded “{}”. Link it to the controls it shows, then submit it for approval.",
                item.title
            ),
        ),
        Err(e) => match explain(ApiError::from(e), "", "file", max) {
            Ok(f) => refuse(&fields, f).await,
            Err(e) => failed(&viewer, e),
        },
    }
}

async fn create_link(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let Ok(permit) = account.principal.require(Permission::ComplianceWrite) else {
        return forbidden(
            &viewer,
            &format!("Your role ({}) cannot add evidence.", role_name(&viewer)),
        );
    };
    let org = permit.organization_id();
    let fields = Fields(raw);
    let max = state.evidence.max_upload_size();
    let refuse = |failure: Failure| {
        new_form(
            &state,
            &viewer,
            org,
            Which::Link,
            Values::from_fields(&fields),
            Some(failure),
        )
    };
    if !viewer.csrf_ok(fields.get("csrf_token")) {
        return refuse(Failure::new(
            StatusCode::FORBIDDEN,
            "link-title",
            EXPIRED_FORM,
        ))
        .await;
    }
    let url = fields.get("url").trim();
    if url.is_empty() {
        return refuse(Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "link-url",
            "Enter the address of the evidence, such as https://intranet.example/policy.",
        ))
        .await;
    }
    let mut new = match new_from_form(&fields.as_upload()) {
        Ok(n) => n,
        Err(e) => {
            return match explain(e, "link-", "link-title", max) {
                Ok(f) => refuse(f).await,
                Err(e) => failed(&viewer, e),
            };
        }
    };
    new.url = Some(url.to_owned());
    let cat = match catalogue(&state, org.as_uuid(), false).await {
        Ok(c) => c,
        Err(e) => return failed(&viewer, e),
    };
    match resolve_refs(&state, &cat, fields.get("control_refs")).await {
        Ok(Ok(ids)) => new.control_ids.extend(ids),
        Ok(Err(m)) => {
            return refuse(Failure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "link-control_refs",
                m,
            ))
            .await;
        }
        Err(e) => return failed(&viewer, e),
    }
    match state.evidence.create(&permit, new, None, &client).await {
        Ok(item) => viewer.redirect(
            &format!("/evidence/{}", item.id),
            Some(&format!(
                "Added the link “{}”. Link it to the controls it shows, then submit it for approval.",
                item.title
            )),
            None,
        ),
        Err(e) => match explain(ApiError::from(e), "link-", "link-title", max) {
            Ok(f) => refuse(f).await,
            Err(e) => failed(&viewer, e),
        },
    }
}

// ---- One item ----

struct FileFacts {
    name: String,
    size: String,
    sha256: String,
    content_type: String,
}

struct VersionRow {
    number: i32,
    href: String,
    name: String,
    size: String,
    sha256: String,
    uploaded_by: String,
    uploaded_at: String,
    current: bool,
}

struct LinkedControl {
    href: String,
    reference: String,
    title: String,
    framework: String,
}

struct HistoryRow {
    at: String,
    who: String,
    what: String,
    comment: String,
}

#[derive(Template)]
#[template(path = "evidence/show.html")]
struct ShowPage {
    chrome: Chrome,
    errors: Vec<FieldError>,
    id: Uuid,
    title: String,
    description: String,
    type_label: String,
    is_link: bool,
    url: String,
    status: &'static str,
    status_slug: &'static str,
    version: i32,
    file: Option<FileFacts>,
    effective: String,
    expires: String,
    expires_soon: bool,
    added: String,
    submitted: String,
    decided: String,
    decision_comment: String,
    versions: Vec<VersionRow>,
    controls: Vec<LinkedControl>,
    groups: Vec<ControlGroup>,
    control_refs: String,
    history: Vec<HistoryRow>,
    can_write: bool,
    can_submit: bool,
    can_decide: bool,
    /// Why no decision buttons are shown, when the item awaits one.
    decide_note: String,
    comment: String,
    rules: FileRules,
}

impl ShowPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::assessments::error_for(&self.errors, field)
    }
}

/// What a refused form on the item page sent, to show again with its error.
#[derive(Default)]
struct Kept {
    comment: String,
    control_refs: String,
    control_ids: Option<Vec<String>>,
}

async fn item_page(
    state: &AppState,
    viewer: &Viewer,
    id: Uuid,
    failure: Option<Failure>,
    kept: Kept,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(viewer);
    };
    let Ok(permit) = account.principal.require(Permission::ComplianceRead) else {
        return viewer.redirect("/dashboard", Some("Your role cannot see evidence."), None);
    };
    let org = permit.organization_id();
    let item = match state.evidence.get(org, id).await {
        Ok(i) => i,
        Err(EvidenceError::NotFound(_)) => return evidence_missing(viewer),
        Err(e) => return failed(viewer, e),
    };
    let versions = match state.evidence.versions(org, id).await {
        Ok(v) => v,
        Err(e) => return failed(viewer, e),
    };
    let history = match state.evidence.history(org, id).await {
        Ok(h) => h,
        Err(e) => return failed(viewer, e),
    };
    let people = match identity::members(&state.db, org.as_uuid()).await {
        Ok(p) => p,
        Err(e) => return failed(viewer, e),
    };
    let can_write = account.principal.can(Permission::ComplianceWrite);
    let cat = match catalogue(state, org.as_uuid(), can_write).await {
        Ok(c) => c,
        Err(e) => return failed(viewer, e),
    };
    let me = account.principal.user_id.as_uuid();
    let name_of = |who: Option<Uuid>| match who {
        None => "ruleIQ".to_owned(),
        Some(w) if w == me => "You".to_owned(),
        Some(w) => people.iter().find(|(_, u)| u.id == w).map_or_else(
            || "Someone who has left".to_owned(),
            |(_, u)| u.full_name.clone(),
        ),
    };
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%-d %b %Y %H:%M").to_string();
    let can_approve = account.principal.can(Permission::ComplianceApprove);
    let author = item.submitted_by.or(item.created_by);
    let (can_decide, decide_note) = if item.status == Status::Submitted {
        if !can_approve {
            (
                false,
                "It awaits a decision by a compliance manager, an admin or the owner.".to_owned(),
            )
        } else if author == Some(me) {
            (
                false,
                "You submitted this evidence, so another member must decide on it.".to_owned(),
            )
        } else {
            (true, String::new())
        }
    } else {
        (false, String::new())
    };
    let selected: HashSet<String> = kept
        .control_ids
        .unwrap_or_else(|| item.controls.iter().map(|c| c.id.to_string()).collect())
        .into_iter()
        .collect();
    let framework_name = |slug: &str| {
        cat.frameworks
            .iter()
            .find(|f| f.slug == slug)
            .map_or_else(|| slug.to_owned(), |f| f.name.clone())
    };
    let expires = item.expires_at.map(|e| e.date_naive());
    let today = state.plans.today();
    let status = failure.as_ref().map_or(StatusCode::OK, |f| f.status);
    let page = ShowPage {
        chrome: viewer.chrome(),
        errors: failure.into_iter().map(|f| f.error).collect(),
        id,
        title: item.title.clone(),
        description: item.description.clone().unwrap_or_default(),
        type_label: type_label(&item.evidence_type),
        is_link: item.kind == "link",
        url: item.url.clone().unwrap_or_default(),
        status: status_label(item.status),
        status_slug: item.status.as_str(),
        version: item.version,
        file: item.file.as_ref().map(|f| FileFacts {
            name: f.name.clone(),
            size: human_size(f.size_bytes),
            sha256: f.sha256.clone(),
            content_type: f.content_type.clone(),
        }),
        effective: item.effective_date.map(day).unwrap_or_default(),
        expires: expires.map(day).unwrap_or_default(),
        expires_soon: item.status != Status::Expired
            && expires.is_some_and(|e| e <= today + chrono::Days::new(u64::from(SOON_DAYS))),
        added: format!("{} by {}", when(item.created_at), name_of(item.created_by)),
        submitted: item
            .submitted_at
            .map(|t| format!("{} by {}", when(t), name_of(item.submitted_by)))
            .unwrap_or_default(),
        decided: item
            .decided_at
            .map(|t| format!("{} by {}", when(t), name_of(item.decided_by)))
            .unwrap_or_default(),
        decision_comment: item.decision_comment.clone().unwrap_or_default(),
        versions: versions
            .into_iter()
            .map(|v| VersionRow {
                href: format!("/evidence/{id}/download?version={}", v.version),
                current: v.version == item.version,
                number: v.version,
                name: v.file.name,
                size: human_size(v.file.size_bytes),
                sha256: v.file.sha256,
                uploaded_by: name_of(v.uploaded_by),
                uploaded_at: when(v.uploaded_at),
            })
            .collect(),
        controls: item
            .controls
            .iter()
            .map(|c| LinkedControl {
                href: format!("/controls/{}", c.id),
                reference: c.reference.clone(),
                title: c.title.clone(),
                framework: framework_name(&c.framework_slug),
            })
            .collect(),
        groups: cat.options(&selected),
        control_refs: kept.control_refs,
        history: history
            .into_iter()
            .rev()
            .map(|e| HistoryRow {
                at: when(e.created_at),
                who: name_of(e.actor_id),
                what: action_label(&e.action),
                comment: e.comment.unwrap_or_default(),
            })
            .collect(),
        can_write,
        can_submit: can_write && matches!(item.status, Status::Draft | Status::Rejected),
        can_decide,
        decide_note,
        comment: kept.comment,
        rules: file_rules(state),
    };
    viewer.page(status, &page)
}

async fn show(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return evidence_missing(&viewer);
    };
    item_page(&state, &viewer, id, None, Kept::default()).await
}

async fn download(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(raw): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let Ok(permit) = account.principal.require(Permission::ComplianceRead) else {
        return forbidden(&viewer, "Your role cannot see evidence.");
    };
    let Ok(id) = id.parse::<Uuid>() else {
        return evidence_missing(&viewer);
    };
    let params = Fields(raw);
    let version = match params.get("version").trim() {
        "" => None,
        v => match v.parse::<i32>() {
            Ok(v) => Some(v),
            Err(_) => return evidence_missing(&viewer),
        },
    };
    match send_file(&state, permit.organization_id(), id, version, &headers).await {
        Ok(response) => response,
        Err(ApiError::NotFound(m)) => not_found(
            &viewer,
            &capitalise(&m),
            &format!("/evidence/{id}"),
            "the evidence",
        ),
        Err(e) => failed(&viewer, e),
    }
}

/// The item id of a POST, and the write permit; or the page that refuses it.
fn item_and_permit<'a>(
    viewer: &'a Viewer,
    id: &str,
    permission: Permission,
    refusal: &str,
) -> Result<(Uuid, ruleiq_services::identity::Permit<'a>), Box<Response>> {
    let Some(account) = &viewer.account else {
        return Err(Box::new(sign_in_first(viewer)));
    };
    let Ok(id) = id.parse::<Uuid>() else {
        return Err(Box::new(evidence_missing(viewer)));
    };
    match account.principal.require(permission) {
        Ok(permit) => Ok((id, permit)),
        Err(_) => Err(Box::new(forbidden(
            viewer,
            &format!("Your role ({}) cannot {refusal}.", role_name(viewer)),
        ))),
    }
}

async fn add_version(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (id, permit) = match item_and_permit(
        &viewer,
        &id,
        Permission::ComplianceWrite,
        "upload new versions",
    ) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let org = permit.organization_id();
    // Refuse another organisation's (or a missing) item before storing a byte.
    match state.evidence.get(org, id).await {
        Ok(_) => {}
        Err(EvidenceError::NotFound(_)) => return evidence_missing(&viewer),
        Err(e) => return failed(&viewer, e),
    }
    let script = is_script(request.headers());
    let max = state.evidence.max_upload_size();
    let refuse = |failure: Failure| item_page(&state, &viewer, id, Some(failure), Kept::default());
    let form = match read_upload(&state, &viewer, request, false).await {
        Ok((_, form)) => form,
        Err((_, e)) => {
            return match explain(e, "version-", "version-file", max) {
                Ok(f) => refuse(f).await,
                Err(e) => failed(&viewer, e),
            };
        }
    };
    let Some(file) = form.file else {
        return refuse(Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "version-file",
            "Choose a file to upload.",
        ))
        .await;
    };
    match state.evidence.add_version(&permit, id, file, &client).await {
        Ok(item) => done(
            &viewer,
            script,
            &format!("/evidence/{id}"),
            &format!(
                "Uploaded version {} of “{}”. It is a draft again: submit it for a new approval.",
                item.version, item.title
            ),
        ),
        Err(EvidenceError::NotFound(_)) => evidence_missing(&viewer),
        Err(e) => match explain(ApiError::from(e), "version-", "version-file", max) {
            Ok(f) => refuse(f).await,
            Err(e) => failed(&viewer, e),
        },
    }
}

async fn set_controls(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let (id, permit) = match item_and_permit(
        &viewer,
        &id,
        Permission::ComplianceWrite,
        "link evidence to controls",
    ) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let fields = Fields(raw);
    let kept = || Kept {
        control_refs: fields.get("control_refs").to_owned(),
        control_ids: Some(
            fields
                .all("control_ids")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ),
        ..Kept::default()
    };
    if !viewer.csrf_ok(fields.get("csrf_token")) {
        let f = Failure::new(StatusCode::FORBIDDEN, "control_refs", EXPIRED_FORM);
        return item_page(&state, &viewer, id, Some(f), kept()).await;
    }
    let mut ids = Vec::new();
    for raw in fields.all("control_ids") {
        match raw.trim().parse::<Uuid>() {
            Ok(c) => ids.push(c),
            Err(_) => {
                let f = Failure::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "control_ids",
                    "Controls must be chosen from the list.",
                );
                return item_page(&state, &viewer, id, Some(f), kept()).await;
            }
        }
    }
    let cat = match catalogue(&state, permit.organization_id().as_uuid(), false).await {
        Ok(c) => c,
        Err(e) => return failed(&viewer, e),
    };
    match resolve_refs(&state, &cat, fields.get("control_refs")).await {
        Ok(Ok(more)) => ids.extend(more),
        Ok(Err(m)) => {
            let f = Failure::new(StatusCode::UNPROCESSABLE_ENTITY, "control_refs", m);
            return item_page(&state, &viewer, id, Some(f), kept()).await;
        }
        Err(e) => return failed(&viewer, e),
    }
    match state.evidence.set_controls(&permit, id, ids, &client).await {
        Ok(item) => {
            let flash = match item.controls.len() {
                0 => "This evidence backs no controls now.".to_owned(),
                1 => "This evidence now backs 1 control.".to_owned(),
                n => format!("This evidence now backs {n} controls."),
            };
            viewer.redirect(&format!("/evidence/{id}#controls"), Some(&flash), None)
        }
        Err(EvidenceError::NotFound(_)) => evidence_missing(&viewer),
        Err(e) => match explain(ApiError::from(e), "", "control_refs", 0) {
            Ok(f) => item_page(&state, &viewer, id, Some(f), kept()).await,
            Err(e) => failed(&viewer, e),
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
    decide(&state, &viewer, &client, &id, Action::Submit, &Fields(raw)).await
}

async fn approve(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    decide(&state, &viewer, &client, &id, Action::Approve, &Fields(raw)).await
}

async fn reject(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    decide(&state, &viewer, &client, &id, Action::Reject, &Fields(raw)).await
}

/// Submit, approve or reject.
async fn decide(
    state: &AppState,
    viewer: &Viewer,
    client: &ruleiq_services::audit::ClientInfo,
    id: &str,
    action: Action,
    fields: &Fields,
) -> Response {
    let (permission, refusal) = match action {
        Action::Approve | Action::Reject => {
            (Permission::ComplianceApprove, "approve or reject evidence")
        }
        _ => (Permission::ComplianceWrite, "submit evidence"),
    };
    let (id, permit) = match item_and_permit(viewer, id, permission, refusal) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let comment = fields.get("comment").to_owned();
    let kept = || Kept {
        comment: comment.clone(),
        ..Kept::default()
    };
    if !viewer.csrf_ok(fields.get("csrf_token")) {
        let f = Failure::new(StatusCode::FORBIDDEN, "workflow", EXPIRED_FORM);
        return item_page(state, viewer, id, Some(f), kept()).await;
    }
    let text = Some(comment.trim().to_owned()).filter(|c| !c.is_empty());
    match state
        .evidence
        .transition(&permit, id, action, text, client)
        .await
    {
        Ok(item) => {
            let flash = match action {
                Action::Submit => format!(
                    "Submitted “{}” for approval; another member will approve or reject it.",
                    item.title
                ),
                Action::Approve => format!("Approved “{}”.", item.title),
                _ => format!(
                    "Rejected “{}”; the comment tells the uploader why.",
                    item.title
                ),
            };
            viewer.redirect(&format!("/evidence/{id}"), Some(&flash), None)
        }
        Err(EvidenceError::NotFound(_)) => evidence_missing(viewer),
        Err(EvidenceError::Invalid {
            field: "comment",
            message,
        }) => {
            let message = if action == Action::Reject && comment.trim().is_empty() {
                "Say why the evidence is rejected, so the uploader can put it right.".to_owned()
            } else {
                field_sentence("comment", &message)
            };
            let f = Failure::new(StatusCode::UNPROCESSABLE_ENTITY, "comment", message);
            item_page(state, viewer, id, Some(f), kept()).await
        }
        Err(e) => match explain(ApiError::from(e), "", "workflow", 0) {
            Ok(f) => item_page(state, viewer, id, Some(f), kept()).await,
            Err(e) => failed(viewer, e),
        },
    }
}

#[derive(Template)]
#[template(path = "evidence/delete.html")]
struct DeletePage {
    chrome: Chrome,
    id: Uuid,
    title: String,
    error: Option<String>,
}

async fn delete_page(
    state: &AppState,
    viewer: &Viewer,
    id: Uuid,
    org: OrganizationId,
    error: Option<(StatusCode, String)>,
) -> Response {
    let item = match state.evidence.get(org, id).await {
        Ok(i) => i,
        Err(EvidenceError::NotFound(_)) => return evidence_missing(viewer),
        Err(e) => return failed(viewer, e),
    };
    let status = error.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let page = DeletePage {
        chrome: viewer.chrome(),
        id,
        title: item.title,
        error: error.map(|(_, m)| m),
    };
    viewer.page(status, &page)
}

async fn confirm_delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let (id, permit) =
        match item_and_permit(&viewer, &id, Permission::ComplianceWrite, "delete evidence") {
            Ok(x) => x,
            Err(r) => return *r,
        };
    delete_page(&state, &viewer, id, permit.organization_id(), None).await
}

async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let (id, permit) =
        match item_and_permit(&viewer, &id, Permission::ComplianceWrite, "delete evidence") {
            Ok(x) => x,
            Err(r) => return *r,
        };
    let org = permit.organization_id();
    let fields = Fields(raw);
    if !viewer.csrf_ok(fields.get("csrf_token")) {
        let error = Some((StatusCode::FORBIDDEN, EXPIRED_FORM.to_owned()));
        return delete_page(&state, &viewer, id, org, error).await;
    }
    let title = match state.evidence.get(org, id).await {
        Ok(i) => i.title,
        Err(EvidenceError::NotFound(_)) => return evidence_missing(&viewer),
        Err(e) => return failed(&viewer, e),
    };
    match state.evidence.delete(&permit, id, &client).await {
        Ok(()) => viewer.redirect(
            "/evidence",
            Some(&format!(
                "Deleted “{title}”. Its record stays in the audit trail."
            )),
            None,
        ),
        Err(EvidenceError::NotFound(_)) => evidence_missing(&viewer),
        Err(EvidenceError::Conflict(m)) => {
            let error = Some((StatusCode::CONFLICT, capitalise(&m)));
            delete_page(&state, &viewer, id, org, error).await
        }
        Err(e) => failed(&viewer, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_well() {
        assert_eq!(type_label("training_record"), "Training record");
        assert_eq!(
            field_sentence("title", "must not be empty"),
            "Title must not be empty."
        );
        assert_eq!(
            field_sentence("file", "the file is empty"),
            "The file is empty."
        );
    }
}
