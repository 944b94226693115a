//! OpenAI chat completions (`POST {base}/chat/completions`), which many local and
//! hosted servers also speak, so `max_tokens` is sent rather than the newer
//! `max_completion_tokens` that only OpenAI itself understands.

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

/// The OpenAI provider.
#[derive(Debug)]
pub struct OpenAi {
    http: Http,
    key: SecretString,
    base: Url,
    model: String,
}

#[derive(Debug, Deserialize)]
struct Response {
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<TokenUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(alias = "delta")]
    message: Option<ChoiceMessage>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
}

impl From<TokenUsage> for Usage {
    fn from(u: TokenUsage) -> Self {
        Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
        }
    }
}

fn finish(reason: &str) -> Finish {
    match reason {
        "length" => Finish::Length,
        "content_filter" => Finish::CutShort,
        _ => Finish::Stop,
    }
}

impl OpenAi {
    pub(crate) fn new(http: Http, key: SecretString, base: Url, model: String) -> Self {
        OpenAi {
            http,
            key,
            base,
            model,
        }
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> Value {
        let p = prompt::build(req);
        let mut messages = vec![json!({"role": "system", "content": p.system})];
        messages.extend(p.messages.iter().map(|m| {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({"role": role, "content": m.content})
        }));
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens(req),
        });
        if stream {
            body["stream"] = json!(true);
            // Without this the stream carries no token counts at all.
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }

    fn request(
        &self,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<reqwest::RequestBuilder, LlmError> {
        let url = endpoint(&self.base, &["chat", "completions"])?;
        Ok(self
            .http
            .client
            .post(url)
            .bearer_auth(self.key.expose_secret())
            .json(&self.body(req, stream)))
    }
}

#[async_trait]
impl LlmProvider for OpenAi {
    fn name(&self) -> ProviderName {
        ProviderName::OpenAi
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn complete(&self, req: &ChatRequest) -> Result<Completion, LlmError> {
        let response: Response = self
            .http
            .call(self.request(req, false)?, Some(&self.key))
            .await?;
        let choice = response
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| LlmError::Malformed("the response has no choices".into()))?;
        Ok(Completion {
            text: choice.message.and_then(|m| m.content).unwrap_or_default(),
            usage: response.usage.map(Usage::from).unwrap_or_default(),
            model: response.model.unwrap_or_else(|| self.model.clone()),
            finish: choice.finish_reason.as_deref().map_or(Finish::Stop, finish),
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

struct StreamDecoder {
    model: String,
    finish: Option<Finish>,
    usage: Usage,
}

impl Decoder for StreamDecoder {
    fn frame(&mut self, frame: Frame) -> Result<Vec<StreamEvent>, LlmError> {
        if frame.data.trim() == "[DONE]" {
            return Ok(vec![StreamEvent::Done {
                usage: self.usage,
                model: self.model.clone(),
                finish: self.finish.unwrap_or(Finish::Stop),
            }]);
        }
        let value: Value = parse(&frame.data)?;
        if let Some(error) = value.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the provider reported an error mid-stream");
            return Err(LlmError::Server {
                status: 500,
                message: message.to_owned(),
            });
        }
        let chunk: Response =
            serde_json::from_value(value).map_err(|e| LlmError::Malformed(e.to_string()))?;
        if let Some(model) = chunk.model {
            self.model = model;
        }
        if let Some(usage) = chunk.usage {
            self.usage = usage.into();
        }
        let mut events = Vec::new();
        for choice in chunk.choices {
            if let Some(reason) = choice.finish_reason.as_deref() {
                self.finish = Some(finish(reason));
            }
            if let Some(text) = choice
                .message
                .and_then(|m| m.content)
                .filter(|t| !t.is_empty())
            {
                events.push(StreamEvent::Token(text));
            }
        }
        Ok(events)
    }

    fn end(&mut self) -> Result<StreamEvent, LlmError> {
        Err(cut_off())
    }
}
