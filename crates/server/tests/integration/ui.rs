//! The web UI over plain HTTP, as a browser without JavaScript uses it.

use reqwest::{StatusCode, redirect::Policy};
use ruleiq_test_support::TestApp;
use std::collections::HashMap;

/// A browser: keeps cookies, does not follow redirects (so tests see them).
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    set_cookies: Vec<String>,
    headers: reqwest::header::HeaderMap,
    html: String,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, res: reqwest::Response) -> Page {
        let set_cookies: Vec<String> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &set_cookies {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        Page {
            status: res.status(),
            location: res
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
            headers: res.headers().clone(),
            set_cookies,
            html: res.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(res).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.finish(res).await
    }

    fn csrf(&self) -> String {
        self.cookies
            .get("ruleiq_csrf")
            .cloned()
            .expect("a CSRF cookie")
    }
}

const PASSWORD: &str = "otter lantern quarry velvet";

async fn register(browser: &mut Browser, org: &str) -> Page {
    browser.get("/register").await;
    let csrf = browser.csrf();
    browser
        .post(
            "/register",
            &[
                ("csrf_token", &csrf),
                ("organization_name", org),
                ("full_name", "Ada Lovelace"),
                ("email", "ada@example.co.uk"),
                ("password", PASSWORD),
            ],
        )
        .await
}

#[tokio::test]
async fn home_sends_a_visitor_to_sign_in_and_the_form_is_accessible() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    let home = browser.get("/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location.as_deref(), Some("/sign-in"));

    let page = browser.get("/sign-in").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains(r#"<html lang="en">"#));
    assert!(page.html.contains(r##"<a class="skip" href="#main">"##));
    assert!(page.html.contains(r#"<label for="email">"#) && page.html.contains(r#"id="email""#));
    assert!(page.html.contains(r#"<label for="password">"#));
    assert!(
        page.html
            .contains(&format!(r#"value="{}""#, browser.csrf())),
        "the form carries the CSRF token"
    );
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    let cookie = page
        .set_cookies
        .iter()
        .find(|c| c.starts_with("ruleiq_csrf="))
        .unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));

    let href = page
        .html
        .split("href=\"/static/app.css")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let css = browser.get(&format!("/static/app.css{href}")).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert!(css.html.contains("prefers-color-scheme: dark"));
}

#[tokio::test]
async fn register_sign_out_and_sign_in_without_javascript() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    let done = register(&mut browser, "Analytical <Engines> & Co").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert_eq!(done.location.as_deref(), Some("/dashboard"));
    let session = done
        .set_cookies
        .iter()
        .find(|c| c.starts_with("ruleiq_session="))
        .unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
    assert!(
        !session.contains("Secure"),
        "not in development over plain HTTP"
    );

    let dash = browser.get("/dashboard").await;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(
        dash.html.contains("Analytical &#60;Engines&#62; &#38; Co")
            || dash.html.contains("Analytical &lt;Engines&gt; &amp; Co"),
        "escaped: {}",
        dash.html
    );
    assert!(!dash.html.contains("<Engines>"));
    assert!(dash.html.contains("Welcome to ruleIQ"), "flash shown once");
    let again = browser.get("/dashboard").await;
    assert!(!again.html.contains("Welcome to ruleIQ"), "and only once");
    assert_eq!(
        browser.get("/").await.location.as_deref(),
        Some("/dashboard")
    );

    let stolen = browser.cookies["ruleiq_session"].clone();
    let csrf = browser.csrf();
    let out = browser.post("/sign-out", &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location.as_deref(), Some("/sign-in"));
    assert!(!browser.cookies.contains_key("ruleiq_session"));
    // The old cookie is dead at once, even replayed.
    browser.cookies.insert("ruleiq_session".into(), stolen);
    let dash = browser.get("/dashboard").await;
    assert_eq!(dash.location.as_deref(), Some("/sign-in"));
    browser.cookies.remove("ruleiq_session");

    let csrf = browser.csrf();
    let wrong = browser
        .post(
            "/sign-in",
            &[
                ("csrf_token", &csrf),
                ("email", "ada@example.co.uk"),
                ("password", "not the password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains(r#"role="alert""#));
    assert!(
        wrong.html.contains("ada@example.co.uk"),
        "the address is kept"
    );
    let ok = browser
        .post(
            "/sign-in",
            &[
                ("csrf_token", &csrf),
                ("email", "ada@example.co.uk"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/dashboard").await.status, StatusCode::OK);
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.get("/register").await;
    let page = browser
        .post(
            "/register",
            &[
                ("csrf_token", "forged"),
                ("organization_name", "Engines"),
                ("full_name", "Ada"),
                ("email", "ada@example.co.uk"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!browser.cookies.contains_key("ruleiq_session"));
    // No account was made: registering properly now succeeds.
    let done = register(&mut browser, "Engines").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);

    // A second browser with no CSRF cookie at all cannot sign the first out.
    let mut other = Browser::new(&app);
    other.cookies.insert(
        "ruleiq_session".into(),
        browser.cookies["ruleiq_session"].clone(),
    );
    let out = other.post("/sign-out", &[("csrf_token", "")]).await;
    assert_eq!(out.location.as_deref(), Some("/dashboard"));
    assert_eq!(
        browser.get("/dashboard").await.status,
        StatusCode::OK,
        "still signed in"
    );
}

#[tokio::test]
async fn registration_errors_are_shown_on_the_form() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.get("/register").await;
    let csrf = browser.csrf();
    let page = browser
        .post(
            "/register",
            &[
                ("csrf_token", &csrf),
                ("organization_name", "Engines"),
                ("full_name", "Ada"),
                ("email", "ada@example.co.uk"),
                ("password", "password123"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.html
            .contains("Password: this password is too easy to guess"),
        "{}",
        page.html
    );
    assert!(page.html.contains(r#"value="Engines""#), "entries are kept");
}

#[tokio::test]
async fn the_mailed_links_open_pages_that_reset_a_password_and_accept_an_invitation() {
    let smtp = ruleiq_test_support::smtp::SmtpCapture::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(move |raw| {
        raw.smtp_url = Some(ruleiq_test_support::text(&url));
        raw.public_url = Some(ruleiq_test_support::text("http://ruleiq.test"));
    })
    .await;
    let mut ada = Browser::new(&app);
    assert_eq!(
        register(&mut ada, "Engines").await.status,
        StatusCode::SEE_OTHER
    );

    // Invite a member through the API with the owner's session, then accept in another browser.
    let login: serde_json::Value = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "ada@example.co.uk", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = app
        .client
        .post(app.url("/api/v1/users/invitations"))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .json(&serde_json::json!({"email": "cy@example.co.uk", "role": "contributor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let mail = smtp.wait_for(1).await;
    let link = link_in(&mail[0].decoded(), "http://ruleiq.test");
    assert!(link.starts_with("/accept-invitation?token="), "{link}");
    let mut cy = Browser::new(&app);
    let page = cy.get(&link).await;
    assert_eq!(page.status, StatusCode::OK);
    let token = link.trim_start_matches("/accept-invitation?token=");
    let csrf = cy.csrf();
    let joined = cy
        .post(
            "/accept-invitation",
            &[
                ("csrf_token", &csrf),
                ("token", token),
                ("full_name", "Cy Young"),
                ("password", "quiet harbour lantern fig"),
            ],
        )
        .await;
    assert_eq!(joined.status, StatusCode::SEE_OTHER, "{}", joined.html);
    let dash = cy.get("/dashboard").await;
    assert!(
        dash.html.contains("Cy Young") && dash.html.contains("contributor"),
        "{}",
        dash.html
    );

    // Ada forgets her password.
    let mut anon = Browser::new(&app);
    anon.get("/forgot-password").await;
    let csrf = anon.csrf();
    let sent = anon
        .post(
            "/forgot-password",
            &[("csrf_token", &csrf), ("email", "ada@example.co.uk")],
        )
        .await;
    assert_eq!(sent.location.as_deref(), Some("/sign-in"));
    let mail = smtp.wait_for(2).await;
    let link = link_in(&mail[1].decoded(), "http://ruleiq.test");
    assert!(link.starts_with("/reset-password?token="), "{link}");
    let page = anon.get(&link).await;
    assert_eq!(page.status, StatusCode::OK);
    let token = link.trim_start_matches("/reset-password?token=");
    let weak = anon
        .post(
            "/reset-password",
            &[
                ("csrf_token", &csrf),
                ("token", token),
                ("new_password", "password123"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        weak.html
            .contains("New password: this password is too easy to guess"),
        "{}",
        weak.html
    );
    let done = anon
        .post(
            "/reset-password",
            &[
                ("csrf_token", &csrf),
                ("token", token),
                ("new_password", "brass kettle meadow drift"),
            ],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/sign-in"));
    // Ada's old browser session ended with the reset.
    assert_eq!(
        ada.get("/dashboard").await.location.as_deref(),
        Some("/sign-in")
    );
}

/// The path of the first link to `base` in a message.
fn link_in(text: &str, base: &str) -> String {
    let start = text.find(base).expect("a link") + base.len();
    text[start..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn members_account_and_audit_pages_work_for_the_roles_that_may_use_them() {
    let smtp = ruleiq_test_support::smtp::SmtpCapture::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(move |raw| {
        raw.smtp_url = Some(ruleiq_test_support::text(&url));
        raw.public_url = Some(ruleiq_test_support::text("http://ruleiq.test"));
    })
    .await;
    let mut ada = Browser::new(&app);
    register(&mut ada, "Engines").await;
    let page = ada.get("/members").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("<caption>People in Engines</caption>"));
    let csrf = ada.csrf();
    let sent = ada
        .post(
            "/members/invite",
            &[
                ("csrf_token", &csrf),
                ("email", "cy@example.co.uk"),
                ("role", "contributor"),
            ],
        )
        .await;
    assert_eq!(sent.location.as_deref(), Some("/members"));
    let bad = ada
        .post(
            "/members/invite",
            &[
                ("csrf_token", &csrf),
                ("email", "nope"),
                ("role", "contributor"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.html.contains(r#"role="alert""#));

    let mail = smtp.wait_for(1).await;
    let link = link_in(&mail[0].decoded(), "http://ruleiq.test");
    let mut cy = Browser::new(&app);
    cy.get(&link).await;
    let token = link.trim_start_matches("/accept-invitation?token=");
    let cy_csrf = cy.csrf();
    cy.post(
        "/accept-invitation",
        &[
            ("csrf_token", &cy_csrf),
            ("token", token),
            ("full_name", "Cy Young"),
            ("password", "quiet harbour lantern fig"),
        ],
    )
    .await;
    let refused = cy.get("/members").await;
    assert_eq!(
        refused.location.as_deref(),
        Some("/dashboard"),
        "a contributor does not manage members"
    );
    assert!(
        !cy.get("/dashboard")
            .await
            .html
            .contains(r#"href="/members""#),
        "nor sees the link"
    );

    // Ada makes Cy a viewer, then deactivates them: Cy's browser is signed out at once.
    let members = ada.get("/members").await;
    let cy_id = members
        .html
        .split("action=\"/members/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let saved = ada
        .post(
            &format!("/members/{cy_id}"),
            &[
                ("csrf_token", &csrf),
                ("role", "viewer"),
                ("is_active", "true"),
            ],
        )
        .await;
    assert_eq!(saved.location.as_deref(), Some("/members"));
    assert!(cy.get("/dashboard").await.html.contains("viewer"));
    ada.post(
        &format!("/members/{cy_id}"),
        &[
            ("csrf_token", &csrf),
            ("role", "viewer"),
            ("is_active", "false"),
        ],
    )
    .await;
    assert_eq!(
        cy.get("/dashboard").await.location.as_deref(),
        Some("/sign-in")
    );

    let audit = ada.get("/audit").await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(audit.html.contains("is intact"), "{}", audit.html);
    assert!(audit.html.contains("member.deactivated"));

    let wrong = ada
        .post(
            "/account/password",
            &[
                ("csrf_token", &csrf),
                ("current_password", "not it at all"),
                ("new_password", "brass kettle meadow drift"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let ok = ada
        .post(
            "/account/password",
            &[
                ("csrf_token", &csrf),
                ("current_password", PASSWORD),
                ("new_password", "brass kettle meadow drift"),
            ],
        )
        .await;
    assert_eq!(ok.location.as_deref(), Some("/account"));
    let renamed = ada
        .post(
            "/account/organization",
            &[("csrf_token", &csrf), ("name", "Analytical Engines")],
        )
        .await;
    assert_eq!(renamed.location.as_deref(), Some("/account"));
    assert!(
        ada.get("/account")
            .await
            .html
            .contains("Analytical Engines")
    );
}

#[tokio::test]
async fn the_framework_browser_works_without_javascript() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    let page = browser.get("/frameworks").await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "signed-out visitors sign in first"
    );
    register(&mut browser, "Bakery Ltd").await;

    let page = browser.get("/frameworks").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("8 frameworks"));
    assert!(page.html.contains(r#"href="/frameworks/iso27001-2022""#));

    let page = browser.get("/frameworks/iso27001-2022").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("A.8.5") && page.html.contains("Technological controls"));
    let start = page.html.find("/controls/").unwrap();
    let href: String = page.html[start..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let control = browser.get(&href).await;
    assert_eq!(control.status, StatusCode::OK);
    for part in [
        "What it asks",
        "How to meet it",
        "Evidence an auditor accepts",
        "Questions",
        "In other frameworks",
    ] {
        assert!(control.html.contains(part), "{part}");
    }

    let compare = browser
        .get("/frameworks/compare?a=cyber-essentials&b=iso27001-2022")
        .await;
    assert_eq!(compare.status, StatusCode::OK);
    assert!(
        compare.html.contains("(100%) map into ISO/IEC 27001:2022"),
        "{}",
        compare.html
    );
    let same = browser.get("/frameworks/compare?a=uk-gdpr&b=uk-gdpr").await;
    assert_eq!(same.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(same.html.contains("Choose two different frameworks."));

    let search = browser.get("/search?q=backups").await;
    assert_eq!(search.status, StatusCode::OK);
    assert!(search.html.contains("<mark>") && search.html.contains("results for"));
    assert!(
        search
            .html
            .contains(r#"<script src="/static/search.js" defer></script>"#)
    );
    let partial = browser.get("/search?q=backups&partial=1").await;
    assert!(!partial.html.contains("<html") && partial.html.contains("<mark>"));
    let bad = browser.get("/search?q=%25%25").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.html.contains("Type at least one letter or digit"));
    let script = browser.get("/static/search.js").await;
    assert!(
        script.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );

    assert_eq!(
        browser.get("/frameworks/nope").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        browser.get("/controls/nope").await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}
