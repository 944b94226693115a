//! How a model call fails, classified by what the caller should do next.

use std::time::Duration;

/// Why a provider could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// 401 or 403: the key is wrong, revoked or lacks access. Retrying will not help.
    #[error("the provider rejected the API key: {0}")]
    Unauthorized(String),
    /// 429: too many requests or tokens; `retry_after` is the provider's hint.
    #[error("rate limited by the provider")]
    RateLimited { retry_after: Option<Duration> },
    /// A 5xx (including Anthropic's 529 "overloaded").
    #[error("provider server error {status}: {message}")]
    Server { status: u16, message: String },
    /// Any other 4xx, with the provider's own explanation.
    #[error("the provider refused the request: {0}")]
    BadRequest(String),
    #[error("the provider did not answer in time")]
    Timeout,
    /// The provider answered, but not in the shape its API documents.
    #[error("unreadable response from the provider: {0}")]
    Malformed(String),
    /// The connection failed or broke.
    #[error("could not reach the provider: {0}")]
    Transport(String),
    /// The provider's circuit breaker is open after repeated failures.
    #[error("the provider is paused after repeated failures")]
    CircuitOpen,
    /// The offline engine could not do what was asked.
    #[error("{0}")]
    Offline(String),
}

impl LlmError {
    /// Whether the same request might succeed if sent again shortly.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            LlmError::RateLimited { .. }
                | LlmError::Server { .. }
                | LlmError::Timeout
                | LlmError::Transport(_)
        )
    }

    /// A few words for a notice or a status page, safe to show to any user: never a
    /// key, never a raw body.
    pub fn short_reason(&self) -> String {
        match self {
            LlmError::Unauthorized(_) => "invalid API key".to_owned(),
            LlmError::RateLimited { .. } => "rate limited".to_owned(),
            LlmError::Server { status, .. } => format!("server error {status}"),
            LlmError::BadRequest(_) => "request refused".to_owned(),
            LlmError::Timeout => "timed out".to_owned(),
            LlmError::Malformed(_) => "unreadable response".to_owned(),
            LlmError::Transport(_) => "could not connect".to_owned(),
            LlmError::CircuitOpen => "paused after repeated failures".to_owned(),
            LlmError::Offline(m) => m.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(LlmError::RateLimited { retry_after: None }.retryable());
        assert!(
            LlmError::Server {
                status: 529,
                message: String::new()
            }
            .retryable()
        );
        assert!(LlmError::Timeout.retryable());
        assert!(LlmError::Transport("reset".into()).retryable());
        assert!(!LlmError::Unauthorized("no".into()).retryable());
        assert!(!LlmError::BadRequest("no".into()).retryable());
        assert!(!LlmError::Malformed("x".into()).retryable());
        assert!(!LlmError::CircuitOpen.retryable());
    }
}
