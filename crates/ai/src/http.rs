//! What the four remote providers share: sending with a deadline, turning an HTTP
//! failure into an [`LlmError`], and driving a streamed body chunk by chunk.

use std::{collections::VecDeque, error::Error as _, time::Duration};

use bytes::Bytes;
use futures::{StreamExt, stream::BoxStream};
use reqwest::{RequestBuilder, Response, StatusCode, header::RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use url::Url;

use crate::{
    EventStream, LlmError, StreamEvent,
    resilience::parse_retry_after,
    sse::{Frame, Framing},
};

/// Longest part of an unparseable error body quoted in an error, so an HTML error
/// page from a proxy does not end up whole in a log line.
const MAX_QUOTED_BODY: usize = 200;

/// The shared client and the deadline every call gets.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    pub client: reqwest::Client,
    /// For `complete`, the whole request; for `stream`, the wait for the response
    /// headers and then the longest silence between two chunks.
    pub timeout: Duration,
}

impl Http {
    /// Sends a request and decodes its whole JSON body.
    pub async fn call<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        key: Option<&SecretString>,
    ) -> Result<T, LlmError> {
        let response = request
            .timeout(self.timeout)
            .send()
            .await
            .map_err(from_reqwest)?;
        if !response.status().is_success() {
            return Err(error_from_response(response, key).await);
        }
        let body = response.bytes().await.map_err(from_reqwest)?;
        serde_json::from_slice(&body).map_err(|e| LlmError::Malformed(e.to_string()))
    }

    /// Sends a streaming request and hands its body to `decoder` as it arrives.
    pub async fn stream<D: Decoder>(
        &self,
        request: RequestBuilder,
        key: Option<&SecretString>,
        framing: Framing,
        decoder: D,
    ) -> Result<EventStream, LlmError> {
        // No whole-request timeout here: a long answer may rightly stream for
        // minutes. The deadline applies to the first byte and to each silence.
        let response = tokio::time::timeout(self.timeout, request.send())
            .await
            .map_err(|_| LlmError::Timeout)?
            .map_err(from_reqwest)?;
        if !response.status().is_success() {
            let error = tokio::time::timeout(self.timeout, error_from_response(response, key))
                .await
                .unwrap_or(LlmError::Timeout);
            return Err(error);
        }
        Ok(drive(response, self.timeout, framing, decoder))
    }
}

/// `{base}/a/b/c`, whatever the base ends with.
pub(crate) fn endpoint(base: &Url, segments: &[&str]) -> Result<Url, LlmError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| LlmError::BadRequest(format!("`{base}` cannot be used as a base URL")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

pub(crate) fn from_reqwest(e: reqwest::Error) -> LlmError {
    if e.is_timeout() {
        return LlmError::Timeout;
    }
    // JSON is decoded here, not by reqwest, so a reqwest "decode" error is a body
    // that broke off in transit (a dropped connection mid-chunk), not bad JSON.
    LlmError::Transport(describe(&e.without_url()))
}

/// The error and its causes on one line, because reqwest's own message ("error
/// sending request") hides the useful part in the source chain.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Classifies a non-2xx response, quoting the provider's own explanation.
pub(crate) async fn error_from_response(
    response: Response,
    key: Option<&SecretString>,
) -> LlmError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
    let body = response.text().await.unwrap_or_default();
    let message = redact(&api_message(&body, status), key);
    if key_rejected(&body) {
        return LlmError::Unauthorized(message);
    }
    classify(status, message, retry_after)
}

fn classify(status: StatusCode, message: String, retry_after: Option<Duration>) -> LlmError {
    match status.as_u16() {
        401 | 403 => LlmError::Unauthorized(message),
        408 => LlmError::Timeout,
        429 => LlmError::RateLimited { retry_after },
        s @ 500..=599 => LlmError::Server { status: s, message },
        _ => LlmError::BadRequest(message),
    }
}

/// Google reports a wrong key as a 400 whose details carry `API_KEY_INVALID`; it
/// must count as a rejected key, not as a bad request.
fn key_rejected(body: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return false;
    };
    value
        .pointer("/error/details")
        .and_then(|d| d.as_array())
        .is_some_and(|details| {
            details
                .iter()
                .any(|d| d.get("reason").and_then(|r| r.as_str()) == Some("API_KEY_INVALID"))
        })
}

/// The message inside the error bodies the providers document:
/// `{"error":{"message":..}}` (OpenAI, Gemini, Anthropic's nested form) or
/// `{"error":".."}` (Ollama). Anything else is quoted briefly.
fn api_message(body: &str, status: StatusCode) -> String {
    let parsed = serde_json::from_str::<serde_json::Value>(body).ok();
    let found = parsed.as_ref().and_then(|v| {
        let error = v.get("error")?;
        error
            .as_str()
            .or_else(|| error.get("message").and_then(|m| m.as_str()))
            .map(str::to_owned)
    });
    found.unwrap_or_else(|| {
        let trimmed = body.trim();
        if trimmed.is_empty() {
            format!("HTTP {status}")
        } else {
            let quoted: String = trimmed.chars().take(MAX_QUOTED_BODY).collect();
            format!("HTTP {status}: {quoted}")
        }
    })
}

/// Providers sometimes echo (part of) the key back; it must not travel further.
pub(crate) fn redact(text: &str, key: Option<&SecretString>) -> String {
    match key.map(|k| k.expose_secret()).filter(|k| k.len() >= 4) {
        Some(k) => text.replace(k, "[redacted]"),
        None => text.to_owned(),
    }
}

/// Turns one provider's frames into [`StreamEvent`]s.
pub(crate) trait Decoder: Send + 'static {
    /// Events for one frame. Returning a `Done` ends the stream.
    ///
    /// # Errors
    /// A frame that is malformed or reports an error from the provider.
    fn frame(&mut self, frame: Frame) -> Result<Vec<StreamEvent>, LlmError>;

    /// Called when the body ends before a `Done`: either the last event (for
    /// providers with no end marker) or the error that the answer was cut off.
    ///
    /// # Errors
    /// When the body ended before the provider said the answer was complete.
    fn end(&mut self) -> Result<StreamEvent, LlmError>;
}

/// The error for a body that stopped before its end marker.
pub(crate) fn cut_off() -> LlmError {
    LlmError::Transport("the stream ended before the answer was complete".to_owned())
}

struct Driver<D> {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    framing: Framing,
    decoder: D,
    idle: Duration,
    queue: VecDeque<Result<StreamEvent, LlmError>>,
    over: bool,
}

impl<D: Decoder> Driver<D> {
    fn frames(&mut self, frames: Vec<Frame>) {
        for frame in frames {
            match self.decoder.frame(frame) {
                Ok(events) => {
                    let done = events.iter().any(|e| matches!(e, StreamEvent::Done { .. }));
                    self.queue.extend(events.into_iter().map(Ok));
                    if done {
                        return;
                    }
                }
                Err(e) => {
                    self.queue.push_back(Err(e));
                    return;
                }
            }
        }
    }

    async fn read(&mut self) {
        match tokio::time::timeout(self.idle, self.body.next()).await {
            Err(_) => self.queue.push_back(Err(LlmError::Timeout)),
            Ok(Some(Err(e))) => self.queue.push_back(Err(from_reqwest(e))),
            Ok(Some(Ok(chunk))) => {
                let frames = self.framing.feed(&chunk);
                self.frames(frames);
            }
            Ok(None) => {
                let frames = self.framing.finish();
                self.frames(frames);
                let finished = self
                    .queue
                    .iter()
                    .any(|e| matches!(e, Ok(StreamEvent::Done { .. }) | Err(_)));
                if !finished {
                    let last = self.decoder.end();
                    self.queue.push_back(last);
                }
            }
        }
    }
}

/// Reads the body incrementally: one network chunk at a time, never the whole body.
fn drive<D: Decoder>(
    response: Response,
    idle: Duration,
    framing: Framing,
    decoder: D,
) -> EventStream {
    let driver = Driver {
        body: response.bytes_stream().boxed(),
        framing,
        decoder,
        idle,
        queue: VecDeque::new(),
        over: false,
    };
    futures::stream::unfold(driver, |mut d| async move {
        loop {
            if let Some(item) = d.queue.pop_front() {
                if matches!(item, Err(_) | Ok(StreamEvent::Done { .. })) {
                    d.over = true;
                    d.queue.clear();
                }
                return Some((item, d));
            }
            if d.over {
                return None;
            }
            d.read().await;
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_come_from_each_documented_body() {
        let s = StatusCode::BAD_REQUEST;
        assert_eq!(
            api_message(
                r#"{"error":{"message":"bad model","type":"invalid_request_error","code":null}}"#,
                s
            ),
            "bad model"
        );
        assert_eq!(
            api_message(
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}}"#,
                s
            ),
            "max_tokens: too big"
        );
        assert_eq!(
            api_message(r#"{"error":"model 'llama9' not found"}"#, s),
            "model 'llama9' not found"
        );
        assert_eq!(api_message("", s), "HTTP 400 Bad Request");
        let long = "x".repeat(1000);
        assert_eq!(
            api_message(&long, s).len(),
            "HTTP 400 Bad Request: ".len() + 200
        );
    }

    #[test]
    fn keys_are_redacted() {
        let key = SecretString::from("sk-very-secret");
        assert_eq!(
            redact("Incorrect API key provided: sk-very-secret.", Some(&key)),
            "Incorrect API key provided: [redacted]."
        );
    }

    #[test]
    fn endpoints_join_whatever_the_base_ends_with() {
        for base in ["https://api.openai.com/v1", "https://api.openai.com/v1/"] {
            let url = endpoint(&Url::parse(base).unwrap(), &["chat", "completions"]).unwrap();
            assert_eq!(url.as_str(), "https://api.openai.com/v1/chat/completions");
        }
        let url = endpoint(
            &Url::parse("https://generativelanguage.googleapis.com").unwrap(),
            &["v1beta", "models", "gemini-2.0-flash:generateContent"],
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
        );
    }

    #[test]
    fn statuses_map_to_errors() {
        assert!(matches!(
            classify(StatusCode::FORBIDDEN, String::new(), None),
            LlmError::Unauthorized(_)
        ));
        assert!(matches!(
            classify(StatusCode::from_u16(529).unwrap(), String::new(), None),
            LlmError::Server { status: 529, .. }
        ));
        assert!(
            matches!(classify(StatusCode::NOT_FOUND, "m".into(), None), LlmError::BadRequest(m) if m == "m")
        );
    }
}
