//! [`Ai`]: the configured providers in preference order, each behind retries and a
//! circuit breaker, with the offline engine as the last resort.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use secrecy::SecretString;
use serde::Serialize;
use url::Url;

use crate::{
    BreakerState, ChatRequest, Completion, EventStream, Finish, LlmError, LlmProvider,
    ProviderName, StreamEvent, Usage,
    http::{Http, cut_off},
    offline::{OFFLINE_MODEL, Offline, word_stream},
    providers,
    resilience::{Breaker, Permit, RetryPolicy},
};

pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-3-5-haiku-latest";
pub const DEFAULT_GEMINI_MODEL: &str = "gemini-2.0-flash";
pub const DEFAULT_OLLAMA_MODEL: &str = "llama3.1";

pub const DEFAULT_OPENAI_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_ANTHROPIC_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_GEMINI_URL: &str = "https://generativelanguage.googleapis.com";
pub const DEFAULT_OLLAMA_URL: &str = "http://127.0.0.1:11434";

/// The remote providers, in the order statuses list them.
const REMOTE: [ProviderName; 4] = [
    ProviderName::OpenAi,
    ProviderName::Anthropic,
    ProviderName::Gemini,
    ProviderName::Ollama,
];

impl ProviderName {
    /// The model used when settings name none.
    pub fn default_model(self) -> &'static str {
        match self {
            ProviderName::OpenAi => DEFAULT_OPENAI_MODEL,
            ProviderName::Anthropic => DEFAULT_ANTHROPIC_MODEL,
            ProviderName::Gemini => DEFAULT_GEMINI_MODEL,
            ProviderName::Ollama => DEFAULT_OLLAMA_MODEL,
            ProviderName::Offline => OFFLINE_MODEL,
        }
    }

    /// The API address used when settings name none (the offline engine has none;
    /// it gets a placeholder that is never dialled).
    pub fn default_base_url(self) -> Url {
        let text = match self {
            ProviderName::OpenAi => DEFAULT_OPENAI_URL,
            ProviderName::Anthropic => DEFAULT_ANTHROPIC_URL,
            ProviderName::Gemini => DEFAULT_GEMINI_URL,
            ProviderName::Ollama | ProviderName::Offline => DEFAULT_OLLAMA_URL,
        };
        // The constants above are valid URLs; a unit test parses each of them.
        #[allow(clippy::expect_used)]
        Url::parse(text).expect("default provider URLs are valid")
    }
}

/// How to reach one provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: ProviderName,
    /// Required by OpenAI, Anthropic and Gemini; Ollama takes none.
    pub api_key: Option<SecretString>,
    pub base_url: Url,
    pub model: String,
}

impl ProviderConfig {
    /// `name` at its default address with its default model.
    pub fn new(name: ProviderName, api_key: Option<SecretString>) -> Self {
        ProviderConfig {
            name,
            api_key,
            base_url: name.default_base_url(),
            model: name.default_model().to_owned(),
        }
    }
}

/// Everything [`Ai::new`] needs.
#[derive(Debug, Clone)]
pub struct AiSettings {
    /// In order of preference. The offline engine is always appended last, so it
    /// need not (and should not) be listed; a provider listed twice counts once.
    pub providers: Vec<ProviderConfig>,
    /// For a whole call; for a stream, the wait for its first byte and the longest
    /// silence between chunks.
    pub timeout: Duration,
    /// Extra attempts after a retryable failure.
    pub max_retries: u32,
    /// Consecutive failed calls that open a provider's breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before it lets one trial through.
    pub breaker_cool_down: Duration,
}

impl Default for AiSettings {
    fn default() -> Self {
        AiSettings {
            providers: Vec::new(),
            timeout: Duration::from_secs(30),
            max_retries: 2,
            breaker_failures: 3,
            breaker_cool_down: Duration::from_secs(60),
        }
    }
}

/// Which providers a call may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The configured providers in order, then the offline engine.
    Auto,
    /// Only the offline engine: nothing leaves the machine.
    OfflineOnly,
}

/// A provider as a status page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderStatus {
    pub name: ProviderName,
    /// Whether it takes part in the chain (listed in settings, with a key if it needs one).
    pub configured: bool,
    pub model: String,
    pub state: BreakerState,
    /// The last failure in plain words (never a key), or why it is not usable.
    pub last_error: Option<String>,
}

/// A finished answer and who gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub completion: Completion,
    pub provider: ProviderName,
    /// Plain-English notes for the user, e.g. "openai failed (invalid API key);
    /// answered by anthropic".
    pub notices: Vec<String>,
}

/// A streamed answer and who gives it. If `events` ends with an `Err`, the answer
/// was cut short after its first token and the caller should mark it so.
pub struct AnswerStream {
    pub provider: ProviderName,
    pub model: String,
    pub notices: Vec<String>,
    pub events: EventStream,
}

impl fmt::Debug for AnswerStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnswerStream")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("notices", &self.notices)
            .finish_non_exhaustive()
    }
}

struct Slot {
    name: ProviderName,
    model: String,
    provider: Option<Arc<dyn LlmProvider>>,
    /// Why a provider listed in settings cannot be used.
    unusable: Option<String>,
    breaker: Breaker,
}

struct Inner {
    /// One per remote provider, in [`REMOTE`] order.
    slots: Vec<Slot>,
    /// Indexes into `slots` of the usable providers, in preference order.
    chain: Vec<usize>,
    retry: RetryPolicy,
}

/// The AI layer. Cheap to clone; clones share clients, breakers and state.
#[derive(Clone)]
pub struct Ai {
    inner: Arc<Inner>,
}

impl fmt::Debug for Ai {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ai")
            .field("statuses", &self.statuses())
            .finish()
    }
}

/// What the offline engine says when it has nothing to give, so that `complete`
/// still never fails.
const OFFLINE_POLICY_FALLBACK: &str = "No AI provider was available to write this \
policy, and no template draft was supplied to fall back on. Start from one of the policy \
templates, or try again once an AI provider is reachable.";

fn failure_notice(failures: &[String], answered_by: ProviderName) -> Vec<String> {
    if failures.is_empty() {
        return Vec::new();
    }
    let by = match answered_by {
        ProviderName::Offline => "answered offline from your own documents".to_owned(),
        other => format!("answered by {other}"),
    };
    vec![format!("{}; {by}", failures.join("; "))]
}

impl Ai {
    /// Builds one HTTP client shared by every provider, the providers, and their
    /// breakers. Never fails: a provider that cannot be used is reported by
    /// [`Ai::statuses`] and skipped.
    pub fn new(settings: AiSettings) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            .user_agent(concat!("ruleiq-ai/", env!("CARGO_PKG_VERSION")))
            .build();
        let http = match client {
            Ok(client) => Some(Http {
                client,
                timeout: settings.timeout,
            }),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the HTTP client; AI answers will be offline only");
                None
            }
        };

        let mut slots = Vec::with_capacity(REMOTE.len());
        for name in REMOTE {
            let config = settings.providers.iter().find(|c| c.name == name);
            let built = match (config, &http) {
                (None, _) => Err(None),
                (Some(_), None) => Err(Some("the HTTP client could not be built".to_owned())),
                (Some(c), Some(http)) => providers::build(c, http).map_err(Some),
            };
            let (provider, unusable) = match built {
                Ok(p) => (Some(p), None),
                Err(why) => (None, why),
            };
            slots.push(Slot {
                name,
                model: config.map_or_else(|| name.default_model().to_owned(), |c| c.model.clone()),
                provider,
                unusable,
                breaker: Breaker::new(settings.breaker_failures, settings.breaker_cool_down),
            });
        }

        let mut chain: Vec<usize> = Vec::new();
        for config in &settings.providers {
            if let Some(i) = slots.iter().position(|s| s.name == config.name)
                && slots[i].provider.is_some()
                && !chain.contains(&i)
            {
                chain.push(i);
            }
        }

        Ai {
            inner: Arc::new(Inner {
                slots,
                chain,
                retry: RetryPolicy {
                    max_retries: settings.max_retries,
                },
            }),
        }
    }

    /// No remote providers at all, and no HTTP client.
    pub fn offline_only() -> Self {
        let settings = AiSettings::default();
        let slots = REMOTE
            .into_iter()
            .map(|name| Slot {
                name,
                model: name.default_model().to_owned(),
                provider: None,
                unusable: None,
                breaker: Breaker::new(settings.breaker_failures, settings.breaker_cool_down),
            })
            .collect();
        Ai {
            inner: Arc::new(Inner {
                slots,
                chain: Vec::new(),
                retry: RetryPolicy { max_retries: 0 },
            }),
        }
    }

    /// Answers `req` with the first provider that can. Never fails: the offline
    /// engine is the last resort.
    pub async fn complete(&self, req: &ChatRequest, route: Route) -> Answer {
        let mut failures = Vec::new();
        // Breakers are asked one at a time, as the chain is walked, so that a
        // half-open trial slot is not taken by a provider this call never reaches.
        if route == Route::Auto {
            for &i in &self.inner.chain {
                let slot = &self.inner.slots[i];
                let Some(provider) = &slot.provider else {
                    continue;
                };
                let Ok(permit) = slot.breaker.admit(Instant::now()) else {
                    failures.push(format!("{} is paused after repeated failures", slot.name));
                    continue;
                };
                match self.inner.retry.run(|| provider.complete(req)).await {
                    Ok(completion) => {
                        permit.success();
                        return Answer {
                            completion,
                            provider: slot.name,
                            notices: failure_notice(&failures, slot.name),
                        };
                    }
                    Err(e) => {
                        tracing::warn!(provider = %slot.name, error = %e, "AI provider failed; trying the next");
                        permit.failure(&e, Instant::now());
                        failures.push(format!("{} failed ({})", slot.name, e.short_reason()));
                    }
                }
            }
        }
        self.offline_answer(req, route, failures)
    }

    fn offline_answer(&self, req: &ChatRequest, route: Route, failures: Vec<String>) -> Answer {
        let mut notices = failure_notice(&failures, ProviderName::Offline);
        if route == Route::Auto && self.inner.chain.is_empty() {
            notices.push(
                "No AI provider is configured, so this answer quotes your own documents directly."
                    .to_owned(),
            );
        }
        let completion = Offline::answer(req).unwrap_or_else(|e| {
            notices.push(format!("The offline engine could not help: {e}."));
            Completion {
                text: OFFLINE_POLICY_FALLBACK.to_owned(),
                usage: Usage::default(),
                model: OFFLINE_MODEL.to_owned(),
                finish: Finish::Stop,
            }
        });
        Answer {
            completion,
            provider: ProviderName::Offline,
            notices,
        }
    }

    /// Streams an answer to `req`. A provider that fails before its first token is
    /// retried and then passed over; once a token has been sent the stream stays
    /// with that provider, and a later failure ends it with an `Err`.
    pub async fn stream(&self, req: &ChatRequest, route: Route) -> AnswerStream {
        let mut failures = Vec::new();
        if route == Route::Auto {
            for &i in &self.inner.chain {
                let slot = &self.inner.slots[i];
                let Some(provider) = &slot.provider else {
                    continue;
                };
                let Ok(permit) = slot.breaker.admit(Instant::now()) else {
                    failures.push(format!("{} is paused after repeated failures", slot.name));
                    continue;
                };
                match self
                    .inner
                    .retry
                    .run(|| first_event(provider.as_ref(), req))
                    .await
                {
                    Ok((first, rest)) => {
                        let events = futures::stream::once(async move { Ok(first) }).chain(rest);
                        return AnswerStream {
                            provider: slot.name,
                            model: provider.model().to_owned(),
                            notices: failure_notice(&failures, slot.name),
                            events: settle(events.boxed(), permit),
                        };
                    }
                    Err(e) => {
                        tracing::warn!(provider = %slot.name, error = %e, "AI provider failed before streaming; trying the next");
                        permit.failure(&e, Instant::now());
                        failures.push(format!("{} failed ({})", slot.name, e.short_reason()));
                    }
                }
            }
        }
        // The offline engine computes its whole answer at once; streaming it is a
        // matter of cutting it into words.
        let answer = self.offline_answer(req, route, failures);
        AnswerStream {
            provider: ProviderName::Offline,
            model: answer.completion.model.clone(),
            notices: answer.notices,
            events: word_stream(answer.completion),
        }
    }

    /// Every known provider: the four remote ones, configured or not, then offline.
    pub fn statuses(&self) -> Vec<ProviderStatus> {
        let now = Instant::now();
        let mut out: Vec<ProviderStatus> = self
            .inner
            .slots
            .iter()
            .map(|s| ProviderStatus {
                name: s.name,
                configured: s.provider.is_some(),
                model: s.model.clone(),
                state: s.breaker.state(now),
                last_error: s.breaker.last_error().or_else(|| s.unusable.clone()),
            })
            .collect();
        out.push(ProviderStatus {
            name: ProviderName::Offline,
            configured: true,
            model: OFFLINE_MODEL.to_owned(),
            state: BreakerState::Closed,
            last_error: None,
        });
        out
    }

    /// Whether any remote provider is configured for [`Route::Auto`].
    pub fn has_remote(&self) -> bool {
        !self.inner.chain.is_empty()
    }
}

/// Opens a stream and waits for its first event, so that a failure before any
/// token counts as a failed attempt (retried, then passed over).
async fn first_event(
    provider: &dyn LlmProvider,
    req: &ChatRequest,
) -> Result<(StreamEvent, EventStream), LlmError> {
    let mut events = provider.stream(req).await?;
    match events.next().await {
        Some(Ok(first)) => Ok((first, events)),
        Some(Err(e)) => Err(e),
        None => Err(cut_off()),
    }
}

/// Reports the stream's outcome to the breaker when it ends. A stream the caller
/// drops early reports nothing; the permit's drop frees any trial slot.
fn settle(events: EventStream, permit: Permit) -> EventStream {
    let mut permit = Some(permit);
    events
        .map(move |item| {
            match &item {
                Ok(StreamEvent::Done { .. }) => {
                    if let Some(p) = permit.take() {
                        p.success();
                    }
                }
                Err(e) => {
                    if let Some(p) = permit.take() {
                        p.failure(e, Instant::now());
                    }
                }
                Ok(StreamEvent::Token(_)) => {}
            }
            item
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_urls_parse() {
        for name in ProviderName::ALL {
            assert!(!name.default_base_url().as_str().is_empty());
        }
        assert_eq!(
            ProviderName::Anthropic.default_base_url().as_str(),
            "https://api.anthropic.com/"
        );
    }

    #[test]
    fn statuses_list_every_provider() {
        let key = SecretString::from("sk-test");
        let ai = Ai::new(AiSettings {
            providers: vec![
                ProviderConfig::new(ProviderName::Gemini, Some(key)),
                ProviderConfig::new(ProviderName::OpenAi, None),
            ],
            ..AiSettings::default()
        });
        let statuses = ai.statuses();
        let names: Vec<_> = statuses.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["openai", "anthropic", "gemini", "ollama", "offline"]
        );
        assert!(!statuses[0].configured);
        assert_eq!(
            statuses[0].last_error.as_deref(),
            Some("no API key is set for openai")
        );
        assert!(statuses[2].configured);
        assert_eq!(statuses[2].model, DEFAULT_GEMINI_MODEL);
        assert!(statuses.iter().all(|s| s.state == BreakerState::Closed));
        assert!(statuses[4].configured);
        assert_eq!(
            serde_json::to_value(&statuses[4]).unwrap(),
            serde_json::json!({"name": "offline", "configured": true, "model": "ruleiq-offline-1", "state": "closed", "last_error": null})
        );
    }
}
