//! `/chat/conversations`: the assistant, whole answers or streamed over SSE; and
//! `/ai/assessments/{id}/help`, guidance for one assessment question.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::StreamExt;
use ruleiq_core::Permission;
use ruleiq_services::chat::{
    ChatError, ChatEvent, ConversationDetail, ConversationPage, ConversationView, HelpView,
    MessageView,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    api::frameworks::invalid,
    extract::AuthUser,
    problem::{ApiError, ApiJson, ApiQuery, Problem},
    state::AppState,
};

/// The assistant routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get, delete))
        .routes(routes!(ask))
        .routes(routes!(help))
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::NotFound(m) => ApiError::NotFound(m.into()),
            ChatError::Invalid { field, message } => invalid(field, &message),
            ChatError::Db(db) => ApiError::internal(db),
        }
    }
}

fn id_of(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound("no such conversation".into()))
}

/// A new conversation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    pub title: Option<String>,
}

/// Starts a conversation with the assistant.
#[utoipa::path(
    post,
    path = "/chat/conversations",
    tag = "assistant",
    security(("bearer" = [])),
    request_body = NewConversation,
    responses((status = 201, body = ConversationView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem))
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::AiUse)?;
    let body: Option<NewConversation> =
        crate::api::evidence::optional_body(&state, request).await?;
    let title = body.and_then(|b| b.title);
    let c = state.chat.create(&permit, title).await?;
    Ok((StatusCode::CREATED, ApiJson(c)).into_response())
}

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Default 50, at most 200.
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// Your conversations, most recently active first.
#[utoipa::path(
    get,
    path = "/chat/conversations",
    tag = "assistant",
    security(("bearer" = [])),
    params(ListParams),
    responses((status = 200, body = ConversationPage), (status = 401, body = Problem), (status = 422, body = Problem))
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<ApiJson<ConversationPage>, ApiError> {
    let permit = principal.require(Permission::AiUse)?;
    Ok(ApiJson(
        state
            .chat
            .list(&permit, q.cursor.as_deref(), q.limit.unwrap_or(50))
            .await?,
    ))
}

/// One of your conversations with its messages.
#[utoipa::path(
    get,
    path = "/chat/conversations/{id}",
    tag = "assistant",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The conversation's id")),
    responses((status = 200, body = ConversationDetail), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn get(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<ConversationDetail>, ApiError> {
    let permit = principal.require(Permission::AiUse)?;
    Ok(ApiJson(state.chat.get(&permit, id_of(&id)?).await?))
}

/// Deletes one of your conversations and its messages.
#[utoipa::path(
    delete,
    path = "/chat/conversations/{id}",
    tag = "assistant",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The conversation's id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn delete(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let permit = principal.require(Permission::AiUse)?;
    state.chat.delete(&permit, id_of(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A question.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    pub content: String,
}

/// Asks the assistant. With `Accept: text/event-stream` the answer streams as `token`
/// events (`{"text": …}`) and ends with a `done` event carrying the stored message;
/// otherwise the stored message is the answer (201).
#[utoipa::path(
    post,
    path = "/chat/conversations/{id}/messages",
    tag = "assistant",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The conversation's id")),
    request_body = Ask,
    responses((status = 201, body = MessageView), (status = 200, description = "The answer as server-sent events", content_type = "text/event-stream"), (status = 401, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 422, description = "Empty or overlong", body = Problem), (status = 429, body = Problem))
)]
async fn ask(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Ask>,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::AiUse)?;
    let id = id_of(&id)?;
    if wants_stream(&headers) {
        let events = state
            .chat
            .ask_streaming(&permit, id, &body.content)
            .await?
            .map(|e| {
                Ok::<_, std::convert::Infallible>(match e {
                    ChatEvent::Token(text) => Event::default()
                        .event("token")
                        .data(serde_json::json!({ "text": text }).to_string()),
                    ChatEvent::Done(message) => Event::default()
                        .event("done")
                        .data(serde_json::to_string(&message).unwrap_or_default()),
                })
            });
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let message = state.chat.ask(&permit, id, &body.content).await?;
    Ok((StatusCode::CREATED, ApiJson(message)).into_response())
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

/// Which question.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HelpRequest {
    pub question_id: Uuid,
}

/// Guidance for one question of an assessment, with citations.
#[utoipa::path(
    post,
    path = "/ai/assessments/{id}/help",
    tag = "assistant",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The assessment's id")),
    request_body = HelpRequest,
    responses((status = 200, body = HelpView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem))
)]
async fn help(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<HelpRequest>,
) -> Result<ApiJson<HelpView>, ApiError> {
    let permit = principal.require(Permission::AiUse)?;
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::NotFound("no such assessment".into()))?;
    Ok(ApiJson(
        state.chat.help(&permit, id, body.question_id).await?,
    ))
}
