//! Registration, sign-in, sessions, tokens and the audit trail over HTTP.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use ruleiq_db::sea_orm::ConnectionTrait;
use ruleiq_test_support::TestApp;
use serde_json::{Value, json};

const PASSWORD: &str = "otter lantern quarry velvet";

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1{path}")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get_as(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/v1{path}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn register(app: &TestApp, email: &str, org: &str) -> Value {
    let res = post(
        app,
        "/auth/register",
        json!({"email": email, "password": PASSWORD, "full_name": "Ada Lovelace", "organization_name": org}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    post(
        app,
        "/auth/login",
        json!({"email": email, "password": password}),
    )
    .await
}

async fn problem(res: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    res.json().await.unwrap()
}

async fn exec(app: &TestApp, sql: &str) {
    app.components.db.execute_unprepared(sql).await.unwrap();
}

#[tokio::test]
async fn registering_creates_an_owner_who_can_see_themselves() {
    let app = TestApp::spawn().await;
    let reg = register(&app, "  Ada@Example.CO.UK ", "Analytical Engines Ltd").await;
    assert_eq!(reg["user"]["email"], "ada@example.co.uk", "normalised");
    assert_eq!(reg["token_type"], "bearer");
    assert_eq!(reg["expires_in"], 1800);
    let token = reg["access_token"].as_str().unwrap();
    let me: Value = get_as(&app, "/auth/me", token).await.json().await.unwrap();
    assert_eq!(me["email"], "ada@example.co.uk");
    assert_eq!(me["role"], "owner");
    assert_eq!(me["organization"]["name"], "Analytical Engines Ltd");
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("organization:delete"))
    );
    let same: Value = get_as(&app, "/users/me", token).await.json().await.unwrap();
    assert_eq!(same, me);
    let roles: Value = get_as(&app, "/rbac/roles", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(roles.as_array().unwrap().len(), 6);
    app.stop().await;
}

#[tokio::test]
async fn one_account_per_address_whatever_its_case() {
    let app = TestApp::spawn().await;
    register(&app, "ada@example.co.uk", "One").await;
    let res = post(
        &app,
        "/auth/register",
        json!({"email": " ADA@example.co.uk", "password": PASSWORD, "full_name": "A", "organization_name": "Two"}),
    )
    .await;
    let body = problem(res, StatusCode::CONFLICT).await;
    assert_eq!(body["type"], "https://ruleiq.dev/problems/conflict");
}

#[tokio::test]
async fn registration_refuses_bad_fields_with_422_naming_them() {
    let app = TestApp::spawn().await;
    let base = json!({"email": "ada@example.co.uk", "password": PASSWORD, "full_name": "Ada", "organization_name": "Engines"});
    for (field, value) in [
        ("password", json!("short")),
        ("password", json!("password1234")),
        ("password", json!("ada@example.co.uk")),
        ("password", json!("x".repeat(129))),
        ("email", json!("not-an-address")),
        ("full_name", json!("   ")),
        ("organization_name", json!("x".repeat(201))),
        ("full_name", json!("Ada\u{0007}Bell")),
    ] {
        let mut body = base.clone();
        body[field] = value.clone();
        let res = post(&app, "/auth/register", body).await;
        let p = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(p["errors"][0]["field"], field, "{value}: {p}");
    }
    // Wrong types and missing fields are 422; a body that is not JSON is 400.
    let res = post(&app, "/auth/register", json!({"email": 5})).await;
    problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST).await;
    // Nothing was written by any of them.
    let res = login(&app, "ada@example.co.uk", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn names_with_markup_and_sql_are_stored_as_written() {
    let app = TestApp::spawn().await;
    let name = "<script>alert(1)</script>'; DROP TABLE users; --";
    let reg = register(&app, "ada@example.co.uk", name).await;
    assert_eq!(reg["organization"]["name"], name);
    let token = reg["access_token"].as_str().unwrap();
    let me: Value = get_as(&app, "/auth/me", token).await.json().await.unwrap();
    assert_eq!(me["organization"]["name"], name);
}

#[tokio::test]
async fn token_accepts_json_and_the_oauth2_form_and_hides_which_part_was_wrong() {
    let app = TestApp::spawn().await;
    register(&app, "ada@example.co.uk", "Engines").await;
    let res = post(
        &app,
        "/auth/token",
        json!({"username": "ADA@example.co.uk", "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "ada@example.co.uk"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let pair: Value = res.json().await.unwrap();
    assert!(pair["access_token"].as_str().unwrap().split('.').count() == 3);

    let wrong = problem(
        login(&app, "ada@example.co.uk", "not the password at all").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown = problem(
        login(&app, "nobody@example.co.uk", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong["detail"], unknown["detail"]);
}

#[tokio::test]
async fn ten_failures_lock_the_account_even_against_the_right_password() {
    let app = TestApp::spawn().await;
    let reg = register(&app, "ada@example.co.uk", "Engines").await;
    for _ in 0..10 {
        let res = login(&app, "ada@example.co.uk", "wrong wrong wrong").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let body = problem(
        login(&app, "ada@example.co.uk", PASSWORD).await,
        StatusCode::LOCKED,
    )
    .await;
    assert_eq!(body["type"], "https://ruleiq.dev/problems/account-locked");
    let token = reg["access_token"].as_str().unwrap();
    let log: Value = get_as(&app, "/audit-log?limit=200", token)
        .await
        .json()
        .await
        .unwrap();
    let events: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"auth.account_locked"), "{events:?}");
    assert!(events.contains(&"auth.login_refused_locked"), "{events:?}");
    assert_eq!(
        events.iter().filter(|e| **e == "auth.login_failed").count(),
        10
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_ends_the_whole_family() {
    let app = TestApp::spawn().await;
    let reg = register(&app, "ada@example.co.uk", "Engines").await;
    let first = reg["refresh_token"].as_str().unwrap().to_owned();
    let res = post(&app, "/auth/refresh", json!({"refresh_token": first})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let second: Value = res.json().await.unwrap();
    let access = second["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        get_as(&app, "/auth/me", &access).await.status(),
        StatusCode::OK
    );

    // The rotated token again: reuse. Everything of that family stops.
    let res = post(&app, "/auth/refresh", json!({"refresh_token": first})).await;
    problem(res, StatusCode::UNAUTHORIZED).await;
    let res = post(
        &app,
        "/auth/refresh",
        json!({"refresh_token": second["refresh_token"]}),
    )
    .await;
    problem(res, StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        get_as(&app, "/auth/me", &access).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Another sign-in is a different family and unaffected.
    let other: Value = login(&app, "ada@example.co.uk", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let token = other["access_token"].as_str().unwrap();
    let log: Value = get_as(&app, "/audit-log", token)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "auth.refresh_reused")
    );
}

#[tokio::test]
async fn logout_ends_the_access_token_and_its_refresh_family_at_once() {
    let app = TestApp::spawn().await;
    let reg = register(&app, "ada@example.co.uk", "Engines").await;
    let token = reg["access_token"].as_str().unwrap();
    let res = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = get_as(&app, "/auth/me", token).await;
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    problem(res, StatusCode::UNAUTHORIZED).await;
    let res = post(
        &app,
        "/auth/refresh",
        json!({"refresh_token": reg["refresh_token"]}),
    )
    .await;
    problem(res, StatusCode::UNAUTHORIZED).await;
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn forged_expired_and_misused_tokens_are_401() {
    let app = TestApp::spawn().await;
    let reg = register(&app, "ada@example.co.uk", "Engines").await;
    let good = reg["access_token"].as_str().unwrap();
    let claims = payload(good);
    let sign = |secret: &str, claims: &Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    // The test server signs with "t" × 40 (test-support's settings).
    let secret = "t".repeat(40);
    // Re-signed with the right key, the same claims are accepted: the refusals below are
    // for what each case changes, not for a wrong test key.
    let resigned = sign(&secret, &claims);
    assert_eq!(
        get_as(&app, "/auth/me", &resigned).await.status(),
        StatusCode::OK
    );

    let mut expired = claims.clone();
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 60);
    let mut escalated = claims.clone();
    escalated["org"] = json!(uuid::Uuid::now_v7());
    let parts: Vec<&str> = good.split('.').collect();
    let mut tampered_payload = claims.clone();
    tampered_payload["role"] = json!("viewer");
    let cases = [
        (
            "another key",
            sign("another-secret-another-secret-another", &claims),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                parts[1]
            ),
        ),
        ("expired", sign(&secret, &expired)),
        (
            "tampered payload",
            format!("{}.{}.{}", parts[0], b64(&tampered_payload), parts[2]),
        ),
        (
            "signed claims for another organisation",
            sign(&secret, &escalated),
        ),
        (
            "a refresh token",
            reg["refresh_token"].as_str().unwrap().to_owned(),
        ),
        ("garbage", "not-a-token".to_owned()),
    ];
    for (what, token) in cases {
        let res = get_as(&app, "/auth/me", &token).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    let res = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED).await;
    // An access token is not a refresh token either.
    let res = post(&app, "/auth/refresh", json!({"refresh_token": good})).await;
    problem(res, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_deactivated_account_is_refused_at_once() {
    // The account is changed behind the server's back (SQL), which the session cache
    // would only notice after SESSION_CACHE_MS; changes through the product clear it
    // at once (members::changes_reach_every_instance_at_once).
    let app = TestApp::spawn_with(|raw| raw.session_cache_ms = 0).await;
    let reg = register(&app, "ada@example.co.uk", "Engines").await;
    let token = reg["access_token"].as_str().unwrap();
    assert_eq!(
        get_as(&app, "/auth/me", token).await.status(),
        StatusCode::OK
    );
    exec(&app, "UPDATE users SET is_active = false").await;
    problem(
        get_as(&app, "/auth/me", token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        login(&app, "ada@example.co.uk", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn changing_the_password_ends_other_sessions_only() {
    let app = TestApp::spawn().await;
    let reg = register(&app, "ada@example.co.uk", "Engines").await;
    let here = reg["access_token"].as_str().unwrap();
    let elsewhere: Value = login(&app, "ada@example.co.uk", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let change = |current: &str, new: &str| {
        app.client
            .post(app.url("/api/v1/auth/change-password"))
            .bearer_auth(here)
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
    };
    problem(
        change("wrong current password", "quiet harbour lantern fig")
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let p = problem(
        change(PASSWORD, "password123").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "new_password");
    let res = change(PASSWORD, "quiet harbour lantern fig").await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get_as(&app, "/auth/me", here).await.status(),
        StatusCode::OK
    );
    let other = elsewhere["access_token"].as_str().unwrap();
    assert_eq!(
        get_as(&app, "/auth/me", other).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, "ada@example.co.uk", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, "ada@example.co.uk", "quiet harbour lantern fig")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_audit_chain_verifies_and_an_edited_row_is_named() {
    let app = TestApp::spawn().await;
    let reg = register(&app, "ada@example.co.uk", "Engines").await;
    let token = reg["access_token"].as_str().unwrap();
    for _ in 0..3 {
        login(&app, "ada@example.co.uk", PASSWORD).await;
    }
    let report: Value = get_as(&app, "/audit-log/verify", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        report,
        json!({"valid": true, "entries_checked": 4, "first_broken_id": null})
    );

    let log: Value = get_as(&app, "/audit-log?limit=2", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(log["items"].as_array().unwrap().len(), 2);
    let newest = &log["items"][0];
    assert_eq!(newest["event"], "auth.login");
    assert_eq!(newest["ip"], "127.0.0.1");
    let next = log["next_cursor"].as_str().unwrap();
    let page2: Value = get_as(&app, &format!("/audit-log?limit=2&cursor={next}"), token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page2["items"][1]["event"], "user.registered");
    assert!(page2["next_cursor"].is_null());

    // Someone with database access rewrites history.
    let victim = page2["items"][0]["id"].as_str().unwrap();
    let seq = page2["items"][0]["seq"].as_i64().unwrap();
    let changed = app
        .components
        .db
        .execute_unprepared(&format!(
            "UPDATE audit_log SET ip = '10.9.9.9' WHERE seq = {seq} AND event = 'auth.login'"
        ))
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 1);
    let report: Value = get_as(&app, "/audit-log/verify", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["first_broken_id"], victim);
}

#[tokio::test]
async fn the_audit_log_needs_its_permission_and_shows_only_the_callers_organisation() {
    // The role is changed in SQL below; see a_deactivated_account_is_refused_at_once.
    let app = TestApp::spawn_with(|raw| raw.session_cache_ms = 0).await;
    let a = register(&app, "ada@example.co.uk", "Engines").await;
    let b = register(&app, "bea@example.co.uk", "Looms").await;
    let b_token = b["access_token"].as_str().unwrap();
    let log: Value = get_as(&app, "/audit-log", b_token)
        .await
        .json()
        .await
        .unwrap();
    let a_user = a["user"]["id"].as_str().unwrap();
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor_user_id"] != a_user)
    );

    exec(
        &app,
        "UPDATE memberships SET role = 'viewer' WHERE user_id = (SELECT id FROM users WHERE email = 'bea@example.co.uk')",
    )
    .await;
    let body = problem(
        get_as(&app, "/audit-log", b_token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("audit:read"));
    problem(
        get_as(&app, "/audit-log/verify", b_token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let a_token = a["access_token"].as_str().unwrap();
    for query in ["limit=500", "limit=abc", "limit=0", "cursor=zzz"] {
        let res = get_as(&app, &format!("/audit-log?{query}"), a_token).await;
        problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

#[tokio::test]
async fn oversized_auth_bodies_are_413_and_create_nothing() {
    let app = TestApp::spawn().await;
    let huge = "x".repeat(3 * 1024 * 1024);
    let res = post(
        &app,
        "/auth/register",
        json!({"email": "ada@example.co.uk", "password": PASSWORD, "full_name": huge, "organization_name": "Engines"}),
    )
    .await;
    let body = problem(res, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(
        body["type"],
        "https://ruleiq.dev/problems/payload-too-large"
    );
    let res = login(&app, "ada@example.co.uk", PASSWORD).await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "no account was made"
    );
    // A long but in-limit field is a 422 naming it, not a 500.
    let res = post(
        &app,
        "/auth/register",
        json!({"email": "ada@example.co.uk", "password": PASSWORD, "full_name": "x".repeat(100_000), "organization_name": "Engines"}),
    )
    .await;
    let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["field"], "full_name");
}
