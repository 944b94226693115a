//! The assistant for people: a member's conversations, one conversation with its
//! messages (Markdown, with citations linking to the controls, policies and evidence
//! they name), and the question form.
//!
//! Without JavaScript the form is posted, the answer is stored, and the browser is
//! redirected back to the conversation. With `static/assistant.js` the same form
//! is posted to `/assistant/{id}/stream`, which answers with server-sent events:
//! `token` events (`{"text"}`) while the answer arrives, then `done` carrying the
//! stored message rendered as HTML (`{"id", "html"}`). The JSON API needs a bearer
//! token, which a page does not have; this route takes the session cookie and the
//! form's CSRF token instead.
//!
//! Questions here count against the same per-member AI rate limit as the API's.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::StreamExt;
use ruleiq_core::Permission;
use ruleiq_services::{
    chat::{ChatError, ChatEvent, MAX_MESSAGE, MessageStatus, MessageView},
    identity::Permit,
    search::SearchKind,
};
use std::time::Duration;
use uuid::Uuid;

use super::{
    Chrome, EXPIRED_FORM, Viewer,
    assessments::{FieldError, capitalise, failed, not_found, sign_in_first},
    policies::{field, forbidden, role_name, when},
    urlencoding_encode,
};
use crate::{markdown, state::AppState};

const ASSISTANT_JS: &str = include_str!("../../static/assistant.js");

/// Conversations per page of the list.
const PAGE_SIZE: u64 = 25;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/assistant", get(list).post(create))
        .route("/assistant/{id}", get(show))
        .route("/assistant/{id}/messages", post(ask))
        .route("/assistant/{id}/stream", post(stream))
        .route("/assistant/{id}/delete", get(confirm_delete).post(delete))
        .route("/static/assistant.js", get(script))
        .route("/assessments/{id}/questions/{question}/help", get(help))
}

#[derive(Template)]
#[template(path = "assistant/help.html")]
struct HelpPage {
    chrome: Chrome,
    assessment_id: Uuid,
    question: MessageRow,
    answer: MessageRow,
}

/// Help with one assessment question, from the wizard: what it asks, what a good
/// answer looks like, and what would show it, citing the question's controls. A
/// plain link (opened beside the wizard), so it needs no script; repeated, it is
/// answered from the cache.
async fn help(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, question)): Path<(String, String)>,
) -> Response {
    let permit = match user_of(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let missing = || {
        not_found(
            &viewer,
            "There is no such question in your organisation's assessments.",
            "/assessments",
            "your assessments",
        )
    };
    let (Ok(id), Ok(question)) = (id.parse::<Uuid>(), question.parse::<Uuid>()) else {
        return missing();
    };
    if let Err(retry) = within_limit(&state, permit.principal().user_id.as_uuid()).await {
        let (_, message) = too_many(retry);
        return forbidden(
            &viewer,
            &message,
            &format!("/assessments/{id}"),
            "the assessment",
        );
    }
    let h = match state.chat.help(&permit, id, question).await {
        Ok(h) => h,
        Err(ChatError::NotFound(_)) => return missing(),
        Err(e) => return failed(&viewer, e),
    };
    let now = chrono::Utc::now();
    let as_message = |role: &str, content: String, citations, notices| MessageView {
        id: Uuid::now_v7(),
        role: role.to_owned(),
        content,
        citations,
        notices,
        status: MessageStatus::Complete,
        provider: (role == "assistant").then(|| h.provider.clone()),
        model: (role == "assistant").then(|| h.model.clone()),
        usage: None,
        created_at: now,
    };
    let page = HelpPage {
        chrome: viewer.chrome(),
        assessment_id: id,
        question: row(&as_message(
            "user",
            h.question.clone(),
            Vec::new(),
            Vec::new(),
        )),
        answer: row(&as_message(
            "assistant",
            h.content.clone(),
            h.citations.clone(),
            h.notices.clone(),
        )),
    };
    viewer.page(StatusCode::OK, &page)
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        ASSISTANT_JS,
    )
        .into_response()
}

fn user_of<'a>(viewer: &'a Viewer) -> Result<Permit<'a>, Box<Response>> {
    let Some(account) = &viewer.account else {
        return Err(Box::new(sign_in_first(viewer)));
    };
    account.principal.require(Permission::AiUse).map_err(|_| {
        Box::new(forbidden(
            viewer,
            &format!(
                "Your role ({}) cannot use the assistant.",
                role_name(viewer)
            ),
            "/dashboard",
            "the dashboard",
        ))
    })
}

fn conversation_missing(viewer: &Viewer) -> Response {
    not_found(
        viewer,
        "There is no such conversation of yours.",
        "/assistant",
        "your conversations",
    )
}

/// Whether the member may ask another question now (the API's AI rate limit).
async fn within_limit(state: &AppState, user: Uuid) -> Result<(), u64> {
    let settings = &state.settings.rate_limits;
    if !settings.enabled {
        return Ok(());
    }
    let decision = state
        .limiter
        .hit(
            &format!("ai:user:{user}"),
            settings.ai_per_minute,
            Duration::from_secs(60),
        )
        .await;
    if decision.allowed {
        Ok(())
    } else {
        Err(decision.reset_after.as_secs().max(1))
    }
}

// ---- Messages as shown ----

struct CitationLink {
    number: usize,
    href: String,
    kind: &'static str,
    label: String,
}

/// A message as a page shows it.
pub(super) struct MessageRow {
    id: Uuid,
    is_user: bool,
    /// Sanitised HTML of the text.
    html: String,
    citations: Vec<CitationLink>,
    notices: Vec<String>,
    cut_short: bool,
    by: String,
    at: String,
}

fn citation_link(number: usize, c: &ruleiq_services::chat::Citation) -> CitationLink {
    let (href, kind, label) = match c.kind {
        SearchKind::Control => (
            format!("/controls/{}", c.id),
            "Control",
            match &c.framework_slug {
                Some(slug) => format!("{} {} ({slug})", c.reference, c.title),
                None => format!("{} {}", c.reference, c.title),
            },
        ),
        SearchKind::Policy => (format!("/policies/{}", c.id), "Policy", c.title.clone()),
        SearchKind::Evidence => (format!("/evidence/{}", c.id), "Evidence", c.title.clone()),
    };
    CitationLink {
        number,
        href,
        kind,
        label,
    }
}

fn row(m: &MessageView) -> MessageRow {
    let is_user = m.role == "user";
    MessageRow {
        id: m.id,
        is_user,
        html: markdown::to_html(&m.content),
        citations: m
            .citations
            .iter()
            .enumerate()
            .map(|(i, c)| citation_link(i + 1, c))
            .collect(),
        notices: m.notices.clone(),
        cut_short: m.status == MessageStatus::CutShort,
        by: if is_user {
            "You".to_owned()
        } else {
            match (&m.provider, &m.model) {
                (Some(p), Some(model)) => format!("Assistant ({p} {model})"),
                (Some(p), None) => format!("Assistant ({p})"),
                _ => "Assistant".to_owned(),
            }
        },
        at: when(m.created_at),
    }
}

#[derive(Template)]
#[template(path = "assistant/_message.html")]
struct MessagePartial<'a> {
    m: &'a MessageRow,
}

// ---- The list ----

struct ConversationRow {
    href: String,
    title: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "assistant/list.html")]
struct ListPage {
    chrome: Chrome,
    errors: Vec<FieldError>,
    rows: Vec<ConversationRow>,
    title: String,
    next_href: Option<String>,
    first_href: Option<String>,
}

impl ListPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::assessments::error_for(&self.errors, field)
    }
}

async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    cursor: &str,
    failure: Option<(StatusCode, FieldError)>,
    title: &str,
) -> Response {
    let permit = match user_of(viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let mut errors: Vec<FieldError> = Vec::new();
    let mut status = failure.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    errors.extend(failure.map(|(_, e)| e));
    let mut rows = Vec::new();
    let mut next = None;
    let c = (!cursor.is_empty()).then_some(cursor);
    match state.chat.list(&permit, c, PAGE_SIZE).await {
        Ok(page) => {
            rows = page
                .items
                .into_iter()
                .map(|c| ConversationRow {
                    href: format!("/assistant/{}", c.id),
                    title: c.title,
                    updated: when(c.updated_at),
                })
                .collect();
            next = page.next_cursor;
        }
        Err(ChatError::Invalid { .. }) => {
            status = StatusCode::UNPROCESSABLE_ENTITY;
            errors.push(FieldError::new(
                "title",
                "That page link is not one this server gave out; start again from the first page.",
            ));
        }
        Err(e) => return failed(viewer, e),
    }
    let page = ListPage {
        chrome: viewer.chrome(),
        errors,
        rows,
        title: title.to_owned(),
        next_href: next.map(|c| format!("/assistant?cursor={}", urlencoding_encode(&c))),
        first_href: (!cursor.is_empty()).then(|| "/assistant".to_owned()),
    };
    viewer.page(status, &page)
}

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    list_page(&state, &viewer, field(&raw, "cursor").trim(), None, "").await
}

async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let permit = match user_of(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let title = field(&raw, "title");
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        let f = (
            StatusCode::FORBIDDEN,
            FieldError::new("title", EXPIRED_FORM),
        );
        return list_page(&state, &viewer, "", Some(f), title).await;
    }
    let title_opt = Some(title.trim().to_owned()).filter(|t| !t.is_empty());
    match state.chat.create(&permit, title_opt).await {
        Ok(c) => viewer.redirect(&format!("/assistant/{}", c.id), None, None),
        Err(ChatError::Invalid { message, .. }) => {
            let f = (
                StatusCode::UNPROCESSABLE_ENTITY,
                FieldError::new("title", format!("Title: {}", capitalise(&message))),
            );
            list_page(&state, &viewer, "", Some(f), title).await
        }
        Err(e) => failed(&viewer, e),
    }
}

// ---- One conversation ----

#[derive(Template)]
#[template(path = "assistant/show.html")]
struct ShowPage {
    chrome: Chrome,
    errors: Vec<FieldError>,
    id: Uuid,
    title: String,
    messages: Vec<MessageRow>,
    question: String,
    max_message: usize,
}

impl ShowPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::assessments::error_for(&self.errors, field)
    }
}

async fn conversation_page(
    state: &AppState,
    viewer: &Viewer,
    id: Uuid,
    failure: Option<(StatusCode, String)>,
    question: &str,
) -> Response {
    let permit = match user_of(viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let detail = match state.chat.get(&permit, id).await {
        Ok(d) => d,
        Err(ChatError::NotFound(_)) => return conversation_missing(viewer),
        Err(e) => return failed(viewer, e),
    };
    let status = failure.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let page = ShowPage {
        chrome: viewer.chrome(),
        errors: failure
            .map(|(_, m)| FieldError::new("content", m))
            .into_iter()
            .collect(),
        id,
        title: detail.conversation.title,
        messages: detail.messages.iter().map(row).collect(),
        question: question.to_owned(),
        max_message: MAX_MESSAGE,
    };
    viewer.page(status, &page)
}

async fn show(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return conversation_missing(&viewer);
    };
    conversation_page(&state, &viewer, id, None, "").await
}

/// Why a question was refused, as the form shows it.
fn question_error(e: ChatError) -> Result<(StatusCode, String), ChatError> {
    match e {
        ChatError::Invalid { message, .. } => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Question: {}", capitalise(&message)),
        )),
        other => Err(other),
    }
}

fn too_many(retry: u64) -> (StatusCode, String) {
    (
        StatusCode::TOO_MANY_REQUESTS,
        format!("You have asked many questions in the last minute; try again in {retry} s."),
    )
}

async fn ask(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let permit = match user_of(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let Ok(id) = id.parse::<Uuid>() else {
        return conversation_missing(&viewer);
    };
    let question = field(&raw, "content");
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        let f = (StatusCode::FORBIDDEN, EXPIRED_FORM.to_owned());
        return conversation_page(&state, &viewer, id, Some(f), question).await;
    }
    if question.trim().is_empty() {
        let f = (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Write a question to ask.".to_owned(),
        );
        return conversation_page(&state, &viewer, id, Some(f), question).await;
    }
    if let Err(retry) = within_limit(&state, permit.principal().user_id.as_uuid()).await {
        return conversation_page(&state, &viewer, id, Some(too_many(retry)), question).await;
    }
    match state.chat.ask(&permit, id, question).await {
        Ok(m) => viewer.redirect(&format!("/assistant/{id}#message-{}", m.id), None, None),
        Err(ChatError::NotFound(_)) => conversation_missing(&viewer),
        Err(e) => match question_error(e) {
            Ok(f) => conversation_page(&state, &viewer, id, Some(f), question).await,
            Err(e) => failed(&viewer, e),
        },
    }
}

/// The streamed answer for `assistant.js`. Refusals are plain `4xx` text, which the
/// script answers by posting the form the ordinary way to show the page's message.
async fn stream(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let refuse = |status: StatusCode, message: &str| {
        let mut r = (status, message.to_owned()).into_response();
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    };
    let Some(account) = &viewer.account else {
        return refuse(StatusCode::UNAUTHORIZED, "Please sign in first.");
    };
    let Ok(permit) = account.principal.require(Permission::AiUse) else {
        return refuse(StatusCode::FORBIDDEN, "Your role cannot use the assistant.");
    };
    let Ok(id) = id.parse::<Uuid>() else {
        return refuse(
            StatusCode::NOT_FOUND,
            "There is no such conversation of yours.",
        );
    };
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        return refuse(StatusCode::FORBIDDEN, EXPIRED_FORM);
    }
    let question = field(&raw, "content");
    if question.trim().is_empty() {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, "Write a question to ask.");
    }
    if let Err(retry) = within_limit(&state, permit.principal().user_id.as_uuid()).await {
        let (status, message) = too_many(retry);
        return refuse(status, &message);
    }
    let events = match state.chat.ask_streaming(&permit, id, question).await {
        Ok(events) => events,
        Err(ChatError::NotFound(_)) => {
            return refuse(
                StatusCode::NOT_FOUND,
                "There is no such conversation of yours.",
            );
        }
        Err(e) => {
            return match question_error(e) {
                Ok((status, message)) => refuse(status, &message),
                Err(e) => {
                    tracing::error!(error = %e, "assistant stream failed");
                    refuse(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Something went wrong on our side; please try again.",
                    )
                }
            };
        }
    };
    let events = events.map(|e| {
        Ok::<_, std::convert::Infallible>(match e {
            ChatEvent::Token(text) => Event::default()
                .event("token")
                .data(serde_json::json!({ "text": text }).to_string()),
            ChatEvent::Done(message) => {
                let shown = row(&message);
                let html = MessagePartial { m: &shown }.render().unwrap_or_else(|e| {
                    tracing::error!(error = %e, "template failed");
                    String::new()
                });
                Event::default()
                    .event("done")
                    .data(serde_json::json!({ "id": message.id, "html": html }).to_string())
            }
        })
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// ---- Deleting ----

#[derive(Template)]
#[template(path = "assistant/delete.html")]
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
    error: Option<(StatusCode, String)>,
) -> Response {
    let permit = match user_of(viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let detail = match state.chat.get(&permit, id).await {
        Ok(d) => d,
        Err(ChatError::NotFound(_)) => return conversation_missing(viewer),
        Err(e) => return failed(viewer, e),
    };
    let status = error.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let page = DeletePage {
        chrome: viewer.chrome(),
        id,
        title: detail.conversation.title,
        error: error.map(|(_, m)| m),
    };
    viewer.page(status, &page)
}

async fn confirm_delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return conversation_missing(&viewer);
    };
    delete_page(&state, &viewer, id, None).await
}

async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let permit = match user_of(&viewer) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let Ok(id) = id.parse::<Uuid>() else {
        return conversation_missing(&viewer);
    };
    if !viewer.csrf_ok(field(&raw, "csrf_token")) {
        let error = Some((StatusCode::FORBIDDEN, EXPIRED_FORM.to_owned()));
        return delete_page(&state, &viewer, id, error).await;
    }
    match state.chat.delete(&permit, id).await {
        Ok(()) => viewer.redirect("/assistant", Some("Deleted the conversation."), None),
        Err(ChatError::NotFound(_)) => conversation_missing(&viewer),
        Err(e) => failed(&viewer, e),
    }
}
