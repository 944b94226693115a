//! The organisation, invitations and member management; and the isolation suite.

use reqwest::{Method, StatusCode};
use ruleiq_db::sea_orm::ConnectionTrait;
use ruleiq_test_support::TestApp;
use serde_json::{Value, json};

pub(crate) const PASSWORD: &str = "otter lantern quarry velvet";

/// A signed-in member.
pub(crate) struct Member {
    pub(crate) id: String,
    pub(crate) token: String,
}

pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(&format!("/api/v1{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

pub(crate) async fn owner(app: &TestApp, email: &str, org: &str) -> Member {
    let res = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD, "full_name": "Owner", "organization_name": org}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    Member {
        id: body["user"]["id"].as_str().unwrap().to_owned(),
        token: body["access_token"].as_str().unwrap().to_owned(),
    }
}

async fn invite(app: &TestApp, by: &Member, email: &str, role: &str) -> Value {
    let res = call(
        app,
        Method::POST,
        "/users/invitations",
        &by.token,
        Some(json!({"email": email, "role": role})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

async fn accept(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/accept-invitation"))
        .json(&json!({"token": token, "full_name": "New Member", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
}

pub(crate) async fn join(app: &TestApp, by: &Member, email: &str, role: &str) -> Member {
    let inv = invite(app, by, email, role).await;
    let res = accept(app, inv["token"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    Member {
        id: body["user"]["id"].as_str().unwrap().to_owned(),
        token: body["access_token"].as_str().unwrap().to_owned(),
    }
}

async fn sign_in(app: &TestApp, email: &str) -> StatusCode {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn an_invitation_is_accepted_once_into_its_organisation_and_role() {
    let app = TestApp::spawn().await;
    let ada = owner(&app, "ada@example.co.uk", "Engines").await;
    let inv = invite(&app, &ada, " Cy@Example.co.uk", "contributor").await;
    assert_eq!(inv["email"], "cy@example.co.uk");
    assert_eq!(inv["role"], "contributor");
    let token = inv["token"].as_str().unwrap();

    let res = accept(&app, token).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let reg: Value = res.json().await.unwrap();
    assert_eq!(reg["organization"]["name"], "Engines");
    let cy_token = reg["access_token"].as_str().unwrap();
    let me: Value = call(&app, Method::GET, "/auth/me", cy_token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "contributor");

    let again = accept(&app, token).await;
    assert_eq!(
        again.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "single use"
    );

    let members: Value = call(&app, Method::GET, "/users", &ada.token, None)
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["ada@example.co.uk", "cy@example.co.uk"]);
    // A contributor does not manage members.
    assert_eq!(
        call(&app, Method::GET, "/users", cy_token, None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // An address with an account cannot be invited.
    let res = call(
        &app,
        Method::POST,
        "/users/invitations",
        &ada.token,
        Some(json!({"email": "cy@example.co.uk", "role": "viewer"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn invitations_refuse_bad_roles_expired_tokens_and_owners_from_non_owners() {
    let app = TestApp::spawn().await;
    let ada = owner(&app, "ada@example.co.uk", "Engines").await;
    let res = call(
        &app,
        Method::POST,
        "/users/invitations",
        &ada.token,
        Some(json!({"email": "x@example.co.uk", "role": "emperor"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = call(
        &app,
        Method::POST,
        "/users/invitations",
        &ada.token,
        Some(json!({"email": "x@example.co.uk", "role": "viewer", "extra": 1})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let admin = join(&app, &ada, "bo@example.co.uk", "admin").await;
    let res = call(
        &app,
        Method::POST,
        "/users/invitations",
        &admin.token,
        Some(json!({"email": "z@example.co.uk", "role": "owner"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let inv = invite(&app, &admin, "late@example.co.uk", "viewer").await;
    app.components
        .db
        .execute_unprepared("UPDATE invitations SET expires_at = '2000-01-01T00:00:00Z' WHERE email = 'late@example.co.uk'")
        .await
        .unwrap();
    let res = accept(&app, inv["token"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        sign_in(&app, "late@example.co.uk").await,
        StatusCode::UNAUTHORIZED,
        "no account was made"
    );
    let res = accept(&app, "made-up-token").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn roles_change_and_deactivation_ends_access_at_once() {
    let app = TestApp::spawn().await;
    let ada = owner(&app, "ada@example.co.uk", "Engines").await;
    let cy = join(&app, &ada, "cy@example.co.uk", "contributor").await;

    let res = call(
        &app,
        Method::PATCH,
        &format!("/users/{}", cy.id),
        &ada.token,
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["role"], "viewer");
    let me: Value = call(&app, Method::GET, "/auth/me", &cy.token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["role"], "viewer",
        "the current role applies to an existing token"
    );

    let res = call(
        &app,
        Method::PATCH,
        &format!("/users/{}", cy.id),
        &ada.token,
        Some(json!({"is_active": false})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        call(&app, Method::GET, "/auth/me", &cy.token, None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in(&app, "cy@example.co.uk").await,
        StatusCode::UNAUTHORIZED
    );

    let res = call(
        &app,
        Method::PATCH,
        &format!("/users/{}", cy.id),
        &ada.token,
        Some(json!({"is_active": true})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(sign_in(&app, "cy@example.co.uk").await, StatusCode::OK);

    // Nobody changes themselves; bad values are 422; strangers and non-ids are 404.
    let res = call(
        &app,
        Method::PATCH,
        &format!("/users/{}", ada.id),
        &ada.token,
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = call(
        &app,
        Method::PATCH,
        &format!("/users/{}", cy.id),
        &ada.token,
        Some(json!({"role": "emperor"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = call(
        &app,
        Method::PATCH,
        &format!("/users/{}", cy.id),
        &ada.token,
        Some(json!({"is_active": "no"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = call(
        &app,
        Method::PATCH,
        "/users/not-a-uuid",
        &ada.token,
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let log: Value = call(&app, Method::GET, "/audit-log?limit=200", &ada.token, None)
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
    for expected in [
        "invitation.created",
        "invitation.accepted",
        "member.role_changed",
        "member.deactivated",
        "member.reactivated",
    ] {
        assert!(events.contains(&expected), "{expected} in {events:?}");
    }
    let verify: Value = call(&app, Method::GET, "/audit-log/verify", &ada.token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verify["valid"], true);
}

#[tokio::test]
async fn the_organisation_is_read_by_members_and_renamed_by_managers() {
    let app = TestApp::spawn().await;
    let ada = owner(&app, "ada@example.co.uk", "Engines").await;
    let viewer = join(&app, &ada, "vi@example.co.uk", "viewer").await;
    let org: Value = call(&app, Method::GET, "/organization", &viewer.token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(org["name"], "Engines");
    let res = call(
        &app,
        Method::PATCH,
        "/organization",
        &viewer.token,
        Some(json!({"name": "Hijacked"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = call(
        &app,
        Method::PATCH,
        "/organization",
        &ada.token,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = call(
        &app,
        Method::PATCH,
        "/organization",
        &ada.token,
        Some(json!({"name": "Analytical Engines"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let org: Value = call(&app, Method::GET, "/organization", &viewer.token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(org["name"], "Analytical Engines");
}

/// One attempt by organisation B on an object of organisation A.
struct Attempt {
    method: Method,
    path: String,
    body: Option<Value>,
}

/// Every tenant-owned endpoint that names an object, aimed at A's objects. Later
/// issues add theirs here.
fn attempts_on(a_member: &str, a_job: &str) -> Vec<Attempt> {
    vec![
        Attempt {
            method: Method::GET,
            path: format!("/jobs/{a_job}"),
            body: None,
        },
        Attempt {
            method: Method::PATCH,
            path: format!("/users/{a_member}"),
            body: Some(json!({"role": "viewer"})),
        },
        Attempt {
            method: Method::PATCH,
            path: format!("/users/{a_member}"),
            body: Some(json!({"is_active": false})),
        },
    ]
}

/// What A can see of its own state; unchanged after B's attempts.
async fn snapshot(app: &TestApp, a: &Member) -> Value {
    let mut state = json!({});
    for path in ["/users", "/organization", "/auth/me", "/jobs"] {
        state[path] = call(app, Method::GET, path, &a.token, None)
            .await
            .json()
            .await
            .unwrap();
    }
    state
}

#[tokio::test]
async fn another_organisation_can_neither_see_nor_change_an_organisations_objects() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ada@example.co.uk", "A Ltd").await;
    let a_member = join(&app, &a, "cy@example.co.uk", "contributor").await;
    let b = owner(&app, "bea@example.co.uk", "B Ltd").await;
    let me: Value = call(&app, Method::GET, "/auth/me", &a.token, None)
        .await
        .json()
        .await
        .unwrap();
    let a_org: uuid::Uuid = me["organization"]["id"].as_str().unwrap().parse().unwrap();
    let a_job = app
        .components
        .jobs
        .enqueue(
            ruleiq_jobs::kinds::CANARY,
            json!({"message": "a"}),
            Some(a_org),
            1,
        )
        .await
        .unwrap();
    let seen = call(&app, Method::GET, &format!("/jobs/{a_job}"), &a.token, None).await;
    assert_eq!(seen.status(), StatusCode::OK, "A sees its own job");
    // The embedded worker runs the canary; let it finish, so the snapshot below
    // compares what B might change, not the worker's progress (a race under load).
    for _ in 0..400 {
        let job: Value = call(&app, Method::GET, &format!("/jobs/{a_job}"), &a.token, None)
            .await
            .json()
            .await
            .unwrap();
        if job["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }

    let before = snapshot(&app, &a).await;
    for attempt in attempts_on(&a_member.id, &a_job.to_string()) {
        let res = call(
            &app,
            attempt.method.clone(),
            &attempt.path,
            &b.token,
            attempt.body.clone(),
        )
        .await;
        assert_eq!(
            res.status(),
            StatusCode::NOT_FOUND,
            "{} {}",
            attempt.method,
            attempt.path
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["type"], "https://ruleiq.dev/problems/not-found");
    }
    assert_eq!(snapshot(&app, &a).await, before, "nothing of A changed");
    // B's lists never contain A's objects.
    let members: Value = call(&app, Method::GET, "/users", &b.token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(members["items"].as_array().unwrap().len(), 1);
    let org: Value = call(&app, Method::GET, "/organization", &b.token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(org["name"], "B Ltd");
}

/// Sessions are cached in memory (SESSION_CACHE_MS); a change made through any
/// instance must still take effect at once everywhere: on PostgreSQL through
/// LISTEN/NOTIFY. SQLite runs as one instance; a second process on the same file sees
/// the change within SESSION_CACHE_MS, which is what is asserted there.
#[tokio::test]
async fn changes_reach_every_instance_at_once() {
    let a_app = TestApp::spawn().await;
    let url = a_app.db.url.clone();
    let b_app = TestApp::spawn_with(move |raw| {
        raw.database_url = Some(ruleiq_test_support::text(&url));
    })
    .await;
    let ada = owner(&a_app, "ada@example.co.uk", "A Ltd").await;
    let cy = join(&a_app, &ada, "cy@example.co.uk", "compliance_manager").await;
    let me = |app: &TestApp, token: String| {
        let req = app
            .client
            .get(app.url("/api/v1/auth/me"))
            .bearer_auth(token);
        async move { req.send().await.unwrap() }
    };
    if ruleiq_test_support::backend() == "postgres" {
        // Both instances listen (so their caches are on, not merely bypassed).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let row = a_app
                .components
                .db
                .query_one_raw(ruleiq_db::sea_orm::Statement::from_string(
                    ruleiq_db::sea_orm::DbBackend::Postgres,
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
                ))
                .await
                .unwrap()
                .unwrap();
            let n: i64 = row.try_get("", "n").unwrap();
            if n >= 2 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{n} listeners");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    // Both instances have Cy's session in their caches now.
    for app in [&a_app, &b_app] {
        for _ in 0..3 {
            assert_eq!(me(app, cy.token.clone()).await.status(), StatusCode::OK);
        }
    }
    // A demotion through instance A is seen at once by A...
    let res = call(
        &a_app,
        Method::PATCH,
        &format!("/users/{}", cy.id),
        &ada.token,
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = me(&a_app, cy.token.clone()).await.json().await.unwrap();
    assert_eq!(body["role"], "viewer", "{body}");
    // ...and a deactivation through A makes Cy's token useless on A at once,
    let res = call(
        &a_app,
        Method::PATCH,
        &format!("/users/{}", cy.id),
        &ada.token,
        Some(json!({"is_active": false})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        me(&a_app, cy.token.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // ...and on B: at once on PostgreSQL, within the cache's lifetime on SQLite.
    let deadline = std::time::Instant::now()
        + if ruleiq_test_support::backend() == "postgres" {
            std::time::Duration::from_millis(500)
        } else {
            std::time::Duration::from_millis(2_500)
        };
    loop {
        let status = me(&b_app, cy.token.clone()).await.status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B still accepts a deactivated account"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Signing out on B ends the session on A too.
    let res = call(&b_app, Method::POST, "/auth/logout", &ada.token, None).await;
    assert!(res.status().is_success(), "{}", res.status());
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(2_500);
    while me(&a_app, ada.token.clone()).await.status() != StatusCode::UNAUTHORIZED {
        assert!(
            std::time::Instant::now() < deadline,
            "A still accepts a signed-out session"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    b_app.stop().await;
    a_app.stop().await;
}
