//! Error reporting: with `SENTRY_DSN` set, a 5xx answer of the real application
//! reaches a local server that takes Sentry's envelope format, with the request id,
//! route and release, and without the user's address, password or token.

use reqwest::{Method, StatusCode};
use ruleiq_db::sea_orm::ConnectionTrait;
use ruleiq_test_support::TestApp;
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    assessments::send,
    members::{PASSWORD, owner},
};

/// The envelopes the mock Sentry has received so far, as (auth header, event).
async fn envelopes(sentry: &MockServer) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for request in sentry.received_requests().await.unwrap_or_default() {
        let auth = request
            .headers
            .get("x-sentry-auth")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = String::from_utf8(request.body.clone()).unwrap();
        let lines: Vec<&str> = body.trim_end().split('\n').collect();
        assert_eq!(lines.len(), 3, "an envelope is three lines: {body}");
        let item: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(item["type"], "event");
        assert_eq!(item["length"], lines[2].len(), "the item length is exact");
        out.push((auth, body.clone(), serde_json::from_str(lines[2]).unwrap()));
    }
    out
}

#[tokio::test]
async fn a_server_error_reaches_sentry_with_request_id_route_and_release_and_no_personal_data() {
    let sentry = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/4507/envelope/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "x"})))
        .mount(&sentry)
        .await;
    let dsn = format!("http://pubkey0123@{}/4507", sentry.address());
    let app = TestApp::spawn_with(|raw| {
        raw.sentry_dsn = Some(ruleiq_config::raw::Text(dsn));
    })
    .await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;

    // Client errors are the client's: nothing is reported for them.
    let (status, _) = send(&app, Method::GET, "/reports/not-a-uuid", &ann.token, None).await;
    assert!(status.is_client_error(), "{status}");
    let (status, _) = send(&app, Method::GET, "/no/such/route", &ann.token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A table gone from under the application: the next read of it is our failure.
    app.components
        .db
        .execute_unprepared("DROP TABLE notification_preferences")
        .await
        .unwrap();
    let (status, problem) = send(
        &app,
        Method::GET,
        "/notifications/preferences",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{problem}");
    let request_id = problem["request_id"].as_str().unwrap().to_owned();
    assert!(
        !problem.to_string().contains("notification_preferences"),
        "the client never sees the cause: {problem}"
    );

    let mut received = Vec::new();
    for _ in 0..200 {
        received = envelopes(&sentry).await;
        if !received.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give a stray second report (there must be none) a moment to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = if received.is_empty() {
        received
    } else {
        envelopes(&sentry).await
    };
    // The panic hook is the process's: a test failing elsewhere in this binary while
    // this one runs is reported too, as a panic outside any request. Those are not
    // this application's answers.
    let received: Vec<_> = received
        .into_iter()
        .filter(|(_, _, event)| event["tags"]["route"].is_string())
        .collect();
    assert_eq!(
        received.len(),
        1,
        "one report, for the 500 only: {received:?}"
    );
    let (auth, raw, event) = &received[0];
    assert!(auth.starts_with("Sentry "), "{auth}");
    assert!(auth.contains("sentry_version=7"), "{auth}");
    assert!(auth.contains("sentry_key=pubkey0123"), "{auth}");
    assert_eq!(event["level"], "error");
    assert_eq!(
        event["release"],
        format!("ruleiq@{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(event["environment"], "test");
    assert_eq!(event["tags"]["request_id"], request_id.as_str());
    assert_eq!(event["tags"]["route"], "/api/v1/notifications/preferences");
    assert_eq!(event["tags"]["method"], "GET");
    assert_eq!(event["tags"]["status"], "500");
    let value = event["exception"]["values"][0]["value"].as_str().unwrap();
    assert!(
        value.contains("notification_preferences"),
        "the cause: {value}"
    );
    for private in [
        "ann@example.co.uk",
        PASSWORD,
        ann.token.as_str(),
        ann.id.as_str(),
    ] {
        assert!(
            !raw.contains(private),
            "{private} must not be reported: {raw}"
        );
    }
}

#[tokio::test]
async fn a_dsn_that_is_not_one_stops_the_settings_with_the_reason() {
    let db = ruleiq_test_support::TestDatabase::new().await;
    let mut raw = ruleiq_test_support::test_raw_settings(&db);
    raw.sentry_dsn = Some(ruleiq_config::raw::Text(
        "https://sentry.example.com/1".into(),
    ));
    let err = ruleiq_config::Settings::from_raw(raw)
        .unwrap_err()
        .to_string();
    assert!(err.contains("SENTRY_DSN"), "{err}");
    assert!(err.contains("public key"), "{err}");
}
