//! The chain as a whole: preference order, notices, breakers across calls, routes.

use std::time::Duration;

use ruleiq_ai::{Ai, AiSettings, BreakerState, ProviderName, Route, Task, offline::NOTHING_FOUND};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    cases::{self, ANSWER, TOKENS},
    helpers::{collect, config, request, settings},
};

async fn mount(server: &MockServer, route: &str, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(response)
        .mount(server)
        .await;
}

fn openai_at(server: &MockServer) -> ruleiq_ai::ProviderConfig {
    config(
        ProviderName::OpenAi,
        &format!("{}/v1", server.uri()),
        Some("sk-test-openai"),
    )
}

fn anthropic_at(server: &MockServer) -> ruleiq_ai::ProviderConfig {
    config(ProviderName::Anthropic, &server.uri(), Some("sk-ant-test"))
}

#[tokio::test]
async fn a_rejected_key_falls_back_to_the_next_provider_with_a_notice() {
    let (openai, anthropic) = (MockServer::start().await, MockServer::start().await);
    mount(
        &openai,
        "/v1/chat/completions",
        ResponseTemplate::new(401).set_body_json(cases::openai().unauthorized),
    )
    .await;
    mount(
        &anthropic,
        "/v1/messages",
        ResponseTemplate::new(200).set_body_json(cases::anthropic().success),
    )
    .await;
    let ai = Ai::new(settings(vec![openai_at(&openai), anthropic_at(&anthropic)]));

    let answer = ai.complete(&request(), Route::Auto).await;

    assert_eq!(answer.provider, ProviderName::Anthropic);
    assert_eq!(answer.completion.text, ANSWER);
    assert_eq!(
        answer.notices,
        ["openai failed (invalid API key); answered by anthropic"]
    );
    let statuses = ai.statuses();
    assert_eq!(statuses[0].state, BreakerState::Open);
    assert_eq!(statuses[1].state, BreakerState::Closed);
}

#[tokio::test]
async fn a_stream_that_fails_before_its_first_token_falls_over() {
    let (openai, anthropic) = (MockServer::start().await, MockServer::start().await);
    mount(
        &openai,
        "/v1/chat/completions",
        ResponseTemplate::new(503).set_body_json(
            serde_json::json!({"error": {"message": "The server is overloaded", "type": "server_error"}}),
        ),
    )
    .await;
    let case = cases::anthropic();
    mount(
        &anthropic,
        "/v1/messages",
        ResponseTemplate::new(200).set_body_raw(case.stream_body(&TOKENS), "text/event-stream"),
    )
    .await;
    let ai = Ai::new(AiSettings {
        max_retries: 1,
        ..settings(vec![openai_at(&openai), anthropic_at(&anthropic)])
    });

    let answer = ai.stream(&request(), Route::Auto).await;

    assert_eq!(answer.provider, ProviderName::Anthropic);
    assert_eq!(answer.model, "claude-3-5-haiku-latest");
    assert_eq!(
        answer.notices,
        ["openai failed (server error 503); answered by anthropic"]
    );
    let got = collect(answer.events).await;
    assert_eq!(got.text(), ANSWER);
    assert!(got.done.is_some());
    assert_eq!(
        openai.received_requests().await.unwrap().len(),
        2,
        "tried, retried once"
    );
}

#[tokio::test]
async fn an_error_event_before_any_token_also_falls_over() {
    let (anthropic, openai) = (MockServer::start().await, MockServer::start().await);
    let overloaded = "event: message_start\n\
        data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-3-5-haiku-20241022\",\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n\
        event: error\n\
        data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    mount(
        &anthropic,
        "/v1/messages",
        ResponseTemplate::new(200).set_body_raw(overloaded, "text/event-stream"),
    )
    .await;
    let case = cases::openai();
    mount(
        &openai,
        "/v1/chat/completions",
        ResponseTemplate::new(200).set_body_raw(case.stream_body(&TOKENS), "text/event-stream"),
    )
    .await;
    let ai = Ai::new(AiSettings {
        max_retries: 0,
        ..settings(vec![anthropic_at(&anthropic), openai_at(&openai)])
    });

    let answer = ai.stream(&request(), Route::Auto).await;
    assert_eq!(answer.provider, ProviderName::OpenAi);
    assert_eq!(
        answer.notices,
        ["anthropic failed (server error 529); answered by openai"]
    );
    assert_eq!(collect(answer.events).await.text(), ANSWER);
}

#[tokio::test]
async fn the_breaker_opens_after_consecutive_failed_calls_and_recovers_after_cool_down() {
    let server = MockServer::start().await;
    mount(
        &server,
        "/v1/chat/completions",
        ResponseTemplate::new(500).set_body_string("boom"),
    )
    .await;
    let ai = Ai::new(AiSettings {
        max_retries: 1,
        breaker_failures: 2,
        breaker_cool_down: Duration::from_millis(300),
        ..settings(vec![openai_at(&server)])
    });

    for _ in 0..2 {
        assert_eq!(
            ai.complete(&request(), Route::Auto).await.provider,
            ProviderName::Offline
        );
    }
    // Two calls of two attempts each; the breaker counts calls.
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
    assert_eq!(ai.statuses()[0].state, BreakerState::Open);
    assert_eq!(
        ai.statuses()[0].last_error.as_deref(),
        Some("server error 500")
    );

    let answer = ai.complete(&request(), Route::Auto).await;
    assert_eq!(
        answer.notices,
        ["openai is paused after repeated failures; answered offline from your own documents"]
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 4);

    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(ai.statuses()[0].state, BreakerState::HalfOpen);
    server.reset().await;
    mount(
        &server,
        "/v1/chat/completions",
        ResponseTemplate::new(200).set_body_json(cases::openai().success),
    )
    .await;
    let answer = ai.complete(&request(), Route::Auto).await;
    assert_eq!(answer.provider, ProviderName::OpenAi);
    assert!(answer.notices.is_empty());
    assert_eq!(ai.statuses()[0].state, BreakerState::Closed);
}

#[tokio::test]
async fn preference_order_is_followed_and_offline_only_stays_local() {
    let (openai, anthropic) = (MockServer::start().await, MockServer::start().await);
    mount(
        &openai,
        "/v1/chat/completions",
        ResponseTemplate::new(200).set_body_json(cases::openai().success),
    )
    .await;
    mount(
        &anthropic,
        "/v1/messages",
        ResponseTemplate::new(200).set_body_json(cases::anthropic().success),
    )
    .await;
    let ai = Ai::new(settings(vec![
        anthropic_at(&anthropic),
        openai_at(&openai),
        anthropic_at(&openai),
    ]));

    assert_eq!(
        ai.complete(&request(), Route::Auto).await.provider,
        ProviderName::Anthropic
    );

    let local = ai.complete(&request(), Route::OfflineOnly).await;
    assert_eq!(local.provider, ProviderName::Offline);
    assert!(local.notices.is_empty());
    let streamed = ai.stream(&request(), Route::OfflineOnly).await;
    assert_eq!(streamed.provider, ProviderName::Offline);
    assert_eq!(collect(streamed.events).await.text(), local.completion.text);

    assert_eq!(openai.received_requests().await.unwrap().len(), 0);
    assert_eq!(anthropic.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn offline_only_answers_policies_and_says_when_it_found_nothing() {
    let ai = Ai::offline_only();
    assert!(ai.statuses().iter().take(4).all(|s| !s.configured));

    let mut req = request();
    req.messages = vec![ruleiq_ai::Message::user("What is on the canteen menu?")];
    let answer = ai.complete(&req, Route::Auto).await;
    assert_eq!(answer.completion.text, NOTHING_FOUND);
    assert_eq!(
        answer.notices,
        ["No AI provider is configured, so this answer quotes your own documents directly."]
    );

    req.task = Task::Policy;
    let answer = ai.complete(&req, Route::Auto).await;
    assert!(
        answer
            .completion
            .text
            .starts_with("No AI provider was available to write this policy")
    );
    assert!(
        answer
            .notices
            .iter()
            .any(|n| n.contains("no policy draft was supplied"))
    );

    req.draft = Some("# Acceptable Use Policy\n\nOwner: {{owner}}\n".into());
    let answer = ai.complete(&req, Route::Auto).await;
    assert_eq!(
        answer.completion.text,
        "# Acceptable Use Policy\n\nOwner: {{owner}}\n"
    );
    let streamed = ai.stream(&req, Route::OfflineOnly).await;
    assert_eq!(
        collect(streamed.events).await.text(),
        answer.completion.text
    );
}
