//! What each provider's real API sends and expects, as documented by its vendor.

use ruleiq_ai::{ProviderName, Usage};
use serde_json::{Value, json};
use wiremock::Request;

use crate::helpers::{INSTRUCTIONS, MAX_TOKENS};

pub const TOKENS: [&str; 4] = ["Access", " rights are", " reviewed", " quarterly [1]."];
pub const ANSWER: &str = "Access rights are reviewed quarterly [1].";
pub const USAGE: Usage = Usage {
    input_tokens: 120,
    output_tokens: 9,
};

pub struct Case {
    pub name: ProviderName,
    pub key: Option<&'static str>,
    /// Appended to the mock server's address to make the configured base URL.
    pub base_path: &'static str,
    pub complete_path: String,
    pub stream_path: String,
    pub stream_content_type: &'static str,
    /// The model name the reply reports (may differ from the one requested).
    pub reported_model: &'static str,
    pub success: Value,
    pub stream_head: &'static str,
    pub token_frame: fn(&str) -> String,
    pub stream_tail: &'static str,
    /// A frame that is not what the API sends.
    pub garbage: &'static str,
    /// A documented "bad request" reply and the message it carries.
    pub bad_request: (u16, Value, &'static str),
    pub unauthorized: Value,
    /// Checks method-independent details: path, headers, body shape.
    pub check: fn(&Request, bool),
}

impl Case {
    pub fn stream_body(&self, tokens: &[&str]) -> String {
        let frames: String = tokens.iter().map(|t| (self.token_frame)(t)).collect();
        format!("{}{frames}{}", self.stream_head, self.stream_tail)
    }

    pub fn partial_stream(&self, tokens: &[&str]) -> String {
        let frames: String = tokens.iter().map(|t| (self.token_frame)(t)).collect();
        format!("{}{frames}", self.stream_head)
    }
}

fn body(req: &Request) -> Value {
    serde_json::from_slice(&req.body).expect("the request body is JSON")
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).map(|v| v.to_str().unwrap())
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

/// The last user message carries the fenced sources and question.
fn assert_fenced(text: &str) {
    assert!(
        text.contains("⟦source 1⟧\nAccess rights are reviewed every quarter"),
        "{text}"
    );
    assert!(
        text.contains("⟦question⟧\nHow often are access rights reviewed?\n⟦/question⟧"),
        "{text}"
    );
}

/// OpenAI and Ollama share the `messages` shape with a leading system message.
fn assert_chat_messages(messages: &Value) {
    let m = messages.as_array().unwrap();
    assert_eq!(m.len(), 4);
    assert_eq!(m[0]["role"], "system");
    assert!(m[0]["content"].as_str().unwrap().starts_with(INSTRUCTIONS));
    assert_eq!(
        m[1],
        json!({"role": "user", "content": "Do we have an access policy?"})
    );
    assert_eq!(
        m[2],
        json!({"role": "assistant", "content": "Yes, POL-7 [1]."})
    );
    assert_eq!(m[3]["role"], "user");
    assert_fenced(m[3]["content"].as_str().unwrap());
    for message in m {
        assert_eq!(keys(message), ["content", "role"]);
    }
}

pub fn openai() -> Case {
    fn check(req: &Request, stream: bool) {
        assert_eq!(req.method.as_str(), "POST");
        assert_eq!(req.url.path(), "/v1/chat/completions");
        assert_eq!(header(req, "authorization"), Some("Bearer sk-test-openai"));
        assert_eq!(header(req, "content-type"), Some("application/json"));
        let b = body(req);
        assert_eq!(b["model"], "gpt-4o-mini");
        assert_eq!(b["max_tokens"], MAX_TOKENS);
        assert_chat_messages(&b["messages"]);
        if stream {
            assert_eq!(
                keys(&b),
                [
                    "max_tokens",
                    "messages",
                    "model",
                    "stream",
                    "stream_options"
                ]
            );
            assert_eq!(b["stream"], true);
            assert_eq!(b["stream_options"], json!({"include_usage": true}));
        } else {
            assert_eq!(keys(&b), ["max_tokens", "messages", "model"]);
        }
    }
    fn token(t: &str) -> String {
        let chunk = json!({
            "id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1_727_000_000,
            "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "delta": {"content": t}, "logprobs": null, "finish_reason": null}],
            "usage": null
        });
        format!("data: {chunk}\n\n")
    }
    Case {
        name: ProviderName::OpenAi,
        key: Some("sk-test-openai"),
        base_path: "/v1",
        complete_path: "/v1/chat/completions".into(),
        stream_path: "/v1/chat/completions".into(),
        stream_content_type: "text/event-stream",
        reported_model: "gpt-4o-mini-2024-07-18",
        success: json!({
            "id": "chatcmpl-9", "object": "chat.completion", "created": 1_727_000_000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER, "refusal": null},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129},
            "system_fingerprint": "fp_1"
        }),
        stream_head: "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1727000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        token_frame: token,
        stream_tail: "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1727000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n\
            data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1727000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":9,\"total_tokens\":129}}\n\n\
            data: [DONE]\n\n",
        garbage: "data: {\"choices\": [{\"delta\": \n\n",
        bad_request: (
            400,
            json!({"error": {
                "message": "Invalid 'messages[3].content': string too long.",
                "type": "invalid_request_error", "param": "messages[3].content", "code": "string_above_max_length"
            }}),
            "Invalid 'messages[3].content': string too long.",
        ),
        unauthorized: json!({"error": {
            "message": "Incorrect API key provided: sk-test-openai. You can find your API key at https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error", "param": null, "code": "invalid_api_key"
        }}),
        check,
    }
}

pub fn anthropic() -> Case {
    fn check(req: &Request, stream: bool) {
        assert_eq!(req.method.as_str(), "POST");
        assert_eq!(req.url.path(), "/v1/messages");
        assert_eq!(header(req, "x-api-key"), Some("sk-ant-test"));
        assert_eq!(header(req, "anthropic-version"), Some("2023-06-01"));
        assert_eq!(header(req, "content-type"), Some("application/json"));
        assert_eq!(header(req, "authorization"), None);
        let b = body(req);
        assert_eq!(b["model"], "claude-3-5-haiku-latest");
        assert_eq!(b["max_tokens"], MAX_TOKENS);
        assert!(b["system"].as_str().unwrap().starts_with(INSTRUCTIONS));
        let m = b["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3, "the system prompt is not a message");
        assert_eq!(
            m[0],
            json!({"role": "user", "content": "Do we have an access policy?"})
        );
        assert_eq!(
            m[1],
            json!({"role": "assistant", "content": "Yes, POL-7 [1]."})
        );
        assert_eq!(m[2]["role"], "user");
        assert_fenced(m[2]["content"].as_str().unwrap());
        if stream {
            assert_eq!(
                keys(&b),
                ["max_tokens", "messages", "model", "stream", "system"]
            );
            assert_eq!(b["stream"], true);
        } else {
            assert_eq!(keys(&b), ["max_tokens", "messages", "model", "system"]);
        }
    }
    fn token(t: &str) -> String {
        let delta = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}});
        format!("event: content_block_delta\ndata: {delta}\n\n")
    }
    Case {
        name: ProviderName::Anthropic,
        key: Some("sk-ant-test"),
        base_path: "",
        complete_path: "/v1/messages".into(),
        stream_path: "/v1/messages".into(),
        stream_content_type: "text/event-stream",
        reported_model: "claude-3-5-haiku-20241022",
        success: json!({
            "id": "msg_01", "type": "message", "role": "assistant",
            "model": "claude-3-5-haiku-20241022",
            "content": [{"type": "text", "text": ANSWER}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 120, "output_tokens": 9}
        }),
        stream_head: "event: message_start\n\
            data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-3-5-haiku-20241022\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":120,\"output_tokens\":1}}}\n\n\
            event: content_block_start\n\
            data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
            event: ping\n\
            data: {\"type\": \"ping\"}\n\n",
        token_frame: token,
        stream_tail: "event: content_block_stop\n\
            data: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
            event: message_delta\n\
            data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":9}}\n\n\
            event: message_stop\n\
            data: {\"type\":\"message_stop\"}\n\n",
        garbage: "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":\n\n",
        bad_request: (
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: 300000 > 8192, which is the maximum allowed"}}),
            "max_tokens: 300000 > 8192, which is the maximum allowed",
        ),
        unauthorized: json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
        check,
    }
}

pub fn gemini() -> Case {
    fn check(req: &Request, stream: bool) {
        assert_eq!(req.method.as_str(), "POST");
        if stream {
            assert_eq!(
                req.url.path(),
                "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
            );
            assert_eq!(req.url.query(), Some("alt=sse"));
        } else {
            assert_eq!(
                req.url.path(),
                "/v1beta/models/gemini-2.0-flash:generateContent"
            );
            assert_eq!(req.url.query(), None, "the key must never be in the URL");
        }
        assert_eq!(header(req, "x-goog-api-key"), Some("AIza-test"));
        assert_eq!(header(req, "content-type"), Some("application/json"));
        let b = body(req);
        assert_eq!(
            keys(&b),
            ["contents", "generationConfig", "systemInstruction"]
        );
        assert_eq!(
            b["generationConfig"],
            json!({"maxOutputTokens": MAX_TOKENS})
        );
        let system = b["systemInstruction"]["parts"][0]["text"].as_str().unwrap();
        assert!(system.starts_with(INSTRUCTIONS));
        let c = b["contents"].as_array().unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0],
            json!({"role": "user", "parts": [{"text": "Do we have an access policy?"}]})
        );
        assert_eq!(
            c[1],
            json!({"role": "model", "parts": [{"text": "Yes, POL-7 [1]."}]})
        );
        assert_eq!(c[2]["role"], "user");
        assert_fenced(c[2]["parts"][0]["text"].as_str().unwrap());
    }
    fn token(t: &str) -> String {
        let chunk = json!({
            "candidates": [{"content": {"parts": [{"text": t}], "role": "model"}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 120, "totalTokenCount": 120},
            "modelVersion": "gemini-2.0-flash"
        });
        format!("data: {chunk}\r\n\r\n")
    }
    Case {
        name: ProviderName::Gemini,
        key: Some("AIza-test"),
        base_path: "",
        complete_path: "/v1beta/models/gemini-2.0-flash:generateContent".into(),
        stream_path: "/v1beta/models/gemini-2.0-flash:streamGenerateContent".into(),
        stream_content_type: "text/event-stream",
        reported_model: "gemini-2.0-flash-001",
        success: json!({
            "candidates": [{
                "content": {"parts": [{"text": "Access rights are reviewed "}, {"text": "quarterly [1]."}], "role": "model"},
                "finishReason": "STOP", "avgLogprobs": -0.12
            }],
            "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 9, "totalTokenCount": 129},
            "modelVersion": "gemini-2.0-flash-001"
        }),
        stream_head: "",
        token_frame: token,
        stream_tail: "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 120,\"candidatesTokenCount\": 9,\"totalTokenCount\": 129},\"modelVersion\": \"gemini-2.0-flash-001\"}\r\n\r\n",
        garbage: "data: {\"candidates\": [{\"content\": \r\n\r\n",
        bad_request: (
            400,
            json!({"error": {
                "code": 400,
                "message": "* GenerateContentRequest.generation_config.max_output_tokens: max_output_tokens must be positive.\n",
                "status": "INVALID_ARGUMENT"
            }}),
            "* GenerateContentRequest.generation_config.max_output_tokens: max_output_tokens must be positive.\n",
        ),
        unauthorized: json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}),
        check,
    }
}

pub fn ollama() -> Case {
    fn check(req: &Request, stream: bool) {
        assert_eq!(req.method.as_str(), "POST");
        assert_eq!(req.url.path(), "/api/chat");
        assert_eq!(header(req, "authorization"), None);
        assert_eq!(header(req, "content-type"), Some("application/json"));
        let b = body(req);
        assert_eq!(keys(&b), ["messages", "model", "options", "stream"]);
        assert_eq!(b["model"], "llama3.1");
        assert_eq!(
            b["stream"], stream,
            "stream is always sent, since Ollama streams by default"
        );
        assert_eq!(b["options"], json!({"num_predict": MAX_TOKENS}));
        assert_chat_messages(&b["messages"]);
    }
    fn token(t: &str) -> String {
        let line = json!({
            "model": "llama3.1", "created_at": "2026-11-26T10:00:00.000Z",
            "message": {"role": "assistant", "content": t}, "done": false
        });
        format!("{line}\n")
    }
    Case {
        name: ProviderName::Ollama,
        key: None,
        base_path: "",
        complete_path: "/api/chat".into(),
        stream_path: "/api/chat".into(),
        stream_content_type: "application/x-ndjson",
        reported_model: "llama3.1:latest",
        success: json!({
            "model": "llama3.1:latest", "created_at": "2026-11-26T10:00:00.000Z",
            "message": {"role": "assistant", "content": ANSWER},
            "done_reason": "stop", "done": true,
            "total_duration": 4_883_583_458u64, "load_duration": 1_334_875,
            "prompt_eval_count": 120, "prompt_eval_duration": 342_546_000,
            "eval_count": 9, "eval_duration": 4_535_599_000u64
        }),
        stream_head: "",
        token_frame: token,
        stream_tail: "{\"model\":\"llama3.1:latest\",\"created_at\":\"2026-11-26T10:00:01.000Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":\"stop\",\"done\":true,\"total_duration\":4883583458,\"prompt_eval_count\":120,\"eval_count\":9}\n",
        garbage: "{\"model\":\"llama3.1\",\"message\":\n",
        bad_request: (
            404,
            json!({"error": "model \"llama3.1\" not found, try pulling it first"}),
            "model \"llama3.1\" not found, try pulling it first",
        ),
        unauthorized: json!({"error": "unauthorized"}),
        check,
    }
}
