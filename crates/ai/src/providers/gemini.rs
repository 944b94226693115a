//! Google Gemini `generateContent` and `streamGenerateContent?alt=sse` under
//! `{base}/v1beta/models/{model}`. The key travels in the `x-goog-api-key` header,
//! never in the URL, where proxies and logs would keep it.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::{max_tokens, parse};
use crate::{
    ChatRequest, Completion, EventStream, Finish, LlmError, LlmProvider, ProviderName, Role,
    StreamEvent, Usage,
    http::{Decoder, Http, cut_off, endpoint},
    prompt,
    sse::{Frame, Framing},
};

/// The Gemini provider.
#[derive(Debug)]
pub struct Gemini {
    http: Http,
    key: SecretString,
    base: Url,
    model: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    candidates: Vec<Candidate>,
    usage_metadata: Option<UsageMetadata>,
    model_version: Option<String>,
    prompt_feedback: Option<PromptFeedback>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    text: Option<String>,
    /// Thinking models mark their reasoning parts; those are not the answer.
    #[serde(default)]
    thought: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

fn finish(reason: &str) -> Finish {
    match reason {
        "STOP" => Finish::Stop,
        "MAX_TOKENS" => Finish::Length,
        // SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, OTHER, ...
        _ => Finish::CutShort,
    }
}

impl Candidate {
    fn text(&self) -> String {
        self.content
            .iter()
            .flat_map(|c| &c.parts)
            .filter(|p| !p.thought)
            .filter_map(|p| p.text.as_deref())
            .collect()
    }
}

impl Response {
    fn check(&self) -> Result<(), LlmError> {
        if let Some(error) = &self.error {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the provider reported an error");
            return Err(LlmError::Server {
                status: 500,
                message: message.to_owned(),
            });
        }
        if self.candidates.is_empty()
            && let Some(reason) = self
                .prompt_feedback
                .as_ref()
                .and_then(|f| f.block_reason.as_deref())
        {
            return Err(LlmError::BadRequest(format!(
                "the provider blocked the prompt ({reason})"
            )));
        }
        Ok(())
    }

    fn usage(&self) -> Option<Usage> {
        self.usage_metadata.as_ref().map(|u| Usage {
            input_tokens: u.prompt_token_count,
            output_tokens: u.candidates_token_count,
        })
    }
}

impl Gemini {
    pub(crate) fn new(http: Http, key: SecretString, base: Url, model: String) -> Self {
        Gemini {
            http,
            key,
            base,
            model,
        }
    }

    fn body(&self, req: &ChatRequest) -> Value {
        let p = prompt::build(req);
        let contents: Vec<Value> = p
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::User => "user",
                    Role::Assistant => "model",
                };
                json!({"role": role, "parts": [{"text": m.content}]})
            })
            .collect();
        json!({
            "systemInstruction": {"parts": [{"text": p.system}]},
            "contents": contents,
            "generationConfig": {"maxOutputTokens": max_tokens(req)},
        })
    }

    fn request(
        &self,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<reqwest::RequestBuilder, LlmError> {
        let method = if stream {
            "streamGenerateContent"
        } else {
            "generateContent"
        };
        let model = self.model.trim_start_matches("models/");
        let mut url = endpoint(
            &self.base,
            &["v1beta", "models", &format!("{model}:{method}")],
        )?;
        if stream {
            url.set_query(Some("alt=sse"));
        }
        Ok(self
            .http
            .client
            .post(url)
            .header("x-goog-api-key", self.key.expose_secret())
            .json(&self.body(req)))
    }
}

#[async_trait]
impl LlmProvider for Gemini {
    fn name(&self) -> ProviderName {
        ProviderName::Gemini
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn complete(&self, req: &ChatRequest) -> Result<Completion, LlmError> {
        let response: Response = self
            .http
            .call(self.request(req, false)?, Some(&self.key))
            .await?;
        response.check()?;
        let candidate = response
            .candidates
            .first()
            .ok_or_else(|| LlmError::Malformed("the response has no candidates".into()))?;
        Ok(Completion {
            text: candidate.text(),
            usage: response.usage().unwrap_or_default(),
            model: response
                .model_version
                .clone()
                .unwrap_or_else(|| self.model.clone()),
            finish: candidate
                .finish_reason
                .as_deref()
                .map_or(Finish::Stop, finish),
        })
    }

    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, LlmError> {
        let decoder = StreamDecoder {
            model: self.model.clone(),
            finish: None,
            usage: Usage::default(),
        };
        self.http
            .stream(
                self.request(req, true)?,
                Some(&self.key),
                Framing::sse(),
                decoder,
            )
            .await
    }
}

/// Gemini has no end-of-stream marker: the last chunk carries a finish reason,
/// and the body then ends. A body that ends without one was cut off.
struct StreamDecoder {
    model: String,
    finish: Option<Finish>,
    usage: Usage,
}

impl Decoder for StreamDecoder {
    fn frame(&mut self, frame: Frame) -> Result<Vec<StreamEvent>, LlmError> {
        let chunk: Response = parse(&frame.data)?;
        chunk.check()?;
        if let Some(model) = &chunk.model_version {
            self.model.clone_from(model);
        }
        if let Some(usage) = chunk.usage() {
            self.usage = usage;
        }
        let mut events = Vec::new();
        if let Some(candidate) = chunk.candidates.first() {
            let text = candidate.text();
            if !text.is_empty() {
                events.push(StreamEvent::Token(text));
            }
            if let Some(reason) = candidate.finish_reason.as_deref() {
                self.finish = Some(finish(reason));
            }
        }
        Ok(events)
    }

    fn end(&mut self) -> Result<StreamEvent, LlmError> {
        match self.finish {
            Some(finish) => Ok(StreamEvent::Done {
                usage: self.usage,
                model: self.model.clone(),
                finish,
            }),
            None => Err(cut_off()),
        }
    }
}
