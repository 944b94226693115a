//! The four remote providers, each a thin translation between a [`ChatRequest`]
//! and one vendor's documented wire format. Resilience lives in [`crate::Ai`], not
//! here: a provider makes exactly one HTTP request per call.

mod anthropic;
mod gemini;
mod ollama;
mod openai;

use std::{sync::Arc, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

pub use anthropic::Anthropic;
pub use gemini::Gemini;
pub use ollama::Ollama;
pub use openai::OpenAi;

use crate::{ChatRequest, LlmError, LlmProvider, ProviderConfig, ProviderName, http::Http};

/// Decodes one streamed frame or body.
pub(crate) fn parse<T: DeserializeOwned>(data: &str) -> Result<T, LlmError> {
    serde_json::from_str(data).map_err(|e| LlmError::Malformed(e.to_string()))
}

/// An output limit of zero would make every provider refuse the request.
pub(crate) fn max_tokens(req: &ChatRequest) -> u32 {
    req.max_output_tokens.max(1)
}

/// One provider on its own, with its own HTTP client and no retries, breaker or
/// fallback: for a "test connection" button, and for tests that need to see the
/// exact error a provider returns.
///
/// # Errors
/// Why the provider cannot be used: a missing key, or no HTTP client.
pub fn connect(config: &ProviderConfig, timeout: Duration) -> Result<Arc<dyn LlmProvider>, String> {
    let client = reqwest::Client::builder()
        .connect_timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    build(config, &Http { client, timeout })
}

/// Builds the provider `config` describes, sharing `http`.
///
/// # Errors
/// Why it cannot be used (a missing key), in words fit for a status page.
pub(crate) fn build(config: &ProviderConfig, http: &Http) -> Result<Arc<dyn LlmProvider>, String> {
    let key = config
        .api_key
        .clone()
        .filter(|k| !k.expose_secret().trim().is_empty());
    let need_key = |key: Option<SecretString>| {
        key.ok_or_else(|| format!("no API key is set for {}", config.name))
    };
    let (base, model) = (config.base_url.clone(), config.model.clone());
    let http = http.clone();
    Ok(match config.name {
        ProviderName::OpenAi => Arc::new(OpenAi::new(http, need_key(key)?, base, model)),
        ProviderName::Anthropic => Arc::new(Anthropic::new(http, need_key(key)?, base, model)),
        ProviderName::Gemini => Arc::new(Gemini::new(http, need_key(key)?, base, model)),
        ProviderName::Ollama => Arc::new(Ollama::new(http, base, model)),
        ProviderName::Offline => Arc::new(crate::offline::Offline),
    })
}
