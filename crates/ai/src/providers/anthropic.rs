//! Anthropic messages (`POST {base}/v1/messages`, API version 2023-06-01).

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

/// The API version this module was written against; Anthropic requires it.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The Anthropic provider.
#[derive(Debug)]
pub struct Anthropic {
    http: Http,
    key: SecretString,
    base: Url,
    model: String,
}

#[derive(Debug, Deserialize)]
struct Response {
    model: Option<String>,
    #[serde(default)]
    content: Vec<Block>,
    stop_reason: Option<String>,
    #[serde(default)]
    usage: TokenUsage,
}

#[derive(Debug, Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
}

#[derive(Debug, Default, Deserialize)]
struct TokenUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

fn finish(reason: &str) -> Finish {
    match reason {
        "max_tokens" | "model_context_window_exceeded" => Finish::Length,
        "refusal" | "pause_turn" => Finish::CutShort,
        _ => Finish::Stop,
    }
}

/// Maps an `error` event (`{"type":"error","error":{"type","message"}}`), which
/// can arrive after a 200 has started the stream.
fn stream_error(value: &Value) -> LlmError {
    let error = value.get("error");
    let kind = error
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("the provider reported an error mid-stream")
        .to_owned();
    match kind {
        "overloaded_error" => LlmError::Server {
            status: 529,
            message,
        },
        "rate_limit_error" => LlmError::RateLimited { retry_after: None },
        "authentication_error" | "permission_error" => LlmError::Unauthorized(message),
        "invalid_request_error" | "not_found_error" | "request_too_large" => {
            LlmError::BadRequest(message)
        }
        _ => LlmError::Server {
            status: 500,
            message,
        },
    }
}

impl Anthropic {
    pub(crate) fn new(http: Http, key: SecretString, base: Url, model: String) -> Self {
        Anthropic {
            http,
            key,
            base,
            model,
        }
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> Value {
        let p = prompt::build(req);
        let messages: Vec<Value> = p
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                json!({"role": role, "content": m.content})
            })
            .collect();
        let mut body = json!({
            "model": self.model,
            "max_tokens": max_tokens(req),
            "system": p.system,
            "messages": messages,
        });
        if stream {
            body["stream"] = json!(true);
        }
        body
    }

    fn request(
        &self,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<reqwest::RequestBuilder, LlmError> {
        let url = endpoint(&self.base, &["v1", "messages"])?;
        Ok(self
            .http
            .client
            .post(url)
            .header("x-api-key", self.key.expose_secret())
            .header("anthropic-version", ANTHROPIC_VERSION)
            .json(&self.body(req, stream)))
    }
}

#[async_trait]
impl LlmProvider for Anthropic {
    fn name(&self) -> ProviderName {
        ProviderName::Anthropic
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn complete(&self, req: &ChatRequest) -> Result<Completion, LlmError> {
        let response: Response = self
            .http
            .call(self.request(req, false)?, Some(&self.key))
            .await?;
        let text: String = response
            .content
            .iter()
            .filter(|b| b.kind == "text")
            .map(|b| b.text.as_str())
            .collect();
        Ok(Completion {
            text,
            usage: Usage {
                input_tokens: response.usage.input_tokens.unwrap_or_default(),
                output_tokens: response.usage.output_tokens.unwrap_or_default(),
            },
            model: response.model.unwrap_or_else(|| self.model.clone()),
            finish: response.stop_reason.as_deref().map_or(Finish::Stop, finish),
        })
    }

    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, LlmError> {
        let decoder = StreamDecoder {
            model: self.model.clone(),
            finish: Finish::Stop,
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

struct StreamDecoder {
    model: String,
    finish: Finish,
    usage: Usage,
}

impl Decoder for StreamDecoder {
    fn frame(&mut self, frame: Frame) -> Result<Vec<StreamEvent>, LlmError> {
        let value: Value = parse(&frame.data)?;
        // The payload repeats the event name in `type`; either will do.
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or(frame.event)
            .unwrap_or_default();
        match kind.as_str() {
            "message_start" => {
                let message = value.get("message");
                if let Some(model) = message.and_then(|m| m.get("model")).and_then(Value::as_str) {
                    self.model = model.to_owned();
                }
                if let Some(n) = message
                    .and_then(|m| m.pointer("/usage/input_tokens"))
                    .and_then(Value::as_u64)
                {
                    self.usage.input_tokens = n;
                }
                Ok(Vec::new())
            }
            "content_block_delta" => {
                let delta = value.get("delta");
                let is_text =
                    delta.and_then(|d| d.get("type")).and_then(Value::as_str) == Some("text_delta");
                let text = delta
                    .and_then(|d| d.get("text"))
                    .and_then(Value::as_str)
                    .filter(|t| is_text && !t.is_empty());
                Ok(text
                    .map(|t| vec![StreamEvent::Token(t.to_owned())])
                    .unwrap_or_default())
            }
            "message_delta" => {
                if let Some(reason) = value.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.finish = finish(reason);
                }
                // Output tokens here are cumulative, so the last one counts.
                if let Some(n) = value
                    .pointer("/usage/output_tokens")
                    .and_then(Value::as_u64)
                {
                    self.usage.output_tokens = n;
                }
                if let Some(n) = value.pointer("/usage/input_tokens").and_then(Value::as_u64) {
                    self.usage.input_tokens = n;
                }
                Ok(Vec::new())
            }
            "message_stop" => Ok(vec![StreamEvent::Done {
                usage: self.usage,
                model: self.model.clone(),
                finish: self.finish,
            }]),
            "error" => Err(stream_error(&value)),
            // ping, content_block_start/stop, and event types added later.
            _ => Ok(Vec::new()),
        }
    }

    fn end(&mut self) -> Result<StreamEvent, LlmError> {
        Err(cut_off())
    }
}
