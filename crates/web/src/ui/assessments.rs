//! Assessments for people: the list, the wizard that asks one domain's questions at a
//! time, finishing, and the results with the form that turns them into a plan.
//!
//! Answers are saved on every submit, so a person can leave and carry on from any
//! device. A submit saves only the answers it changes: re-saving an untouched answer
//! would wipe the mark that it was pre-filled from another assessment.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::NaiveDate;
use ruleiq_core::{Criticality, OrganizationId, Permission};
use ruleiq_services::{
    assessments::{AssessmentError, QuestionView, scoring::Band, scoring::Response as Answer},
    plans::PlanError,
};
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

use super::{Chrome, EXPIRED_FORM, Viewer, charts::number, urlencoding_encode};
use crate::{extract::Client, state::AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/assessments", get(list).post(create))
        .route("/assessments/{id}", get(wizard))
        .route("/assessments/{id}/answers", post(answer))
        .route("/assessments/{id}/finish", get(finish_page))
        .route("/assessments/{id}/complete", post(complete))
        .route("/assessments/{id}/results", get(results))
        .route("/assessments/{id}/plans", post(create_plan))
}

// ---- Helpers the other compliance pages share ----

/// A form field's problem, shown next to the field and in the summary at the top.
#[derive(Debug, Clone)]
pub(super) struct FieldError {
    /// The `id` of the input, so the summary can link to it.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub(super) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The message for `field` among `errors`.
pub(super) fn error_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.message.as_str())
}

pub(super) fn sign_in_first(viewer: &Viewer) -> Response {
    viewer.redirect("/sign-in", Some("Please sign in first."), None)
}

#[derive(Template)]
#[template(path = "assessments/not_found.html")]
struct NotFoundPage {
    chrome: Chrome,
    what: String,
    back_href: String,
    back_label: String,
}

/// A 404 page: the id is unknown, or belongs to another organisation (which must not
/// be told apart from unknown).
pub(super) fn not_found(
    viewer: &Viewer,
    what: &str,
    back_href: &str,
    back_label: &str,
) -> Response {
    viewer.page(
        StatusCode::NOT_FOUND,
        &NotFoundPage {
            chrome: viewer.chrome(),
            what: what.to_owned(),
            back_href: back_href.to_owned(),
            back_label: back_label.to_owned(),
        },
    )
}

/// A 500 for a failure on our side: logged, never shown.
pub(super) fn failed(viewer: &Viewer, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "page failed");
    let mut response = (
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side; please try again.",
    )
        .into_response();
    viewer.finish(&mut response);
    response
}

/// A sentence from a service's `field: message`, with the field named as people
/// read it.
pub(super) fn sentence(label: &str, message: &str) -> String {
    format!("{label} {}.", message.trim_end_matches('.'))
}

/// A service's lower-case message as a sentence.
pub(super) fn capitalise(m: &str) -> String {
    let mut chars = m.trim_end_matches('.').chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect::<String>() + ".")
        .unwrap_or_default()
}

/// A date from a date input: empty is none.
pub(super) fn parse_date(s: &str) -> Result<Option<NaiveDate>, ()> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| ())
}

/// How a date reads on a page.
pub(super) fn day(d: NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

pub(super) fn severity_label(c: Criticality) -> &'static str {
    match c {
        Criticality::Critical => "Critical",
        Criticality::High => "High",
        Criticality::Medium => "Medium",
        Criticality::Low => "Low",
    }
}

pub(super) fn band_label(b: Band) -> &'static str {
    match b {
        Band::Ready => "Ready",
        Band::NearlyReady => "Nearly ready",
        Band::Developing => "Developing",
        Band::Early => "Early",
        Band::NotStarted => "Not started",
    }
}

/// The answers a person can give, in the order the wizard offers them.
const CHOICES: [(Answer, &str, &str); 5] = [
    (Answer::Yes, "yes", "Yes"),
    (Answer::Partial, "partial", "Partly"),
    (Answer::No, "no", "No"),
    (Answer::NotApplicable, "not_applicable", "Not applicable"),
    (Answer::Unknown, "unknown", "Not sure"),
];

fn answer_value(a: Answer) -> &'static str {
    CHOICES
        .iter()
        .find(|(r, _, _)| *r == a)
        .map_or("unknown", |(_, v, _)| v)
}

fn answer_label(a: Answer) -> &'static str {
    CHOICES
        .iter()
        .find(|(r, _, _)| *r == a)
        .map_or("Not sure", |(_, _, l)| l)
}

fn parse_answer(s: &str) -> Option<Answer> {
    CHOICES.iter().find(|(_, v, _)| *v == s).map(|(r, _, _)| *r)
}

fn parse_id(id: &str) -> Option<Uuid> {
    id.parse().ok()
}

fn assessment_missing(viewer: &Viewer) -> Response {
    not_found(
        viewer,
        "There is no such assessment in your organisation.",
        "/assessments",
        "your assessments",
    )
}

fn percent(answered: usize, total: usize) -> usize {
    (answered * 100).checked_div(total).unwrap_or(0)
}

// ---- The list ----

struct AssessmentRow {
    href: String,
    name: String,
    framework: String,
    completed: bool,
    answered: usize,
    total: usize,
    percent: usize,
    started: String,
}

struct FrameworkOption {
    slug: String,
    name: String,
}

#[derive(Template)]
#[template(path = "assessments/list.html")]
struct ListPage {
    chrome: Chrome,
    assessments: Vec<AssessmentRow>,
    frameworks: Vec<FrameworkOption>,
    can_write: bool,
    errors: Vec<FieldError>,
    framework: String,
    name: String,
}

impl ListPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    errors: Vec<FieldError>,
    framework: String,
    name: String,
) -> Response {
    let (org, may_write) = match reader(viewer) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let (assessments, frameworks) = match (
        state.assessments.list(org).await,
        state.catalog.list(Some(org.as_uuid())).await,
    ) {
        (Ok(a), Ok(f)) => (a, f),
        (Err(e), _) => return failed(viewer, e),
        (_, Err(e)) => return failed(viewer, e),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = ListPage {
        chrome: viewer.chrome(),
        assessments: assessments
            .into_iter()
            .map(|a| AssessmentRow {
                href: if a.status == "completed" {
                    format!("/assessments/{}/results", a.id)
                } else {
                    format!("/assessments/{}", a.id)
                },
                completed: a.status == "completed",
                percent: percent(a.answered, a.total),
                name: a.name,
                framework: a.framework_name,
                answered: a.answered,
                total: a.total,
                started: day(a.created_at.date_naive()),
            })
            .collect(),
        frameworks: frameworks
            .into_iter()
            .map(|f| FrameworkOption {
                slug: f.slug,
                name: f.name,
            })
            .collect(),
        can_write: may_write,
        errors,
        framework,
        name,
    };
    viewer.page(status, &page)
}

async fn list(State(state): State<AppState>, viewer: Viewer) -> Response {
    list_page(&state, &viewer, Vec::new(), String::new(), String::new()).await
}

#[derive(Debug, Deserialize)]
struct CreateForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    framework: String,
    #[serde(default)]
    name: String,
    /// Where the form was: `onboarding` sends errors back there.
    #[serde(default)]
    from: String,
}

/// Starts an assessment (onboarding's step 3 and the list's form) and opens its wizard.
async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<CreateForm>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let back = if form.from == "onboarding" {
        "/onboarding/frameworks"
    } else {
        "/assessments"
    };
    if !viewer.csrf_ok(&form.csrf_token) {
        return viewer.redirect(back, Some(EXPIRED_FORM), None);
    }
    let Ok(permit) = account.principal.require(Permission::ComplianceWrite) else {
        return viewer.redirect(back, Some("Your role cannot start assessments."), None);
    };
    let name = form.name.trim();
    let name = (!name.is_empty()).then_some(name);
    match state
        .assessments
        .create(
            permit.organization_id(),
            account.principal.user_id,
            form.framework.trim(),
            name,
        )
        .await
    {
        Ok(a) => {
            let prefilled = if a.answered > 0 {
                format!(
                    " {} answers are filled in from your other assessments; check them as you go.",
                    a.answered
                )
            } else {
                String::new()
            };
            viewer.redirect(
                &format!("/assessments/{}", a.id),
                Some(&format!("Assessment started.{prefilled}")),
                None,
            )
        }
        Err(AssessmentError::NotFound(_)) => {
            let errors = vec![FieldError::new(
                "framework",
                "Choose a framework from the list.",
            )];
            list_page(&state, &viewer, errors, form.framework, form.name).await
        }
        Err(AssessmentError::Invalid { message, .. }) => {
            let errors = vec![FieldError::new("name", sentence("Name", message))];
            list_page(&state, &viewer, errors, form.framework, form.name).await
        }
        Err(e) => failed(&viewer, e),
    }
}

// ---- The wizard ----

struct DomainTab {
    name: String,
    href: String,
    answered: usize,
    total: usize,
    current: bool,
}

struct ChoiceView {
    value: &'static str,
    label: &'static str,
}

struct QuestionRow {
    id: Uuid,
    number: usize,
    text: String,
    help: Option<String>,
    control_refs: String,
    /// The chosen answer's value, or empty.
    response: String,
    response_label: String,
    notes: String,
    /// Where a pre-filled answer came from.
    prefilled_href: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "assessments/wizard.html")]
struct WizardPage {
    chrome: Chrome,
    id: Uuid,
    name: String,
    framework_name: String,
    completed: bool,
    can_write: bool,
    /// Whether the member may ask the assistant for help with a question.
    can_ask: bool,
    answered: usize,
    total: usize,
    percent: usize,
    domains: Vec<DomainTab>,
    domain_name: String,
    domain_reference: String,
    domain_index: usize,
    is_last: bool,
    questions: Vec<QuestionRow>,
    choices: Vec<ChoiceView>,
    errors: Vec<FieldError>,
}

#[derive(Debug, Deserialize)]
struct WizardQuery {
    domain: Option<String>,
}

/// A question's domain as a key: questions outside any domain share the empty one.
fn domain_key(q: &QuestionView) -> &str {
    q.domain.as_deref().unwrap_or("")
}

/// The domains in the order their first question comes.
fn domain_order(questions: &[QuestionView]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for q in questions {
        if !out.iter().any(|d| d == domain_key(q)) {
            out.push(domain_key(q).to_owned());
        }
    }
    out
}

fn domain_href(id: Uuid, reference: &str) -> String {
    format!("/assessments/{id}?domain={}", urlencoding_encode(reference))
}

/// What a person submitted for one question, kept to show again beside an error.
struct Submitted {
    response: String,
    notes: String,
    error: Option<String>,
}

async fn wizard_page(
    state: &AppState,
    viewer: &Viewer,
    id: Uuid,
    domain: Option<String>,
    submitted: HashMap<Uuid, Submitted>,
    errors: Vec<FieldError>,
) -> Response {
    let (org, may_write) = match reader(viewer) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let (assessment, questions) = match (
        state.assessments.get(org, id).await,
        state.assessments.questions(org, id).await,
    ) {
        (Ok(a), Ok(q)) => (a, q),
        (Err(AssessmentError::NotFound(_)), _) | (_, Err(AssessmentError::NotFound(_))) => {
            return assessment_missing(viewer);
        }
        (Err(e), _) | (_, Err(e)) => return failed(viewer, e),
    };
    let names = match domain_names(state, viewer, org, &assessment.framework_slug).await {
        Ok(names) => names,
        Err(response) => return *response,
    };
    let order = domain_order(&questions);
    // Resume where work is left: the first domain with an unanswered question.
    let current = domain
        .filter(|d| order.contains(d))
        .or_else(|| {
            questions
                .iter()
                .find(|q| q.answer.is_none())
                .map(|q| domain_key(q).to_owned())
        })
        .or_else(|| order.first().cloned())
        .unwrap_or_default();
    let name_of = |r: &str| {
        if r.is_empty() {
            "General".to_owned()
        } else {
            names.get(r).cloned().unwrap_or_else(|| r.to_owned())
        }
    };
    let domains: Vec<DomainTab> = order
        .iter()
        .map(|r| {
            let in_domain = questions.iter().filter(|q| domain_key(q) == r);
            DomainTab {
                name: name_of(r),
                href: domain_href(id, r),
                answered: in_domain.clone().filter(|q| q.answer.is_some()).count(),
                total: in_domain.count(),
                current: *r == current,
            }
        })
        .collect();
    let domain_index = order.iter().position(|d| *d == current).unwrap_or(0);
    let rows: Vec<QuestionRow> = questions
        .iter()
        .enumerate()
        .filter(|(_, q)| domain_key(q) == current)
        .map(|(i, q)| {
            let sent = submitted.get(&q.id);
            let (response, notes) = match (sent, &q.answer) {
                (Some(s), _) => (s.response.clone(), s.notes.clone()),
                (None, Some(a)) => (
                    answer_value(a.response).to_owned(),
                    a.notes.clone().unwrap_or_default(),
                ),
                (None, None) => (String::new(), String::new()),
            };
            QuestionRow {
                id: q.id,
                number: i + 1,
                text: q.text.clone(),
                help: q.help.clone().filter(|h| !h.trim().is_empty()),
                control_refs: q.control_refs.join(", "),
                response_label: parse_answer(&response)
                    .map(answer_label)
                    .unwrap_or("Not answered")
                    .to_owned(),
                response,
                notes,
                prefilled_href: q
                    .answer
                    .as_ref()
                    .and_then(|a| a.prefilled_from)
                    .filter(|_| sent.is_none())
                    .map(|from| format!("/assessments/{from}/results")),
                error: sent.and_then(|s| s.error.clone()),
            }
        })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let completed = assessment.status == "completed";
    let page = WizardPage {
        chrome: viewer.chrome(),
        id,
        name: assessment.name,
        framework_name: assessment.framework_name,
        completed,
        can_write: !completed && may_write,
        can_ask: viewer
            .account
            .as_ref()
            .is_some_and(|a| a.principal.can(ruleiq_core::Permission::AiUse)),
        answered: assessment.answered,
        total: assessment.total,
        percent: percent(assessment.answered, assessment.total),
        domain_name: name_of(&current),
        domain_reference: current,
        domain_index: domain_index + 1,
        is_last: domain_index + 1 >= order.len(),
        domains,
        questions: rows,
        choices: CHOICES
            .iter()
            .map(|(_, value, label)| ChoiceView { value, label })
            .collect(),
        errors,
    };
    viewer.page(status, &page)
}

async fn wizard(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<WizardQuery>,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return assessment_missing(&viewer);
    };
    wizard_page(
        &state,
        &viewer,
        id,
        query.domain,
        HashMap::new(),
        Vec::new(),
    )
    .await
}

/// Saves the domain's answers, then goes where the pressed button says:
/// `continue` to the next domain, `save` back to this one, `finish` to the
/// confirmation before scoring.
async fn answer(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let Some(id) = parse_id(&id) else {
        return assessment_missing(&viewer);
    };
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let domain = field("domain").unwrap_or_default().to_owned();
    let here = domain_href(id, &domain);
    if !viewer.csrf_ok(field("csrf_token").unwrap_or_default()) {
        return viewer.redirect(&here, Some(EXPIRED_FORM), None);
    }
    let Ok(permit) = account.principal.require(Permission::ComplianceWrite) else {
        return viewer.redirect(&here, Some("Your role cannot answer assessments."), None);
    };
    let org = permit.organization_id();
    let completed = || {
        viewer.redirect(
            &format!("/assessments/{id}/results"),
            Some("This assessment is completed, so its answers can no longer change."),
            None,
        )
    };
    match state.assessments.get(org, id).await {
        Ok(a) if a.status == "completed" => return completed(),
        Ok(_) => {}
        Err(AssessmentError::NotFound(_)) => return assessment_missing(&viewer),
        Err(e) => return failed(&viewer, e),
    }
    let questions = match state.assessments.questions(org, id).await {
        Ok(q) => q,
        Err(AssessmentError::NotFound(_)) => return assessment_missing(&viewer),
        Err(e) => return failed(&viewer, e),
    };
    let mut saved = 0;
    let mut submitted: HashMap<Uuid, Submitted> = HashMap::new();
    let mut errors = Vec::new();
    for (i, q) in questions.iter().enumerate() {
        let response = field(&format!("q-{}", q.id));
        let notes = field(&format!("notes-{}", q.id));
        if response.is_none() && notes.is_none_or(|n| n.trim().is_empty()) {
            continue;
        }
        let response_text = response.unwrap_or_default().to_owned();
        let notes_text = notes.unwrap_or_default().to_owned();
        let mut problem = |input: String, message: String| {
            errors.push(FieldError::new(input, message.clone()));
            submitted.insert(
                q.id,
                Submitted {
                    response: response_text.clone(),
                    notes: notes_text.clone(),
                    error: Some(message),
                },
            );
        };
        let Some(choice) = response.and_then(parse_answer) else {
            problem(
                format!("q-{}-yes", q.id),
                format!(
                    "Question {}: choose an answer (or “Not sure”) to save your notes.",
                    i + 1
                ),
            );
            continue;
        };
        let notes = Some(notes_text.trim().to_owned()).filter(|n| !n.is_empty());
        let unchanged = q
            .answer
            .as_ref()
            .is_some_and(|a| a.response == choice && a.notes == notes);
        if unchanged {
            continue;
        }
        match state
            .assessments
            .answer(
                org,
                account.principal.user_id,
                id,
                q.id,
                choice,
                notes,
                Vec::new(),
            )
            .await
        {
            Ok(_) => saved += 1,
            // Completed by someone else while this page was open.
            Err(AssessmentError::Conflict(_)) => return completed(),
            Err(AssessmentError::Invalid { field, message }) => {
                let input = if field == "notes" {
                    format!("notes-{}", q.id)
                } else {
                    format!("q-{}-yes", q.id)
                };
                problem(
                    input,
                    format!("Question {}: {} {message}.", i + 1, field.replace('_', " ")),
                );
            }
            Err(AssessmentError::NotFound(_)) => return assessment_missing(&viewer),
            Err(e) => return failed(&viewer, e),
        }
    }
    if !errors.is_empty() {
        return wizard_page(&state, &viewer, id, Some(domain), submitted, errors).await;
    }
    let flash = match saved {
        0 => "No changes to save.".to_owned(),
        1 => "Saved 1 answer.".to_owned(),
        n => format!("Saved {n} answers."),
    };
    let order = domain_order(&questions);
    let next = order
        .iter()
        .position(|d| *d == domain)
        .and_then(|i| order.get(i + 1));
    let to = match (field("action").unwrap_or("save"), next) {
        ("continue", Some(next)) => domain_href(id, next),
        ("continue" | "finish", _) => format!("/assessments/{id}/finish"),
        _ => here,
    };
    viewer.redirect(&to, Some(&flash), None)
}

#[derive(Template)]
#[template(path = "assessments/finish.html")]
struct FinishPage {
    chrome: Chrome,
    id: Uuid,
    name: String,
    answered: usize,
    total: usize,
    unanswered: usize,
    can_write: bool,
}

async fn finish_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let (org, may_write) = match reader(&viewer) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let Some(id) = parse_id(&id) else {
        return assessment_missing(&viewer);
    };
    let a = match state.assessments.get(org, id).await {
        Ok(a) => a,
        Err(AssessmentError::NotFound(_)) => return assessment_missing(&viewer),
        Err(e) => return failed(&viewer, e),
    };
    if a.status == "completed" {
        return viewer.redirect(&format!("/assessments/{id}/results"), None, None);
    }
    let page = FinishPage {
        chrome: viewer.chrome(),
        id,
        name: a.name,
        answered: a.answered,
        total: a.total,
        unanswered: a.total.saturating_sub(a.answered),
        can_write: may_write,
    };
    viewer.page(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

async fn complete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let Some(id) = parse_id(&id) else {
        return assessment_missing(&viewer);
    };
    let back = format!("/assessments/{id}/finish");
    if !viewer.csrf_ok(&form.csrf_token) {
        return viewer.redirect(&back, Some(EXPIRED_FORM), None);
    }
    let Ok(permit) = account.principal.require(Permission::ComplianceWrite) else {
        return viewer.redirect(&back, Some("Your role cannot finish assessments."), None);
    };
    let results = format!("/assessments/{id}/results");
    match state
        .assessments
        .complete(permit.organization_id(), id)
        .await
    {
        Ok(r) => viewer.redirect(
            &results,
            Some(&format!(
                "Assessment finished: {} out of 100 ({}).",
                number(r.score),
                band_label(r.band)
            )),
            None,
        ),
        Err(AssessmentError::Conflict(m)) => viewer.redirect(&results, Some(&capitalise(m)), None),
        Err(AssessmentError::NotFound(_)) => assessment_missing(&viewer),
        Err(e) => failed(&viewer, e),
    }
}

// ---- Results ----

struct DomainRow {
    name: String,
    score: String,
    answered: usize,
    total: usize,
}

struct GapRow {
    reference: String,
    title: String,
    severity: &'static str,
    response: &'static str,
    recommendation: String,
}

struct PlanLink {
    href: String,
    title: String,
    created: String,
}

#[derive(Template)]
#[template(path = "assessments/results.html")]
struct ResultsPage {
    chrome: Chrome,
    id: Uuid,
    name: String,
    framework_name: String,
    completed: bool,
    completed_on: String,
    score: String,
    band: &'static str,
    domains: Vec<DomainRow>,
    gaps: Vec<GapRow>,
    plans: Vec<PlanLink>,
    can_write: bool,
    start_date: String,
    target_date: String,
    errors: Vec<FieldError>,
}

impl ResultsPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

async fn results_page(
    state: &AppState,
    viewer: &Viewer,
    id: Uuid,
    errors: Vec<FieldError>,
    dates: (String, String),
) -> Response {
    let (org, may_write) = match reader(viewer) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let (a, results) = match (
        state.assessments.get(org, id).await,
        state.assessments.results(org, id).await,
    ) {
        (Ok(a), Ok(r)) => (a, r),
        (Err(AssessmentError::NotFound(_)), _) | (_, Err(AssessmentError::NotFound(_))) => {
            return assessment_missing(viewer);
        }
        (Err(e), _) | (_, Err(e)) => return failed(viewer, e),
    };
    let names = match domain_names(state, viewer, org, &a.framework_slug).await {
        Ok(names) => names,
        Err(response) => return *response,
    };
    let plans = match state.plans.list(org).await {
        Ok(p) => p,
        Err(e) => return failed(viewer, e),
    };
    let mut gaps = results.gaps;
    // Most severe first; the scorer's order is kept within a severity.
    gaps.sort_by_key(|g| std::cmp::Reverse(g.severity));
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let completed = a.status == "completed";
    let page = ResultsPage {
        chrome: viewer.chrome(),
        id,
        name: a.name,
        framework_name: a.framework_name,
        completed,
        completed_on: a
            .completed_at
            .map(|t| day(t.date_naive()))
            .unwrap_or_default(),
        score: number(results.score),
        band: band_label(results.band),
        domains: results
            .by_domain
            .into_iter()
            .map(|d| DomainRow {
                name: if d.domain.is_empty() {
                    "General".to_owned()
                } else {
                    names.get(&d.domain).cloned().unwrap_or(d.domain)
                },
                score: number(d.score),
                answered: d.answered,
                total: d.total,
            })
            .collect(),
        gaps: gaps
            .into_iter()
            .map(|g| GapRow {
                reference: g.reference,
                title: g.title,
                severity: severity_label(g.severity),
                response: answer_label(g.response),
                recommendation: g.recommendation,
            })
            .collect(),
        plans: plans
            .into_iter()
            .filter(|p| p.assessment_id == id)
            .map(|p| PlanLink {
                href: format!("/plans/{}", p.id),
                title: p.title,
                created: day(p.created_at.date_naive()),
            })
            .collect(),
        can_write: completed && may_write,
        start_date: dates.0,
        target_date: dates.1,
        errors,
    };
    viewer.page(status, &page)
}

async fn results(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return assessment_missing(&viewer);
    };
    results_page(&state, &viewer, id, Vec::new(), Default::default()).await
}

#[derive(Debug, Deserialize)]
struct PlanForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    start_date: String,
    #[serde(default)]
    target_date: String,
}

async fn create_plan(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path(id): Path<String>,
    Form(form): Form<PlanForm>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let Some(id) = parse_id(&id) else {
        return assessment_missing(&viewer);
    };
    let back = format!("/assessments/{id}/results");
    if !viewer.csrf_ok(&form.csrf_token) {
        return viewer.redirect(&back, Some(EXPIRED_FORM), None);
    }
    let Ok(permit) = account.principal.require(Permission::ComplianceWrite) else {
        return viewer.redirect(&back, Some("Your role cannot create plans."), None);
    };
    let mut errors = Vec::new();
    let start = parse_date(&form.start_date).unwrap_or_else(|()| {
        errors.push(FieldError::new(
            "start_date",
            "Start date must be a date, such as 2025-04-01.",
        ));
        None
    });
    let target = parse_date(&form.target_date).unwrap_or_else(|()| {
        errors.push(FieldError::new(
            "target_date",
            "Target date must be a date, such as 2025-09-30.",
        ));
        None
    });
    let dates = (form.start_date.clone(), form.target_date.clone());
    if !errors.is_empty() {
        return results_page(&state, &viewer, id, errors, dates).await;
    }
    match state
        .plans
        .create(
            permit.organization_id(),
            account.principal.user_id,
            id,
            start,
            target,
            &client,
        )
        .await
    {
        Ok(plan) => {
            let note = plan
                .schedule_note
                .map(|n| format!(" {n}"))
                .unwrap_or_default();
            viewer.redirect(
                &format!("/plans/{}", plan.id),
                Some(&format!(
                    "Plan created with {} tasks.{note}",
                    plan.tasks_total
                )),
                None,
            )
        }
        Err(PlanError::Invalid { field, message }) => {
            let label = if field == "start_date" {
                "Start date"
            } else {
                "Target date"
            };
            let errors = vec![FieldError::new(field, sentence(label, message))];
            results_page(&state, &viewer, id, errors, dates).await
        }
        Err(PlanError::Conflict(m)) => viewer.redirect(
            &format!("/assessments/{id}/finish"),
            Some(&capitalise(m)),
            None,
        ),
        Err(PlanError::NotFound(_)) => assessment_missing(&viewer),
        Err(e) => failed(&viewer, e),
    }
}

/// The organisation of a member who may read assessments and whether they may also
/// answer them, or the page to send anyone else to.
fn reader(viewer: &Viewer) -> Result<(OrganizationId, bool), Box<Response>> {
    let Some(account) = &viewer.account else {
        return Err(Box::new(sign_in_first(viewer)));
    };
    let Ok(permit) = account.principal.require(Permission::ComplianceRead) else {
        return Err(Box::new(viewer.redirect(
            "/dashboard",
            Some("Your role cannot see assessments."),
            None,
        )));
    };
    Ok((
        permit.organization_id(),
        account.principal.can(Permission::ComplianceWrite),
    ))
}

/// A framework's domain names by ref, for headings.
async fn domain_names(
    state: &AppState,
    viewer: &Viewer,
    org: OrganizationId,
    slug: &str,
) -> Result<HashMap<String, String>, Box<Response>> {
    match state.catalog.get(Some(org.as_uuid()), slug).await {
        Ok(Some(f)) => Ok(f
            .domains
            .into_iter()
            .map(|d| (d.reference, d.name))
            .collect()),
        Ok(None) => Ok(HashMap::new()),
        Err(e) => Err(Box::new(failed(viewer, e))),
    }
}
