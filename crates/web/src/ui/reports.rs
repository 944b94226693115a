//! Reports for people: the form that asks for one with the history of those made,
//! one report's page (which follows the job building it), its download, and the
//! schedules that make reports on a cron expression and mail them.
//!
//! Every page works without JavaScript. A report being made refreshes its page every
//! two seconds with a `<meta http-equiv>` until it is ready or has failed. Whether a
//! type comes in a format is the service's rule ([`Reports::check`]); these pages only
//! turn its refusal into a sentence that names the formats the type does come in.
//!
//! [`Reports::check`]: ruleiq_services::reports::Reports::check

use askama::Template;
use axum::{
    Form, Router,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use ruleiq_core::{OrganizationId, Permission};
use ruleiq_db::repositories::frameworks as frameworks_repo;
use ruleiq_services::{
    identity::Permit,
    reports::{
        CreateReport, Format, ReportError, ReportType, ReportView,
        schedules::{CreateSchedule, MAX_RECIPIENTS},
    },
};
use uuid::Uuid;

use super::{
    Chrome, EXPIRED_FORM, Viewer,
    assessments::{FieldError, capitalise, day, failed, not_found, sign_in_first},
    policies::{field, forbidden, role_name, when},
    urlencoding_encode,
};
use crate::{api::evidence::disposition, extract::Client, state::AppState};

/// Reports per page of the history.
const PAGE_SIZE: u64 = 25;
/// The time zone the schedule form starts with.
const DEFAULT_TIMEZONE: &str = "Europe/London";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/reports", get(list).post(create))
        .route("/reports/schedules", get(schedules).post(create_schedule))
        .route("/reports/schedules/{id}/delete", post(delete_schedule))
        .route("/reports/{id}", get(show))
        .route("/reports/{id}/download", get(download))
}

// ---- Words ----

/// One sentence on what a report holds.
fn description(t: ReportType) -> &'static str {
    match t {
        ReportType::ExecutiveSummary => {
            "Readiness per framework with trends, the top gaps, plan progress, evidence and policy status and AI spend: a board member's five minutes."
        }
        ReportType::GapAnalysis => {
            "Every open gap with its severity, recommendation, task, owner and due date."
        }
        ReportType::EvidenceRegister => {
            "Every evidence item with its controls, status, hash and dates."
        }
        ReportType::StatementOfApplicability => {
            "Every ISO/IEC 27001:2022 Annex A control with its applicability, justification, implementation status and evidence."
        }
        ReportType::AuditPack => {
            "Everything an auditor asks for in one ZIP archive, with a manifest of hashes."
        }
        ReportType::PolicyPack => "Every approved policy, with a contents page.",
    }
}

/// A format as the format list shows it.
fn format_label(f: Format) -> &'static str {
    match f {
        Format::Pdf => "PDF",
        Format::Docx => "Word (docx)",
        Format::Xlsx => "Excel (xlsx)",
        Format::Csv => "CSV",
        Format::Zip => "ZIP archive",
        Format::Json => "JSON (data for scripts)",
    }
}

/// A format as a sentence names it.
fn format_word(f: Format) -> &'static str {
    match f {
        Format::Pdf => "PDF",
        Format::Docx => "Word",
        Format::Xlsx => "Excel",
        Format::Csv => "CSV",
        Format::Zip => "ZIP",
        Format::Json => "JSON",
    }
}

/// "PDF", "PDF or Word", "PDF, Word or JSON".
fn or_list(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// The formats a type comes in, as a sentence names them.
fn formats_of(t: ReportType) -> String {
    let words: Vec<&str> = t.formats().iter().map(|f| format_word(*f)).collect();
    or_list(&words)
}

/// "An executive summary", "A gap analysis".
fn a_report(t: ReportType) -> String {
    let title = t.title().to_lowercase();
    let article = if title.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "An"
    } else {
        "A"
    };
    format!("{article} {title}")
}

/// The label and badge class of a stored status.
fn status_label(s: &str) -> (&'static str, &'static str) {
    match s {
        "queued" => ("Queued", "queued"),
        "running" => ("Being made", "running"),
        "ready" => ("Ready", "ready"),
        "failed" => ("Failed", "failed"),
        "expired" => ("Expired", "expired"),
        _ => ("Unknown", "unknown"),
    }
}

/// A stored size as people read it (the evidence pages' wording).
fn human_size(bytes: i64) -> String {
    ruleiq_core::human_size(u64::try_from(bytes).unwrap_or(0))
}

/// A report's title: its type's, or the stored name for one this server no longer
/// knows.
fn title_of(report_type: &str) -> String {
    ReportType::parse(report_type).map_or_else(
        || {
            capitalise(&report_type.replace('_', " "))
                .trim_end_matches('.')
                .to_owned()
        },
        |t| t.title().to_owned(),
    )
}

fn format_of(format: &str) -> String {
    Format::parse(format).map_or_else(|| format.to_uppercase(), |f| format_word(f).to_owned())
}

// ---- Permissions and shared answers ----

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
            "/reports",
            "the reports",
        ))
    })
}

fn reader(viewer: &Viewer) -> Result<Permit<'_>, Box<Response>> {
    permit_for(viewer, Permission::ReportsRead, "see reports")
}

fn can_export(viewer: &Viewer) -> bool {
    viewer
        .account
        .as_ref()
        .is_some_and(|a| a.principal.can(Permission::ReportsExport))
}

fn report_missing(viewer: &Viewer) -> Response {
    not_found(
        viewer,
        "There is no such report in your organisation.",
        "/reports",
        "the reports",
    )
}

fn parse_id(raw: &str) -> Option<Uuid> {
    raw.parse().ok()
}

/// The organisation's visible frameworks: `(id, name)`, in the order the library
/// lists them.
async fn frameworks(state: &AppState, org: OrganizationId) -> Result<Vec<(Uuid, String)>, String> {
    frameworks_repo::visible(&state.db, Some(org.as_uuid()))
        .await
        .map(|all| all.into_iter().map(|f| (f.id, f.name)).collect())
        .map_err(|e| e.to_string())
}

fn framework_name(all: &[(Uuid, String)], id: Option<Uuid>) -> Option<String> {
    id.map(|id| {
        all.iter().find(|(f, _)| *f == id).map_or_else(
            || "a framework since removed".to_owned(),
            |(_, n)| n.clone(),
        )
    })
}

/// What the report and schedule forms share: type, format and framework, read from a
/// form. A field and a sentence when one is missing or not from the lists.
fn parse_request(sent: &[(String, String)]) -> Result<CreateReport, (&'static str, String)> {
    let report_type = match field(sent, "report_type").trim() {
        "" => return Err(("report_type", "Choose the type of report.".into())),
        t => ReportType::parse(t).ok_or((
            "report_type",
            "Report type must be one from the list.".into(),
        ))?,
    };
    let format = match field(sent, "format").trim() {
        "" => return Err(("format", "Choose a format.".into())),
        f => Format::parse(f).ok_or(("format", "Format must be one from the list.".into()))?,
    };
    let framework_id = match field(sent, "framework_id").trim() {
        "" => None,
        f => Some(
            f.parse::<Uuid>()
                .map_err(|_| ("framework_id", FRAMEWORK_FROM_LIST.to_owned()))?,
        ),
    };
    Ok(CreateReport {
        report_type,
        format,
        framework_id,
    })
}

const FRAMEWORK_FROM_LIST: &str = "Framework must be one from the list.";

/// The status, the form field and the sentence for a refused request about a report
/// of `kind` in `format`; `Err` for our own failure (logged, never shown).
fn explain(
    kind: ReportType,
    format: Format,
    e: ReportError,
) -> Result<(StatusCode, &'static str, String), String> {
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(match e {
        ReportError::Invalid {
            field: "format", ..
        } => (
            unprocessable,
            "format",
            format!(
                "{} comes as {}, not as {}: choose one of those formats, or another type of report.",
                a_report(kind),
                formats_of(kind),
                format_word(format)
            ),
        ),
        ReportError::Invalid {
            field: "framework_id",
            ..
        } => (
            unprocessable,
            "framework_id",
            format!(
                "{} cannot be limited to one framework: choose “All frameworks”.",
                a_report(kind)
            ),
        ),
        ReportError::Invalid { field, message } => {
            let label = match field {
                "cron" => "Schedule",
                "timezone" => "Time zone",
                "recipients" => "Recipients",
                "report_type" => "Report type",
                _ => "",
            };
            let sentence = if label.is_empty() {
                capitalise(&message)
            } else {
                format!("{label}: {}", capitalise(&message))
            };
            let field = match field {
                "cron" | "timezone" | "recipients" => field,
                _ => "report_type",
            };
            (unprocessable, field, sentence)
        }
        // In a request, the only thing not found is the framework.
        ReportError::NotFound(_) => (unprocessable, "framework_id", FRAMEWORK_FROM_LIST.into()),
        ReportError::Queue(m) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "report_type",
            format!(
                "{} Nothing was made; please try again in a minute.",
                capitalise(&m)
            ),
        ),
        ReportError::NotReady(m) | ReportError::Expired(m) => return Err(m),
        ReportError::Store(e) => return Err(e.to_string()),
        ReportError::Db(e) => return Err(e.to_string()),
    })
}

// ---- The form's choices ----

struct TypeChoice {
    value: &'static str,
    title: &'static str,
    description: &'static str,
    formats: String,
    takes_framework: bool,
    checked: bool,
}

struct FormatChoice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

struct FrameworkChoice {
    id: String,
    name: String,
    selected: bool,
}

/// The choices of the report and schedule forms, with what was sent chosen.
struct Choices {
    types: Vec<TypeChoice>,
    formats: Vec<FormatChoice>,
    frameworks: Vec<FrameworkChoice>,
    /// The types that may be limited to one framework, as a sentence names them.
    framework_types: String,
}

fn choices(sent: &[(String, String)], all: &[(Uuid, String)]) -> Choices {
    let chosen_type = field(sent, "report_type");
    let chosen_format = field(sent, "format");
    let chosen_framework = field(sent, "framework_id");
    let framework_types: Vec<String> = ReportType::ALL
        .into_iter()
        .filter(|t| t.takes_framework())
        .map(|t| t.title().to_lowercase())
        .collect();
    let framework_types: Vec<&str> = framework_types.iter().map(String::as_str).collect();
    Choices {
        types: ReportType::ALL
            .into_iter()
            .map(|t| TypeChoice {
                value: t.as_str(),
                title: t.title(),
                description: description(t),
                formats: formats_of(t),
                takes_framework: t.takes_framework(),
                checked: t.as_str() == chosen_type,
            })
            .collect(),
        formats: Format::ALL
            .into_iter()
            .map(|f| FormatChoice {
                value: f.as_str(),
                label: format_label(f),
                selected: f.as_str() == chosen_format,
            })
            .collect(),
        frameworks: all
            .iter()
            .map(|(id, name)| {
                let id = id.to_string();
                FrameworkChoice {
                    selected: id == chosen_framework,
                    id,
                    name: name.clone(),
                }
            })
            .collect(),
        framework_types: capitalise(&or_list(&framework_types))
            .trim_end_matches('.')
            .to_owned(),
    }
}

/// What "Generate again" sends: the report's own type, format and framework.
struct Again {
    report_type: String,
    format: String,
    framework_id: String,
}

impl Again {
    fn of(r: &ReportView) -> Self {
        Self {
            report_type: r.report_type.clone(),
            format: r.format.clone(),
            framework_id: r.framework_id.map(|f| f.to_string()).unwrap_or_default(),
        }
    }
}

// ---- The form and the history ----

struct Row {
    href: String,
    title: String,
    framework: Option<String>,
    format: String,
    status: &'static str,
    status_slug: &'static str,
    progress: i32,
    created: String,
    size: String,
    download_href: Option<String>,
}

#[derive(Template)]
#[template(path = "reports/list.html")]
struct ListPage {
    chrome: Chrome,
    errors: Vec<FieldError>,
    choices: Choices,
    can_export: bool,
    role: String,
    rows: Vec<Row>,
    next_href: Option<String>,
    first_href: Option<String>,
}

impl ListPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::assessments::error_for(&self.errors, field)
    }
}

/// `/reports` with `cursor`'s page of the history, the form filled with `sent`, and
/// a refused request's error.
async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    org: OrganizationId,
    cursor: &str,
    sent: &[(String, String)],
    failure: Option<(StatusCode, FieldError)>,
) -> Response {
    let all = match frameworks(state, org).await {
        Ok(f) => f,
        Err(e) => return failed(viewer, e),
    };
    let mut status = failure.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let mut errors: Vec<FieldError> = failure.into_iter().map(|(_, e)| e).collect();
    let cursor = cursor.trim();
    let (items, next_cursor) = match state
        .reports
        .list(org, Some(PAGE_SIZE), (!cursor.is_empty()).then_some(cursor))
        .await
    {
        Ok(page) => (page.items, page.next_cursor),
        Err(ReportError::Invalid {
            field: "cursor", ..
        }) => {
            status = StatusCode::UNPROCESSABLE_ENTITY;
            errors.push(FieldError::new(
                "history",
                "That page link is not one this server gave out; start again from the first page.",
            ));
            (Vec::new(), None)
        }
        Err(e) => return failed(viewer, e),
    };
    let rows = items
        .into_iter()
        .map(|r| {
            let (label, slug) = status_label(&r.status);
            Row {
                href: format!("/reports/{}", r.id),
                title: title_of(&r.report_type),
                framework: framework_name(&all, r.framework_id),
                format: format_of(&r.format),
                status: label,
                status_slug: slug,
                progress: r.progress,
                created: when(r.created_at),
                size: r.size_bytes.map(human_size).unwrap_or_default(),
                download_href: (r.status == "ready").then(|| format!("/reports/{}/download", r.id)),
            }
        })
        .collect();
    let page = ListPage {
        chrome: viewer.chrome(),
        errors,
        choices: choices(sent, &all),
        can_export: can_export(viewer),
        role: role_name(viewer),
        rows,
        next_href: next_cursor.map(|c| format!("/reports?cursor={}", urlencoding_encode(&c))),
        first_href: (!cursor.is_empty()).then(|| "/reports".to_owned()),
    };
    viewer.page(status, &page)
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
    list_page(
        &state,
        &viewer,
        permit.organization_id(),
        field(&raw, "cursor"),
        &[],
        None,
    )
    .await
}

async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let permit = match permit_for(&viewer, Permission::ReportsExport, "create reports") {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let org = permit.organization_id();
    let refuse = |status: StatusCode, field: &str, message: String| {
        list_page(
            &state,
            &viewer,
            org,
            "",
            &raw,
            Some((status, FieldError::new(field, message))),
        )
    };
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        return refuse(StatusCode::FORBIDDEN, "report_type", EXPIRED_FORM.into()).await;
    }
    let request = match parse_request(&raw) {
        Ok(r) => r,
        Err((f, m)) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, f, m).await,
    };
    let (kind, format) = (request.report_type, request.format);
    match state.reports.create(&permit, request, &client).await {
        Ok((view, _job)) => viewer.redirect(
            &format!("/reports/{}", view.id),
            Some(&format!(
                "{} ({}) is being made; this page follows it until it is ready.",
                a_report(kind),
                format_word(format)
            )),
            None,
        ),
        Err(e) => match explain(kind, format, e) {
            Ok((status, f, message)) => refuse(status, f, message).await,
            Err(m) => failed(&viewer, m),
        },
    }
}

// ---- One report ----

#[derive(Template)]
#[template(path = "reports/show.html")]
struct ShowPage {
    chrome: Chrome,
    id: Uuid,
    title: String,
    format: String,
    framework: Option<String>,
    status: &'static str,
    status_slug: &'static str,
    progress: i32,
    note: Option<String>,
    /// Queued or running: the page refreshes itself.
    pending: bool,
    ready: bool,
    /// Why it failed, when it did.
    failure: Option<String>,
    /// Its file is gone (410 for the download).
    expired: bool,
    file_name: String,
    size: String,
    sha256: String,
    created: String,
    finished: String,
    /// The day its file is (or was) removed.
    expires: String,
    can_export: bool,
    again: Again,
}

async fn show(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    let permit = match reader(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let org = permit.organization_id();
    let Some(id) = parse_id(&id) else {
        return report_missing(&viewer);
    };
    let r = match state.reports.get(org, id).await {
        Ok(r) => r,
        Err(ReportError::NotFound(_)) => return report_missing(&viewer),
        Err(e) => return failed(&viewer, e),
    };
    let all = match frameworks(&state, org).await {
        Ok(f) => f,
        Err(e) => return failed(&viewer, e),
    };
    // A ready report past its retention is gone to the reader at once, as the
    // download says, even before the sweep marks it expired.
    let past = r.expires_at.is_some_and(|t| t <= chrono::Utc::now());
    let expired = r.status == "expired" || (r.status == "ready" && past);
    let (status, slug) = if expired {
        status_label("expired")
    } else {
        status_label(&r.status)
    };
    let page = ShowPage {
        chrome: viewer.chrome(),
        id,
        title: title_of(&r.report_type),
        format: format_of(&r.format),
        framework: framework_name(&all, r.framework_id),
        status,
        status_slug: slug,
        progress: r.progress.clamp(0, 100),
        note: r.progress_note.clone().map(|n| capitalise(&n)),
        pending: matches!(r.status.as_str(), "queued" | "running"),
        ready: r.status == "ready" && !expired,
        failure: (r.status == "failed").then(|| {
            r.error
                .as_deref()
                .map_or_else(|| "No reason was recorded.".to_owned(), capitalise)
        }),
        expired,
        file_name: r.file_name.clone(),
        size: r.size_bytes.map(human_size).unwrap_or_default(),
        sha256: r.sha256.clone().unwrap_or_default(),
        created: when(r.created_at),
        finished: r.finished_at.map(when).unwrap_or_default(),
        expires: r
            .expires_at
            .map(|t| day(t.date_naive()))
            .unwrap_or_default(),
        can_export: can_export(&viewer),
        again: Again::of(&r),
    };
    viewer.page(StatusCode::OK, &page)
}

// ---- Downloading ----

#[derive(Template)]
#[template(path = "reports/unavailable.html")]
struct UnavailablePage {
    chrome: Chrome,
    id: Uuid,
    heading: &'static str,
    message: String,
    can_export: bool,
    /// Offered when making it again is the way on (failed or expired).
    again: Option<Again>,
}

async fn download(
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
        return report_missing(&viewer);
    };
    let (status, message) = match state.reports.download(org, id).await {
        Ok(file) => {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            );
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
            headers.insert(header::CONTENT_DISPOSITION, disposition(&file.file_name));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", file.sha256)) {
                headers.insert(header::ETAG, v);
            }
            return (headers, Body::from_stream(file.body)).into_response();
        }
        Err(ReportError::NotFound(_)) => return report_missing(&viewer),
        Err(ReportError::NotReady(m)) => (StatusCode::CONFLICT, m),
        Err(ReportError::Expired(m)) => (StatusCode::GONE, m),
        Err(e) => return failed(&viewer, e),
    };
    let r = match state.reports.get(org, id).await {
        Ok(r) => r,
        Err(ReportError::NotFound(_)) => return report_missing(&viewer),
        Err(e) => return failed(&viewer, e),
    };
    let heading = if status == StatusCode::GONE {
        "This report's file has been removed"
    } else if r.status == "failed" {
        "This report failed"
    } else {
        "This report is not ready yet"
    };
    let page = UnavailablePage {
        chrome: viewer.chrome(),
        id,
        heading,
        message: capitalise(&message),
        can_export: can_export(&viewer),
        again: (status == StatusCode::GONE || r.status == "failed").then(|| Again::of(&r)),
    };
    viewer.page(status, &page)
}

// ---- Schedules ----

struct ScheduleRow {
    id: Uuid,
    title: String,
    framework: Option<String>,
    format: String,
    cron: String,
    timezone: String,
    recipients: Vec<String>,
    next_run: String,
    last_run: String,
    enabled: bool,
}

#[derive(Template)]
#[template(path = "reports/schedules.html")]
struct SchedulesPage {
    chrome: Chrome,
    errors: Vec<FieldError>,
    rows: Vec<ScheduleRow>,
    can_export: bool,
    role: String,
    choices: Choices,
    cron: String,
    timezone: String,
    recipients: String,
    max_recipients: usize,
}

impl SchedulesPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::assessments::error_for(&self.errors, field)
    }
}

/// `/reports/schedules`, the form filled with `sent`, and a refused request's error.
async fn schedules_page(
    state: &AppState,
    viewer: &Viewer,
    org: OrganizationId,
    sent: &[(String, String)],
    failure: Option<(StatusCode, FieldError)>,
) -> Response {
    let all = match frameworks(state, org).await {
        Ok(f) => f,
        Err(e) => return failed(viewer, e),
    };
    let list = match state.reports.schedules(org).await {
        Ok(s) => s,
        Err(e) => return failed(viewer, e),
    };
    let rows = list
        .into_iter()
        .map(|s| ScheduleRow {
            id: s.id,
            title: title_of(&s.report_type),
            framework: framework_name(&all, s.framework_id),
            format: format_of(&s.format),
            cron: s.cron,
            timezone: s.timezone,
            recipients: s.recipients,
            next_run: format!("{} UTC", when(s.next_run_at)),
            last_run: s
                .last_run_at
                .map(|t| format!("{} UTC", when(t)))
                .unwrap_or_default(),
            enabled: s.enabled,
        })
        .collect();
    let status = failure.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let timezone = match field(sent, "timezone") {
        "" if sent.is_empty() => DEFAULT_TIMEZONE.to_owned(),
        t => t.to_owned(),
    };
    let page = SchedulesPage {
        chrome: viewer.chrome(),
        errors: failure.into_iter().map(|(_, e)| e).collect(),
        rows,
        can_export: can_export(viewer),
        role: role_name(viewer),
        choices: choices(sent, &all),
        cron: field(sent, "cron").to_owned(),
        timezone,
        recipients: field(sent, "recipients").to_owned(),
        max_recipients: MAX_RECIPIENTS,
    };
    viewer.page(status, &page)
}

async fn schedules(State(state): State<AppState>, viewer: Viewer) -> Response {
    let permit = match reader(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    schedules_page(&state, &viewer, permit.organization_id(), &[], None).await
}

/// Recipients as typed: one a line, or separated by commas or semicolons.
fn recipients(raw: &str) -> Vec<String> {
    raw.split(['\n', ',', ';'])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn create_schedule(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let permit = match permit_for(&viewer, Permission::ReportsExport, "schedule reports") {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let org = permit.organization_id();
    let refuse = |status: StatusCode, field: &str, message: String| {
        schedules_page(
            &state,
            &viewer,
            org,
            &raw,
            Some((status, FieldError::new(field, message))),
        )
    };
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        return refuse(StatusCode::FORBIDDEN, "report_type", EXPIRED_FORM.into()).await;
    }
    let report = match parse_request(&raw) {
        Ok(r) => r,
        Err((f, m)) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, f, m).await,
    };
    let cron = field(&raw, "cron").trim().to_owned();
    if cron.is_empty() {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "cron",
            "Schedule: give five fields, for example 0 8 * * 1 for Mondays at 08:00.".into(),
        )
        .await;
    }
    let (kind, format) = (report.report_type, report.format);
    let request = CreateSchedule {
        report_type: kind,
        format,
        framework_id: report.framework_id,
        cron,
        timezone: field(&raw, "timezone").trim().to_owned(),
        recipients: recipients(field(&raw, "recipients")),
    };
    match state
        .reports
        .create_schedule(&permit, request, &client)
        .await
    {
        Ok(s) => viewer.redirect(
            "/reports/schedules",
            Some(&format!(
                "Scheduled {} ({}); the first is made {} UTC.",
                a_report(kind).to_lowercase(),
                format_word(format),
                when(s.next_run_at)
            )),
            None,
        ),
        Err(e) => match explain(kind, format, e) {
            Ok((status, f, message)) => refuse(status, f, message).await,
            Err(m) => failed(&viewer, m),
        },
    }
}

async fn delete_schedule(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let permit = match permit_for(&viewer, Permission::ReportsExport, "delete schedules") {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let org = permit.organization_id();
    let missing = || {
        not_found(
            &viewer,
            "There is no such schedule in your organisation.",
            "/reports/schedules",
            "the schedules",
        )
    };
    let Some(id) = parse_id(&id) else {
        return missing();
    };
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        let error = FieldError::new("schedules", EXPIRED_FORM);
        return schedules_page(
            &state,
            &viewer,
            org,
            &[],
            Some((StatusCode::FORBIDDEN, error)),
        )
        .await;
    }
    match state.reports.delete_schedule(&permit, id, &client).await {
        Ok(()) => viewer.redirect(
            "/reports/schedules",
            Some("Deleted the schedule. The reports it made are kept."),
            None,
        ),
        Err(ReportError::NotFound(_)) => missing(),
        Err(e) => failed(&viewer, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_articles_read_well() {
        assert_eq!(
            formats_of(ReportType::ExecutiveSummary),
            "PDF, Word or JSON"
        );
        assert_eq!(formats_of(ReportType::AuditPack), "ZIP");
        assert_eq!(formats_of(ReportType::PolicyPack), "PDF or Word");
        assert_eq!(
            a_report(ReportType::EvidenceRegister),
            "An evidence register"
        );
        assert_eq!(a_report(ReportType::GapAnalysis), "A gap analysis");
        assert_eq!(human_size(840), "840 bytes");
        assert_eq!(human_size(12_800), "12.5 KB");
        assert_eq!(human_size(3 * 1024 * 1024), "3 MB");
    }

    #[test]
    fn a_wrong_combination_names_the_formats_the_type_comes_in() {
        let e = ReportError::Invalid {
            field: "format",
            message: "a evidence register comes as xlsx, csv, json".into(),
        };
        let (status, field, message) =
            explain(ReportType::EvidenceRegister, Format::Pdf, e).unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(field, "format");
        assert_eq!(
            message,
            "An evidence register comes as Excel, CSV or JSON, not as PDF: choose one of those formats, or another type of report."
        );
    }

    #[test]
    fn forms_are_read_and_recipients_split() {
        let sent = vec![
            ("report_type".to_owned(), "gap_analysis".to_owned()),
            ("format".to_owned(), "xlsx".to_owned()),
            ("framework_id".to_owned(), String::new()),
        ];
        let r = parse_request(&sent).unwrap();
        assert_eq!(r.report_type, ReportType::GapAnalysis);
        assert_eq!(r.format, Format::Xlsx);
        assert!(r.framework_id.is_none());
        let bad = vec![("report_type".to_owned(), "nonsense".to_owned())];
        assert_eq!(parse_request(&bad).unwrap_err().0, "report_type");
        assert_eq!(
            recipients("a@example.com, b@example.com\r\nc@example.com\n\n"),
            ["a@example.com", "b@example.com", "c@example.com"]
        );
        let id = Uuid::now_v7();
        let all = vec![(id, "Cyber Essentials".to_owned())];
        assert_eq!(
            framework_name(&all, Some(id)).as_deref(),
            Some("Cyber Essentials")
        );
    }
}
