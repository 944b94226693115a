//! Ollama's native chat API (`POST {base}/api/chat`). It runs on the organisation's
//! own machine, so there is no key; its stream is newline-delimited JSON.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{max_tokens, parse};
use crate::{
    ChatRequest, Completion, EventStream, Finish, LlmError, LlmProvider, ProviderName, Role,
    StreamEvent, Usage,
    http::{Decoder, Http, cut_off, endpoint},
    prompt,
    sse::{Frame, Framing},
};

/// The Ollama provider.
#[derive(Debug)]
pub struct Ollama {
    http: Http,
    base: Url,
    model: String,
}

#[derive(Debug, Deserialize)]
struct Response {
    model: Option<String>,
    message: Option<ReplyMessage>,
    #[serde(default)]
    done: bool,
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: u64,
    #[serde(default)]
    eval_count: u64,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReplyMessage {
    #[serde(default)]
    content: String,
}

impl Response {
    fn finish(&self) -> Finish {
        match self.done_reason.as_deref() {
            Some("length") => Finish::Length,
            _ => Finish::Stop,
        }
    }

    fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_eval_count,
            output_tokens: self.eval_count,
        }
    }
}

impl Ollama {
    pub(crate) fn new(http: Http, base: Url, model: String) -> Self {
        Ollama { http, base, model }
    }

    fn request(
        &self,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<reqwest::RequestBuilder, LlmError> {
        let p = prompt::build(req);
        let mut messages = vec![json!({"role": "system", "content": p.system})];
        messages.extend(p.messages.iter().map(|m| {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({"role": role, "content": m.content})
        }));
        // `stream` is always sent: Ollama streams unless told not to.
        let body = json!({
            "model": self.model,
            "messages": messages,
            "stream": stream,
            "options": {"num_predict": max_tokens(req)},
        });
        let url = endpoint(&self.base, &["api", "chat"])?;
        Ok(self.http.client.post(url).json(&body))
    }
}

#[async_trait]
impl LlmProvider for Ollama {
    fn name(&self) -> ProviderName {
        ProviderName::Ollama
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn complete(&self, req: &ChatRequest) -> Result<Completion, LlmError> {
        let response: Response = self.http.call(self.request(req, false)?, None).await?;
        if let Some(error) = response.error {
            return Err(LlmError::Server {
                status: 500,
                message: error,
            });
        }
        let finish = response.finish();
        let usage = response.usage();
        Ok(Completion {
            text: response
                .message
                .ok_or_else(|| LlmError::Malformed("the response has no message".into()))?
                .content,
            usage,
            model: response.model.unwrap_or_else(|| self.model.clone()),
            finish,
        })
    }

    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, LlmError> {
        let decoder = StreamDecoder {
            model: self.model.clone(),
        };
        self.http
            .stream(self.request(req, true)?, None, Framing::ndjson(), decoder)
            .await
    }
}

struct StreamDecoder {
    model: String,
}

impl Decoder for StreamDecoder {
    fn frame(&mut self, frame: Frame) -> Result<Vec<StreamEvent>, LlmError> {
        let line: Response = parse(&frame.data)?;
        if let Some(error) = line.error {
            return Err(LlmError::Server {
                status: 500,
                message: error,
            });
        }
        if let Some(model) = &line.model {
            self.model.clone_from(model);
        }
        let mut events = Vec::new();
        if let Some(text) = line
            .message
            .as_ref()
            .map(|m| &m.content)
            .filter(|t| !t.is_empty())
        {
            events.push(StreamEvent::Token(text.clone()));
        }
        if line.done {
            events.push(StreamEvent::Done {
                usage: line.usage(),
                model: self.model.clone(),
                finish: line.finish(),
            });
        }
        Ok(events)
    }

    fn end(&mut self) -> Result<StreamEvent, LlmError> {
        Err(cut_off())
    }
}
