//! The assistant: conversations with history, answers grounded in what the
//! organisation can see (the library's guidance, its own policies and the text of its
//! evidence), with citations that point at real things, streamed or whole; and help
//! with one assessment question.
//!
//! Invariants:
//! - retrieval never crosses organisations: passages come from the library and the
//!   asking organisation's own documents only ([`SearchIndex::retrieve`]);
//! - a citation names a source that was given to the model; anything else the model
//!   cites is removed ([`ruleiq_ai::grounding`]);
//! - the question is stored before it is answered, and an answer that breaks off is
//!   stored as `cut_short` with what arrived, never silently as a whole answer.

pub mod sources;

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use ruleiq_ai::{ChatRequest, Finish, Message, Role, StreamEvent, Task, Usage, grounding};
use ruleiq_core::{Clock, OrganizationId};
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::{ai_usage, chat_conversation, chat_message},
    repositories::{
        ai as ai_repo, assessments as assessments_repo, chat as repo, frameworks as frameworks_repo,
    },
};
use serde::Serialize;
use std::{sync::Arc, time::Instant};
use uuid::Uuid;

use crate::{
    ai::{AiService, Caller, Feature, Outcome, budget::as_number, usd},
    identity::Permit,
    search::SearchIndex,
};
pub use sources::Citation;

/// Longest question, in characters: a page of text. Longer is almost certainly a
/// pasted document, which belongs in the evidence library.
pub const MAX_MESSAGE: usize = 8_000;
/// Longest title, in characters.
const MAX_TITLE: usize = 200;
/// Messages of history sent with a question.
const HISTORY: u64 = 10;
/// Passages retrieved for a question.
const PASSAGES: usize = 6;
/// What a new conversation is called until its first question names it.
pub const UNTITLED: &str = "New conversation";

const ANSWER_INSTRUCTIONS: &str = "You are ruleIQ's compliance assistant for a UK small or \
medium business. Answer the member's question in plain English, briefly, using only the \
numbered sources provided. After every statement drawn from a source, cite it as [n]. If the \
sources do not answer the question, say so plainly and suggest where to look; never invent \
requirements, articles, dates or figures.";

const HELP_INSTRUCTIONS: &str = "You are helping a member of a UK small or medium business \
answer one question of a compliance self-assessment. Explain in plain English what the \
question asks, what a good answer looks like, and what evidence would show it, using only \
the numbered sources. Cite each source you use as [n]. Do not answer the question for them.";

/// Why a chat operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn invalid(field: &'static str, message: impl Into<String>) -> ChatError {
    ChatError::Invalid {
        field,
        message: message.into(),
    }
}

/// A conversation in a list.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConversationView {
    pub id: Uuid,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<chat_conversation::Model> for ConversationView {
    fn from(c: chat_conversation::Model) -> Self {
        Self {
            id: c.id,
            title: c.title,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A conversation with its messages, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub conversation: ConversationView,
    pub messages: Vec<MessageView>,
}

/// Tokens and cost of one answer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageView {
    pub input_tokens: i64,
    pub output_tokens: i64,
    #[serde(serialize_with = "as_number")]
    #[schema(value_type = f64)]
    pub cost_usd: rust_decimal::Decimal,
}

/// Whether an answer arrived whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Complete,
    /// The provider stopped part-way; `content` is what arrived.
    CutShort,
}

/// A question or an answer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: Uuid,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    pub citations: Vec<Citation>,
    /// What the member should know about how this answer was made (a provider that
    /// failed, a budget reached).
    pub notices: Vec<String>,
    pub status: MessageStatus,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub usage: Option<UsageView>,
    pub created_at: DateTime<Utc>,
}

impl From<chat_message::Model> for MessageView {
    fn from(m: chat_message::Model) -> Self {
        let assistant = m.role == "assistant";
        Self {
            id: m.id,
            role: m.role,
            content: m.content,
            citations: serde_json::from_value(m.citations).unwrap_or_default(),
            notices: serde_json::from_value(m.notices).unwrap_or_default(),
            status: if m.status == "cut_short" {
                MessageStatus::CutShort
            } else {
                MessageStatus::Complete
            },
            provider: m.provider,
            model: m.model,
            usage: assistant.then(|| UsageView {
                input_tokens: m.input_tokens,
                output_tokens: m.output_tokens,
                cost_usd: usd(m.cost_nanos),
            }),
            created_at: m.created_at,
        }
    }
}

/// What streaming sends: tokens as they come, then the stored message.
#[derive(Debug, Clone)]
pub enum ChatEvent {
    Token(String),
    Done(MessageView),
}

/// Guidance for one assessment question.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HelpView {
    pub question_id: Uuid,
    /// The question's text.
    pub question: String,
    pub content: String,
    pub citations: Vec<Citation>,
    pub notices: Vec<String>,
    pub provider: String,
    pub model: String,
    pub usage: UsageView,
}

/// A page of conversations.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConversationPage {
    pub items: Vec<ConversationView>,
    pub next_cursor: Option<String>,
}

/// The assistant service.
#[derive(Clone)]
pub struct Chat {
    db: DatabaseConnection,
    ai: AiService,
    search: Arc<dyn SearchIndex>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat").finish_non_exhaustive()
    }
}

/// A question ready to send.
struct Prepared {
    caller: Caller,
    conversation: chat_conversation::Model,
    /// The question, stored with its answer in one transaction.
    question: chat_message::Model,
    /// The conversation's new title, when this is its first question.
    title: Option<String>,
    request: ChatRequest,
    sources: Vec<Citation>,
}

impl Chat {
    #[must_use]
    pub fn new(
        db: DatabaseConnection,
        ai: AiService,
        search: Arc<dyn SearchIndex>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            db,
            ai,
            search,
            clock,
        }
    }

    /// Starts a conversation.
    ///
    /// # Errors
    /// [`ChatError::Invalid`] for an overlong title.
    pub async fn create(
        &self,
        permit: &Permit<'_>,
        title: Option<String>,
    ) -> Result<ConversationView, ChatError> {
        let title = match title.map(|t| t.trim().to_owned()) {
            Some(t) if t.chars().count() > MAX_TITLE => {
                return Err(invalid("title", format!("at most {MAX_TITLE} characters")));
            }
            Some(t) if !t.is_empty() => t,
            _ => UNTITLED.to_owned(),
        };
        let now = self.clock.now();
        let row = chat_conversation::Model {
            id: Uuid::now_v7(),
            organization_id: permit.organization_id().as_uuid(),
            user_id: permit.principal().user_id.as_uuid(),
            title,
            created_at: now,
            updated_at: now,
        };
        repo::insert_conversation(&self.db, row.clone()).await?;
        Ok(row.into())
    }

    /// The member's conversations, most recently active first.
    ///
    /// # Errors
    /// [`ChatError::Invalid`] for a malformed cursor.
    pub async fn list(
        &self,
        permit: &Permit<'_>,
        cursor: Option<&str>,
        limit: u64,
    ) -> Result<ConversationPage, ChatError> {
        let before = cursor
            .map(|c| {
                crate::paging::decode(c)
                    .ok_or_else(|| invalid("cursor", "is not a cursor this server gave out"))
            })
            .transpose()?;
        let limit = limit.clamp(1, 200);
        let mut rows = repo::list_conversations(
            &self.db,
            permit.organization_id().as_uuid(),
            permit.principal().user_id.as_uuid(),
            before,
            limit + 1,
        )
        .await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            rows.last()
                .map(|r| crate::paging::encode(r.updated_at, r.id))
        } else {
            None
        };
        Ok(ConversationPage {
            items: rows.into_iter().map(ConversationView::from).collect(),
            next_cursor,
        })
    }

    async fn find(
        &self,
        permit: &Permit<'_>,
        id: Uuid,
    ) -> Result<chat_conversation::Model, ChatError> {
        repo::find_conversation(
            &self.db,
            permit.organization_id().as_uuid(),
            permit.principal().user_id.as_uuid(),
            id,
        )
        .await?
        .ok_or(ChatError::NotFound("no such conversation"))
    }

    /// One conversation with its last 200 messages.
    ///
    /// # Errors
    /// [`ChatError::NotFound`], also for another member's or organisation's.
    pub async fn get(
        &self,
        permit: &Permit<'_>,
        id: Uuid,
    ) -> Result<ConversationDetail, ChatError> {
        let c = self.find(permit, id).await?;
        let messages = repo::messages(&self.db, c.organization_id, c.id, 200)
            .await?
            .into_iter()
            .map(MessageView::from)
            .collect();
        Ok(ConversationDetail {
            conversation: c.into(),
            messages,
        })
    }

    /// Deletes a conversation and its messages.
    ///
    /// # Errors
    /// [`ChatError::NotFound`].
    pub async fn delete(&self, permit: &Permit<'_>, id: Uuid) -> Result<(), ChatError> {
        let deleted = repo::delete_conversation(
            &self.db,
            permit.organization_id().as_uuid(),
            permit.principal().user_id.as_uuid(),
            id,
        )
        .await?;
        if deleted {
            Ok(())
        } else {
            Err(ChatError::NotFound("no such conversation"))
        }
    }

    /// Checks the question, stores it, and gathers its sources and history.
    async fn prepare(
        &self,
        permit: &Permit<'_>,
        conversation_id: Uuid,
        content: &str,
    ) -> Result<Prepared, ChatError> {
        let content = content.trim();
        if content.is_empty() {
            return Err(invalid("content", "type a question"));
        }
        if content.chars().count() > MAX_MESSAGE {
            return Err(invalid(
                "content",
                format!(
                    "keep a question under {MAX_MESSAGE} characters; upload long documents as evidence instead"
                ),
            ));
        }
        let conversation = self.find(permit, conversation_id).await?;
        let org = conversation.organization_id;
        let history = repo::messages(&self.db, org, conversation.id, HISTORY).await?;
        let passages = self.search.retrieve(org, content, PASSAGES).await?;
        let (sources, citations) = sources::from_passages(passages);
        let question = user_message(org, conversation.id, content, self.clock.now());
        let mut messages: Vec<Message> = history
            .into_iter()
            .filter(|m| m.status == "complete" || m.role == "user")
            .map(|m| Message {
                role: if m.role == "assistant" {
                    Role::Assistant
                } else {
                    Role::User
                },
                content: m.content,
            })
            .collect();
        messages.push(Message {
            role: Role::User,
            content: content.to_owned(),
        });
        let title = (conversation.title == UNTITLED).then(|| title_from(content));
        Ok(Prepared {
            caller: Caller {
                organization_id: org,
                user_id: Some(permit.principal().user_id.as_uuid()),
                feature: Feature::Assistant,
            },
            conversation,
            question,
            title,
            request: ChatRequest {
                task: Task::Answer,
                instructions: ANSWER_INSTRUCTIONS.to_owned(),
                messages,
                sources,
                draft: None,
                max_output_tokens: 800,
            },
            sources: citations,
        })
    }

    /// Asks a question and waits for the whole answer.
    ///
    /// # Errors
    /// [`ChatError::Invalid`] for an empty or overlong question;
    /// [`ChatError::NotFound`] for a conversation that is not the member's.
    pub async fn ask(
        &self,
        permit: &Permit<'_>,
        conversation_id: Uuid,
        content: &str,
    ) -> Result<MessageView, ChatError> {
        let p = self.prepare(permit, conversation_id, content).await?;
        let (outcome, ledger) = self.ai.run(p.caller, &p.request).await?;
        let status = if matches!(outcome.finish, Finish::CutShort) {
            MessageStatus::CutShort
        } else {
            MessageStatus::Complete
        };
        self.store_answer(p, outcome, status, ledger).await
    }

    /// Asks a question and streams the answer: tokens as they arrive, then the stored
    /// message. The answer is finished and stored even if the listener goes away.
    ///
    /// # Errors
    /// As [`Self::ask`], before anything is streamed.
    pub async fn ask_streaming(
        &self,
        permit: &Permit<'_>,
        conversation_id: Uuid,
        content: &str,
    ) -> Result<impl Stream<Item = ChatEvent> + Send + 'static, ChatError> {
        let p = self.prepare(permit, conversation_id, content).await?;
        let (route, budget_notice) = self.ai.route(p.caller.organization_id).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<ChatEvent>(64);
        let this = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = this.ai.engine().stream(&p.request, route).await;
            // A provider that failed before this one answered is the call's error.
            let failed_before = (!answer.notices.is_empty()).then(|| answer.notices.join("; "));
            let mut notices = answer.notices;
            notices.extend(budget_notice);
            let mut events = answer.events;
            let mut text = String::new();
            let mut usage = None;
            let mut model = answer.model;
            let mut error = None;
            while let Some(event) = events.next().await {
                match event {
                    Ok(StreamEvent::Token(t)) => {
                        text.push_str(&t);
                        // A listener that has gone does not stop the answer being kept.
                        let _ = tx.send(ChatEvent::Token(t)).await;
                    }
                    Ok(StreamEvent::Done {
                        usage: u,
                        model: m,
                        finish,
                    }) => {
                        usage = Some(u);
                        model = m;
                        if matches!(finish, Finish::CutShort) {
                            error = Some("the provider ended the answer early".to_owned());
                        }
                        break;
                    }
                    Err(e) => {
                        error = Some(e.to_string());
                        break;
                    }
                }
            }
            let cut = error.is_some() || usage.is_none();
            let ledger_error = error.clone().or(failed_before);
            if cut {
                notices.push(format!(
                    "This answer was cut short: {} stopped sending part-way{}.",
                    answer.provider.as_str(),
                    error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ));
            }
            let usage = usage.unwrap_or_else(|| estimate(&p.request, &text));
            let outcome = Outcome {
                cost_nanos: this.ai.cost(answer.provider, &model, &usage),
                text,
                provider: answer.provider,
                model,
                usage,
                finish: if cut { Finish::CutShort } else { Finish::Stop },
                notices,
                cache_hit: false,
            };
            let ledger = this
                .ai
                .ledger_row(p.caller, &outcome, started.elapsed(), ledger_error);
            let status = if cut {
                MessageStatus::CutShort
            } else {
                MessageStatus::Complete
            };
            match this.store_answer(p, outcome, status, ledger).await {
                Ok(view) => {
                    let _ = tx.send(ChatEvent::Done(view)).await;
                }
                Err(e) => tracing::error!(error = %e, "could not store a streamed answer"),
            }
        });
        Ok(tokio_stream_from(rx))
    }

    /// Stores the question, the answer and the call's ledger row, and moves the
    /// conversation to the top: one transaction, so one commit per answer.
    async fn store_answer(
        &self,
        p: Prepared,
        outcome: Outcome,
        status: MessageStatus,
        ledger: ai_usage::Model,
    ) -> Result<MessageView, ChatError> {
        let grounded = grounding::ground(&outcome.text, &p.request.sources).renumbered();
        let citations: Vec<Citation> = grounded
            .cited
            .iter()
            .filter_map(|n| p.sources.get(n.wrapping_sub(1)).cloned())
            .collect();
        let now = self.clock.now();
        let row = chat_message::Model {
            id: Uuid::now_v7(),
            organization_id: p.conversation.organization_id,
            conversation_id: p.conversation.id,
            role: "assistant".into(),
            content: grounded.text,
            citations: serde_json::to_value(&citations).unwrap_or_default(),
            notices: serde_json::to_value(&outcome.notices).unwrap_or_default(),
            status: match status {
                MessageStatus::Complete => "complete".into(),
                MessageStatus::CutShort => "cut_short".into(),
            },
            provider: Some(outcome.provider.as_str().to_owned()),
            model: Some(outcome.model),
            input_tokens: i64::try_from(outcome.usage.input_tokens).unwrap_or(i64::MAX),
            output_tokens: i64::try_from(outcome.usage.output_tokens).unwrap_or(i64::MAX),
            cost_nanos: outcome.cost_nanos,
            created_at: now,
        };
        let org = p.conversation.organization_id;
        // Four statements in one transaction: on SQLite, queue for the write lock in
        // the process rather than in SQLite's sleeping busy handler (see `writer_turn`).
        let _turn = ruleiq_db::writer_turn(&self.db).await;
        let txn = ruleiq_db::begin(&self.db).await?;
        repo::insert_message(&txn, p.question).await?;
        repo::touch_conversation(&txn, org, p.conversation.id, p.title, now).await?;
        ai_repo::insert_usage(&txn, ledger).await?;
        repo::insert_message(&txn, row.clone()).await?;
        txn.commit().await?;
        Ok(row.into())
    }

    /// Guidance for one question of one of the organisation's assessments.
    ///
    /// # Errors
    /// [`ChatError::NotFound`] for an assessment of another organisation or a question
    /// not in its framework.
    pub async fn help(
        &self,
        permit: &Permit<'_>,
        assessment_id: Uuid,
        question_id: Uuid,
    ) -> Result<HelpView, ChatError> {
        let org: OrganizationId = permit.organization_id();
        let assessment = assessments_repo::find(&self.db, org.as_uuid(), assessment_id)
            .await?
            .ok_or(ChatError::NotFound("no such assessment"))?;
        let rows: Vec<_> = assessments_repo::framework_questions(&self.db, assessment.framework_id)
            .await?
            .into_iter()
            .filter(|q| q.question_id == question_id)
            .collect();
        let Some(first) = rows.first() else {
            return Err(ChatError::NotFound("no such question in this assessment"));
        };
        let slug = frameworks_repo::by_ids(&self.db, &[assessment.framework_id])
            .await?
            .into_iter()
            .next()
            .map(|f| f.slug);
        let question = first.text.clone();
        let passages = self
            .search
            .retrieve(org.as_uuid(), &question, PASSAGES)
            .await?;
        let (sources, citations) = sources::for_question(&rows, slug.as_deref(), passages);
        let request = ChatRequest {
            task: Task::Help,
            instructions: HELP_INSTRUCTIONS.to_owned(),
            messages: vec![Message {
                role: Role::User,
                content: question,
            }],
            sources,
            draft: None,
            max_output_tokens: 600,
        };
        let caller = Caller {
            organization_id: org.as_uuid(),
            user_id: Some(permit.principal().user_id.as_uuid()),
            feature: Feature::AssessmentHelp,
        };
        let outcome = self.ai.complete(caller, &request).await?;
        let grounded = grounding::ground(&outcome.text, &request.sources).renumbered();
        Ok(HelpView {
            question_id,
            question: request
                .messages
                .first()
                .map(|m| m.content.clone())
                .unwrap_or_default(),
            content: grounded.text,
            citations: grounded
                .cited
                .iter()
                .filter_map(|n| citations.get(n.wrapping_sub(1)).cloned())
                .collect(),
            notices: outcome.notices,
            provider: outcome.provider.as_str().to_owned(),
            model: outcome.model,
            usage: UsageView {
                input_tokens: i64::try_from(outcome.usage.input_tokens).unwrap_or(i64::MAX),
                output_tokens: i64::try_from(outcome.usage.output_tokens).unwrap_or(i64::MAX),
                cost_usd: usd(outcome.cost_nanos),
            },
        })
    }
}

fn user_message(
    organization_id: Uuid,
    conversation_id: Uuid,
    content: &str,
    now: DateTime<Utc>,
) -> chat_message::Model {
    chat_message::Model {
        id: Uuid::now_v7(),
        organization_id,
        conversation_id,
        role: "user".into(),
        content: content.to_owned(),
        citations: serde_json::json!([]),
        notices: serde_json::json!([]),
        status: "complete".into(),
        provider: None,
        model: None,
        input_tokens: 0,
        output_tokens: 0,
        cost_nanos: 0,
        created_at: now,
    }
}

/// A conversation's title from its first question: the first line, shortened at a
/// word boundary.
fn title_from(question: &str) -> String {
    let line = question.lines().next().unwrap_or(question).trim();
    if line.chars().count() <= 60 {
        return line.to_owned();
    }
    let cut: String = line.chars().take(60).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{}…", cut.trim_end())
}

/// Tokens of a call whose provider never said (it broke off first): about four
/// characters a token, which is how the providers' own tokenisers average on English.
fn estimate(req: &ChatRequest, text: &str) -> Usage {
    let input: usize = req.instructions.len()
        + req.messages.iter().map(|m| m.content.len()).sum::<usize>()
        + req.sources.iter().map(|s| s.text.len()).sum::<usize>();
    Usage {
        input_tokens: (input as u64).div_ceil(4),
        output_tokens: (text.len() as u64).div_ceil(4),
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_first_line_at_a_word_boundary() {
        assert_eq!(title_from("Do we need a DPO?\nmore"), "Do we need a DPO?");
        let long = "How often should we test our backups and who should be told when a restore test fails badly";
        let t = title_from(long);
        assert!(t.ends_with('…') && t.chars().count() <= 61, "{t}");
        assert!(long.starts_with(t.trim_end_matches('…')));
    }
}
