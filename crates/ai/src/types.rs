//! The vocabulary shared by every provider: requests, completions, stream events.

use std::{fmt, str::FromStr};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::LlmError;

/// Every provider the crate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    OpenAi,
    Anthropic,
    Gemini,
    Ollama,
    Offline,
}

impl ProviderName {
    /// All of them, remote ones first, in the order statuses are listed.
    pub const ALL: [ProviderName; 5] = [
        ProviderName::OpenAi,
        ProviderName::Anthropic,
        ProviderName::Gemini,
        ProviderName::Ollama,
        ProviderName::Offline,
    ];

    /// The stable name used in settings, logs and the usage table.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderName::OpenAi => "openai",
            ProviderName::Anthropic => "anthropic",
            ProviderName::Gemini => "gemini",
            ProviderName::Ollama => "ollama",
            ProviderName::Offline => "offline",
        }
    }

    /// Whether calls leave the machine and need a key (Ollama runs locally and has none).
    pub fn needs_api_key(self) -> bool {
        matches!(
            self,
            ProviderName::OpenAi | ProviderName::Anthropic | ProviderName::Gemini
        )
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        ProviderName::ALL
            .into_iter()
            .find(|p| p.as_str() == wanted)
            .ok_or_else(|| {
                format!(
                    "unknown AI provider `{}` (expected one of: openai, anthropic, gemini, ollama, offline)",
                    s.trim()
                )
            })
    }
}

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A retrieved passage the answer may cite as `[n]` (n = 1-based index in
/// [`ChatRequest::sources`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// What it is: `control`, `policy`, `evidence`, `guidance`, ...
    pub kind: String,
    pub id: String,
    /// A human reference such as `A.5.15` or a policy number.
    pub reference: String,
    pub title: String,
    pub text: String,
    pub framework_slug: Option<String>,
}

/// What the caller wants the model to do; the offline engine behaves differently
/// for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Answer a compliance question from the organisation's own sources.
    Answer,
    /// Explain how to use ruleIQ; sources of kind `guidance` come first.
    Help,
    /// Refine a policy draft that was already filled from a template.
    Policy,
}

/// Everything one model call needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    pub task: Task,
    /// Our system instructions for this feature.
    pub instructions: String,
    /// The conversation so far; the last one is the user's question.
    pub messages: Vec<Message>,
    pub sources: Vec<Source>,
    /// For [`Task::Policy`]: a complete policy filled from our template; the
    /// offline engine returns it as is.
    pub draft: Option<String>,
    pub max_output_tokens: u32,
}

impl ChatRequest {
    /// The user's latest question, or "" if there is none.
    pub fn question(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.content.as_str())
    }
}

/// Tokens counted by the provider (or estimated, for the offline engine).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Why the text ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// The model finished its answer.
    Stop,
    /// The output-token limit was reached.
    Length,
    /// The provider stopped early (a safety filter, a refusal): the text is partial.
    CutShort,
}

/// A finished answer from one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
    pub usage: Usage,
    /// The model that answered, as the provider reported it.
    pub model: String,
    pub finish: Finish,
}

/// One item of a streamed answer. A well-formed stream is zero or more tokens and
/// then exactly one `Done`; anything else ends with an `Err`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    Token(String),
    Done {
        usage: Usage,
        model: String,
        finish: Finish,
    },
}

/// A streamed answer.
pub type EventStream = futures::stream::BoxStream<'static, Result<StreamEvent, LlmError>>;

/// One way of turning a [`ChatRequest`] into text.
#[async_trait]
pub trait LlmProvider: Send + Sync {
    fn name(&self) -> ProviderName;

    fn model(&self) -> &str;

    /// Asks for the whole answer at once.
    ///
    /// # Errors
    /// Whatever went wrong, classified so the caller can decide to retry or fall back.
    async fn complete(&self, req: &ChatRequest) -> Result<Completion, LlmError>;

    /// Starts a streamed answer. `Ok` means the provider accepted the request; the
    /// stream itself may still end in an error.
    ///
    /// # Errors
    /// As [`LlmProvider::complete`], for failures before the stream starts.
    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, LlmError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_round_trip() {
        for p in ProviderName::ALL {
            assert_eq!(p.as_str().parse::<ProviderName>(), Ok(p));
        }
        assert_eq!(" OpenAI ".parse::<ProviderName>(), Ok(ProviderName::OpenAi));
        let err = "gpt".parse::<ProviderName>().unwrap_err();
        assert!(err.contains("unknown AI provider `gpt`"), "{err}");
    }
}
