//! The same behaviours checked against each remote provider's wire format.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use ruleiq_ai::{
    Ai, AiSettings, BreakerState, Finish, LlmError, LlmProvider, ProviderName, Route, StreamEvent,
    providers::connect,
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    cases::{ANSWER, Case, TOKENS, USAGE},
    helpers::{Then, collect, config, request, send_part, settings},
};

struct Setup {
    server: MockServer,
    case: Case,
}

impl Setup {
    async fn new(case: Case) -> Self {
        Setup {
            server: MockServer::start().await,
            case,
        }
    }

    fn base(&self) -> String {
        format!("{}{}", self.server.uri(), self.case.base_path)
    }

    fn settings(&self) -> AiSettings {
        settings(vec![config(self.case.name, &self.base(), self.case.key)])
    }

    fn ai(&self) -> Ai {
        Ai::new(self.settings())
    }

    fn provider(&self, timeout: Duration) -> Arc<dyn LlmProvider> {
        connect(
            &config(self.case.name, &self.base(), self.case.key),
            timeout,
        )
        .unwrap()
    }

    fn complete_mock(&self, response: ResponseTemplate) -> Mock {
        Mock::given(method("POST"))
            .and(path(self.case.complete_path.as_str()))
            .respond_with(response)
    }

    fn stream_response(&self, body: String) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_raw(body, self.case.stream_content_type)
    }

    async fn requests(&self) -> Vec<wiremock::Request> {
        self.server.received_requests().await.unwrap()
    }

    fn status(&self, ai: &Ai) -> ruleiq_ai::ProviderStatus {
        ai.statuses()
            .into_iter()
            .find(|s| s.name == self.case.name)
            .unwrap()
    }
}

fn success(case: &Case) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(&case.success)
}

pub async fn complete_sends_the_documented_request_and_parses_the_reply(case: Case) {
    let s = Setup::new(case).await;
    s.complete_mock(success(&s.case))
        .expect(1)
        .mount(&s.server)
        .await;

    let answer = s.ai().complete(&request(), Route::Auto).await;

    assert_eq!(answer.provider, s.case.name);
    assert_eq!(answer.notices, Vec::<String>::new());
    let c = answer.completion;
    assert_eq!(c.text, ANSWER);
    assert_eq!(c.usage, USAGE);
    assert_eq!(c.finish, Finish::Stop);
    assert_eq!(c.model, s.case.reported_model);
    (s.case.check)(&s.requests().await[0], false);
}

pub async fn stream_sends_the_documented_request_and_parses_events(case: Case) {
    let s = Setup::new(case).await;
    Mock::given(method("POST"))
        .and(path(s.case.stream_path.as_str()))
        .respond_with(s.stream_response(s.case.stream_body(&TOKENS)))
        .expect(1)
        .mount(&s.server)
        .await;

    let answer = s.ai().stream(&request(), Route::Auto).await;
    assert_eq!(answer.provider, s.case.name);
    let got = collect(answer.events).await;

    assert_eq!(got.tokens, TOKENS);
    assert_eq!(got.text(), ANSWER);
    assert_eq!(got.error, None);
    assert_eq!(
        got.done,
        Some(StreamEvent::Done {
            usage: USAGE,
            model: s.case.reported_model.to_owned(),
            finish: Finish::Stop
        })
    );
    (s.case.check)(&s.requests().await[0], true);
}

pub async fn the_api_error_body_becomes_a_bad_request_with_its_message(case: Case) {
    let s = Setup::new(case).await;
    let (status, body, message) = s.case.bad_request.clone();
    s.complete_mock(ResponseTemplate::new(status).set_body_json(body))
        .mount(&s.server)
        .await;

    let err = s
        .provider(Duration::from_secs(5))
        .complete(&request())
        .await
        .unwrap_err();
    assert_eq!(err, LlmError::BadRequest(message.to_owned()));

    // Not retried: the same request would be refused again.
    let answer = s.ai().complete(&request(), Route::Auto).await;
    assert_eq!(answer.provider, ProviderName::Offline);
    assert_eq!(
        answer.notices,
        [format!(
            "{} failed (request refused); answered offline from your own documents",
            s.case.name
        )]
    );
    assert_eq!(s.requests().await.len(), 2);
}

pub async fn unauthorized_opens_the_breaker_and_falls_back(case: Case) {
    let s = Setup::new(case).await;
    s.complete_mock(ResponseTemplate::new(401).set_body_json(&s.case.unauthorized))
        .mount(&s.server)
        .await;

    let err = s
        .provider(Duration::from_secs(5))
        .complete(&request())
        .await
        .unwrap_err();
    let LlmError::Unauthorized(message) = &err else {
        panic!("expected Unauthorized, got {err:?}");
    };
    if let Some(key) = s.case.key {
        assert!(!message.contains(key), "the key leaked into {message}");
        assert!(!err.to_string().contains(key));
    }

    let ai = s.ai();
    let answer = ai.complete(&request(), Route::Auto).await;
    assert_eq!(answer.provider, ProviderName::Offline);
    assert_eq!(
        answer.notices,
        [format!(
            "{} failed (invalid API key); answered offline from your own documents",
            s.case.name
        )]
    );
    assert!(
        answer.completion.text.contains("[1]"),
        "the offline answer quotes the source"
    );
    assert_eq!(
        s.requests().await.len(),
        2,
        "a rejected key is never retried"
    );

    let status = s.status(&ai);
    assert_eq!(
        status.state,
        BreakerState::Open,
        "one rejected key opens the breaker"
    );
    assert_eq!(status.last_error.as_deref(), Some("invalid API key"));
    if let Some(key) = s.case.key {
        assert!(!format!("{:?}", ai.statuses()).contains(key));
        assert!(!format!("{ai:?}").contains(key));
    }

    // While open, calls skip the provider without a request.
    let answer = ai.complete(&request(), Route::Auto).await;
    assert_eq!(answer.provider, ProviderName::Offline);
    assert_eq!(
        answer.notices,
        [format!(
            "{} is paused after repeated failures; answered offline from your own documents",
            s.case.name
        )]
    );
    let answer = ai.stream(&request(), Route::Auto).await;
    assert_eq!(answer.provider, ProviderName::Offline);
    assert_eq!(s.requests().await.len(), 2);
}

pub async fn a_rate_limit_is_retried_after_its_retry_after(case: Case) {
    let s = Setup::new(case).await;
    s.complete_mock(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "1")
            .set_body_json(
                serde_json::json!({"error": {"message": "Rate limit reached", "code": 429}}),
            ),
    )
    .up_to_n_times(1)
    .with_priority(1)
    .mount(&s.server)
    .await;
    s.complete_mock(success(&s.case)).mount(&s.server).await;

    let started = Instant::now();
    let answer = s.ai().complete(&request(), Route::Auto).await;
    let waited = started.elapsed();

    assert_eq!(answer.provider, s.case.name);
    assert_eq!(answer.completion.text, ANSWER);
    assert!(answer.notices.is_empty());
    assert_eq!(s.requests().await.len(), 2);
    assert!(
        waited >= Duration::from_millis(950),
        "waited only {waited:?}"
    );
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
}

pub async fn server_errors_are_retried_until_success(case: Case) {
    let s = Setup::new(case).await;
    s.complete_mock(ResponseTemplate::new(500).set_body_string("upstream error"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&s.server)
        .await;
    s.complete_mock(success(&s.case)).mount(&s.server).await;

    let ai = s.ai();
    let answer = ai.complete(&request(), Route::Auto).await;

    assert_eq!(answer.provider, s.case.name);
    assert_eq!(answer.completion.text, ANSWER);
    assert_eq!(s.requests().await.len(), 3);
    // One call that succeeded after retries is not a failure.
    assert_eq!(s.status(&ai).state, BreakerState::Closed);
}

pub async fn a_slow_provider_times_out_and_falls_back(case: Case) {
    let s = Setup::new(case).await;
    s.complete_mock(success(&s.case).set_delay(Duration::from_secs(3)))
        .mount(&s.server)
        .await;

    let err = s
        .provider(Duration::from_millis(300))
        .complete(&request())
        .await
        .unwrap_err();
    assert_eq!(err, LlmError::Timeout);

    let ai = Ai::new(AiSettings {
        timeout: Duration::from_millis(300),
        max_retries: 1,
        ..s.settings()
    });
    let started = Instant::now();
    let answer = ai.complete(&request(), Route::Auto).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer.provider, ProviderName::Offline);
    assert_eq!(
        answer.notices,
        [format!(
            "{} failed (timed out); answered offline from your own documents",
            s.case.name
        )]
    );
    // One direct call, then one call with one retry.
    assert_eq!(s.requests().await.len(), 3);
    assert_eq!(s.status(&ai).last_error.as_deref(), Some("timed out"));
}

pub async fn malformed_json_is_reported(case: Case) {
    let s = Setup::new(case).await;
    s.complete_mock(
        ResponseTemplate::new(200)
            .set_body_raw("{\"choices\": [{\"message\": ", "application/json"),
    )
    .mount(&s.server)
    .await;

    let err = s
        .provider(Duration::from_secs(5))
        .complete(&request())
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Malformed(_)), "{err:?}");
}

pub async fn a_stream_that_hangs_up_mid_answer_ends_in_an_error(case: Case) {
    let (first, _) = TOKENS.split_at(2);
    let base = send_part(
        case.stream_content_type,
        case.partial_stream(first),
        Then::HangUp,
    )
    .await;
    let ai = Ai::new(settings(vec![config(
        case.name,
        &format!("{base}{}", case.base_path),
        case.key,
    )]));

    let answer = ai.stream(&request(), Route::Auto).await;
    // Tokens were sent, so there is no falling over to another provider.
    assert_eq!(answer.provider, case.name);
    assert!(answer.notices.is_empty());
    let got = collect(answer.events).await;
    assert_eq!(got.tokens, first);
    assert_eq!(got.done, None);
    assert!(
        matches!(got.error, Some(LlmError::Transport(_))),
        "{:?}",
        got.error
    );
}

pub async fn a_stream_that_turns_to_garbage_ends_in_an_error(case: Case) {
    let s = Setup::new(case).await;
    let (first, _) = TOKENS.split_at(2);
    let body = format!("{}{}", s.case.partial_stream(first), s.case.garbage);
    Mock::given(method("POST"))
        .and(path(s.case.stream_path.as_str()))
        .respond_with(s.stream_response(body))
        .mount(&s.server)
        .await;

    let events = s
        .provider(Duration::from_secs(5))
        .stream(&request())
        .await
        .unwrap();
    let got = collect(events).await;
    assert_eq!(got.tokens, first);
    assert_eq!(got.done, None);
    assert!(
        matches!(got.error, Some(LlmError::Malformed(_))),
        "{:?}",
        got.error
    );
}

pub async fn a_stream_ending_without_its_end_marker_is_cut_short(case: Case) {
    let s = Setup::new(case).await;
    let (first, _) = TOKENS.split_at(3);
    Mock::given(method("POST"))
        .and(path(s.case.stream_path.as_str()))
        .respond_with(s.stream_response(s.case.partial_stream(first)))
        .mount(&s.server)
        .await;

    let got = collect(
        s.provider(Duration::from_secs(5))
            .stream(&request())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.tokens, first);
    assert!(
        matches!(got.error, Some(LlmError::Transport(_))),
        "{:?}",
        got.error
    );
}

macro_rules! provider_tests {
    ($module:ident, $case:path) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn complete_request_and_reply() {
                complete_sends_the_documented_request_and_parses_the_reply($case()).await;
            }

            #[tokio::test]
            async fn stream_request_and_events() {
                stream_sends_the_documented_request_and_parses_events($case()).await;
            }

            #[tokio::test]
            async fn api_error_body() {
                the_api_error_body_becomes_a_bad_request_with_its_message($case()).await;
            }

            #[tokio::test]
            async fn unauthorized() {
                unauthorized_opens_the_breaker_and_falls_back($case()).await;
            }

            #[tokio::test]
            async fn rate_limited() {
                a_rate_limit_is_retried_after_its_retry_after($case()).await;
            }

            #[tokio::test]
            async fn server_errors() {
                server_errors_are_retried_until_success($case()).await;
            }

            #[tokio::test]
            async fn timeout() {
                a_slow_provider_times_out_and_falls_back($case()).await;
            }

            #[tokio::test]
            async fn malformed() {
                malformed_json_is_reported($case()).await;
            }

            #[tokio::test]
            async fn stream_hang_up() {
                a_stream_that_hangs_up_mid_answer_ends_in_an_error($case()).await;
            }

            #[tokio::test]
            async fn stream_garbage() {
                a_stream_that_turns_to_garbage_ends_in_an_error($case()).await;
            }

            #[tokio::test]
            async fn stream_without_end() {
                a_stream_ending_without_its_end_marker_is_cut_short($case()).await;
            }
        }
    };
}

provider_tests!(openai, crate::cases::openai);
provider_tests!(anthropic, crate::cases::anthropic);
provider_tests!(gemini, crate::cases::gemini);
provider_tests!(ollama, crate::cases::ollama);
