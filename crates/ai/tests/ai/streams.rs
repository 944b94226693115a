//! Stream deadlines, which live in the shared HTTP layer: the wait for the first
//! byte and the silence between chunks.

use std::time::{Duration, Instant};

use ruleiq_ai::{Ai, AiSettings, LlmError, ProviderName, Route, providers::connect};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    cases::{self, TOKENS},
    helpers::{Then, collect, config, request, send_part, send_slowly, settings, silent_server},
};

#[tokio::test]
async fn a_stream_that_goes_silent_times_out_after_its_tokens() {
    let case = cases::openai();
    let (first, _) = TOKENS.split_at(2);
    let base = send_part(
        case.stream_content_type,
        case.partial_stream(first),
        Then::Stall,
    )
    .await;
    let provider = connect(
        &config(ProviderName::OpenAi, &format!("{base}/v1"), case.key),
        Duration::from_millis(300),
    )
    .unwrap();

    let started = Instant::now();
    let got = collect(provider.stream(&request()).await.unwrap()).await;
    assert_eq!(got.tokens, first);
    assert_eq!(got.error, Some(LlmError::Timeout));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_provider_that_never_answers_a_stream_is_passed_over() {
    let base = silent_server().await;
    let ai = Ai::new(AiSettings {
        timeout: Duration::from_millis(300),
        max_retries: 0,
        ..settings(vec![config(ProviderName::Ollama, &base, None)])
    });

    let started = Instant::now();
    let answer = ai.stream(&request(), Route::Auto).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer.provider, ProviderName::Offline);
    assert_eq!(
        answer.notices,
        ["ollama failed (timed out); answered offline from your own documents"]
    );
    assert!(collect(answer.events).await.done.is_some());
}

#[tokio::test]
async fn a_long_stream_is_not_cut_by_the_request_timeout() {
    // Each chunk arrives within the deadline, but the whole body takes about three
    // times as long: a streamed answer must not be cut at the request timeout.
    let case = cases::ollama();
    let mut frames: Vec<String> = TOKENS.iter().map(|t| (case.token_frame)(t)).collect();
    frames.push(case.stream_tail.to_owned());
    let base = send_slowly(case.stream_content_type, frames, Duration::from_millis(150)).await;
    let provider = connect(
        &config(ProviderName::Ollama, &base, None),
        Duration::from_millis(300),
    )
    .unwrap();

    let started = Instant::now();
    let got = collect(provider.stream(&request()).await.unwrap()).await;
    assert!(
        started.elapsed() > Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(got.error, None);
    assert_eq!(got.tokens, TOKENS);
    assert!(got.done.is_some());
}

#[tokio::test]
async fn google_reports_a_wrong_key_as_a_400_that_still_means_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1beta/models/gemini-2.0-flash:generateContent"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"}
                }]
            }
        })))
        .mount(&server)
        .await;
    let provider = connect(
        &config(ProviderName::Gemini, &server.uri(), Some("AIza-wrong")),
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(
        provider.complete(&request()).await.unwrap_err(),
        LlmError::Unauthorized("API key not valid. Please pass a valid API key.".into())
    );
}
