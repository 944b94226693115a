//! Forgotten passwords and invitation e-mail, delivered over real SMTP to a local server.

use reqwest::StatusCode;
use ruleiq_db::sea_orm::ConnectionTrait;
use ruleiq_test_support::{TestApp, smtp::SmtpCapture, text};
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "otter lantern quarry velvet";
const NEW_PASSWORD: &str = "quiet harbour lantern fig";

async fn app_with_mail() -> (TestApp, SmtpCapture) {
    let smtp = SmtpCapture::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(move |raw| {
        raw.smtp_url = Some(text(&url));
        raw.public_url = Some(text("https://ruleiq.example"));
    })
    .await;
    (app, smtp)
}

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1{path}")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn register(app: &TestApp) -> Value {
    let res = post(
        app,
        "/auth/register",
        json!({"email": "ada@example.co.uk", "password": PASSWORD, "full_name": "Ada", "organization_name": "Engines"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

fn token_in(data: &str, marker: &str) -> String {
    let start = data
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {data}"))
        + marker.len();
    data[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn login(app: &TestApp, password: &str) -> StatusCode {
    post(
        app,
        "/auth/login",
        json!({"email": "ada@example.co.uk", "password": password}),
    )
    .await
    .status()
}

#[tokio::test]
async fn a_reset_link_is_mailed_works_once_and_ends_every_session() {
    let (app, smtp) = app_with_mail().await;
    let reg = register(&app).await;
    let res = post(
        &app,
        "/auth/forgot-password",
        json!({"email": " ADA@example.co.uk"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let mail = smtp.wait_for(1).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].recipients, ["ada@example.co.uk"]);
    assert!(
        mail[0]
            .decoded()
            .contains("Subject: Reset your ruleIQ password"),
        "{}",
        mail[0].decoded()
    );
    let token = token_in(
        &mail[0].decoded(),
        "https://ruleiq.example/reset-password?token=",
    );
    assert_eq!(token.len(), 43);

    let weak = post(
        &app,
        "/auth/reset-password",
        json!({"token": token, "new_password": "password123"}),
    )
    .await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = post(
        &app,
        "/auth/reset-password",
        json!({"token": token, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let again = post(
        &app,
        "/auth/reset-password",
        json!({"token": token, "new_password": "another fine long phrase"}),
    )
    .await;
    assert_eq!(
        again.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "single use"
    );

    assert_eq!(login(&app, PASSWORD).await, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, NEW_PASSWORD).await, StatusCode::OK);
    let old = reg["access_token"].as_str().unwrap();
    let me = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(old)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED, "sessions ended");
}

#[tokio::test]
async fn forgot_password_answers_the_same_for_unknown_addresses_and_mails_nothing() {
    let (app, smtp) = app_with_mail().await;
    register(&app).await;
    for email in ["nobody@example.co.uk", "not an address", ""] {
        let res = post(&app, "/auth/forgot-password", json!({"email": email})).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED, "{email}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.messages().is_empty());
    let res = post(&app, "/auth/forgot-password", json!({"mail": 1})).await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a malformed body is still refused"
    );
}

#[tokio::test]
async fn an_expired_reset_token_is_refused() {
    let (app, smtp) = app_with_mail().await;
    register(&app).await;
    post(
        &app,
        "/auth/forgot-password",
        json!({"email": "ada@example.co.uk"}),
    )
    .await;
    let mail = smtp.wait_for(1).await;
    let token = token_in(&mail[0].decoded(), "reset-password?token=");
    app.components
        .db
        .execute_unprepared("UPDATE password_resets SET expires_at = '2000-01-01T00:00:00Z'")
        .await
        .unwrap();
    let res = post(
        &app,
        "/auth/reset-password",
        json!({"token": token, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        login(&app, PASSWORD).await,
        StatusCode::OK,
        "the password did not change"
    );
}

#[tokio::test]
async fn an_invitation_is_mailed_with_its_link() {
    let (app, smtp) = app_with_mail().await;
    let reg = register(&app).await;
    let res = app
        .client
        .post(app.url("/api/v1/users/invitations"))
        .bearer_auth(reg["access_token"].as_str().unwrap())
        .json(&json!({"email": "cy@example.co.uk", "role": "auditor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    let mail = smtp.wait_for(1).await;
    assert_eq!(mail[0].recipients, ["cy@example.co.uk"]);
    let token = token_in(
        &mail[0].decoded(),
        "https://ruleiq.example/accept-invitation?token=",
    );
    assert_eq!(
        token,
        body["token"].as_str().unwrap(),
        "the mailed token is the one issued"
    );
    assert!(mail[0].decoded().contains("Engines"));
}
