//! The AI layer of ruleIQ: one [`LlmProvider`] trait, four remote providers
//! (OpenAI, Anthropic, Google Gemini, Ollama) and a deterministic offline engine,
//! wrapped in timeouts, retries and a circuit breaker per provider, and chained so
//! that a question always gets an answer.
//!
//! Invariants:
//! - [`Ai::complete`] and [`Ai::stream`] never fail outright: the offline engine is
//!   always the last link of the chain, and it needs neither network nor keys;
//! - API keys live in [`secrecy::SecretString`] and never appear in an error, a
//!   notice, a status or a log line;
//! - everything a user or a document supplied reaches a remote model only inside a
//!   fence that the text itself cannot close (see [`prompt`]);
//! - the crate touches no database: callers pass retrieved [`Source`]s in, and
//!   record [`Usage`] and its [`pricing`] themselves.
//!
//! A departure from DESIGN.md, which names the `genai` crate behind this trait: the
//! four wire formats are spoken here directly over reqwest instead, because retries,
//! breakers and their tests need what a general client hides — each provider's raw
//! status, its `Retry-After`, its error body, and a stream read chunk by chunk so a
//! connection that drops part-way is seen as such. The trait is unchanged, so a
//! provider built on `genai` could still be added beside these.

mod ai;
mod error;
pub mod grounding;
mod http;
pub mod offline;
pub mod pricing;
pub mod prompt;
pub mod providers;
pub mod resilience;
mod sse;
mod types;

pub use ai::{
    Ai, AiSettings, Answer, AnswerStream, DEFAULT_ANTHROPIC_MODEL, DEFAULT_ANTHROPIC_URL,
    DEFAULT_GEMINI_MODEL, DEFAULT_GEMINI_URL, DEFAULT_OLLAMA_MODEL, DEFAULT_OLLAMA_URL,
    DEFAULT_OPENAI_MODEL, DEFAULT_OPENAI_URL, ProviderConfig, ProviderStatus, Route,
};
pub use error::LlmError;
pub use resilience::BreakerState;
pub use types::{
    ChatRequest, Completion, EventStream, Finish, LlmProvider, Message, ProviderName, Role, Source,
    StreamEvent, Task, Usage,
};
