//! The policy, assistant and AI settings pages: a policy written, edited, submitted,
//! approved by a second member and exported in a real headless Chromium, with a
//! question answered by the streaming script; and, as a browser without JavaScript
//! uses them, each page rendering, and what each must turn away (forged forms,
//! other organisations' policies and conversations, roles without the right).

use fantoccini::{Client, Locator};
use reqwest::{Method, StatusCode, redirect::Policy};
use ruleiq_test_support::TestApp;
use serde_json::Value;
use std::{collections::HashMap, time::Duration};

use crate::{
    assessments::send,
    browser::{Driver, arrives_under, fill, journey, path, shows},
    members::{Member, PASSWORD, call, join, owner},
    policies::generated,
};

// ---- Without JavaScript: reqwest with the session cookie ----

/// A browser: keeps cookies, does not follow redirects (so tests see them).
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
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

    fn csrf(&self) -> String {
        self.cookies["ruleiq_csrf"].clone()
    }

    async fn finish(&mut self, res: reqwest::Response) -> Page {
        for c in res.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = res.status();
        let headers = res.headers().clone();
        let location = headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = res.bytes().await.unwrap().to_vec();
        Page {
            status,
            location,
            headers,
            html: String::from_utf8_lossy(&body).into_owned(),
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

    /// Posts a form as it is given (the caller adds the CSRF token, or not).
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

    /// Posts a form with this browser's CSRF token first.
    async fn submit(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.csrf();
        let mut fields = vec![("csrf_token", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields).await
    }
}

/// A browser signed in through the sign-in page.
async fn signed_in(app: &TestApp, email: &str) -> Browser {
    let mut browser = Browser::new(app);
    browser.get("/sign-in").await;
    let done = browser
        .submit("/sign-in", &[("email", email), ("password", PASSWORD)])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    browser
}

fn id_after(location: &str, prefix: &str) -> String {
    location
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{location} is under {prefix}"))
        .split(['/', '?', '#'])
        .next()
        .unwrap()
        .to_owned()
}

async fn api_policies(app: &TestApp, m: &Member) -> Vec<Value> {
    let (status, body) = send(app, Method::GET, "/policies", &m.token, None).await;
    assert_eq!(status, StatusCode::OK);
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn policy_pages_render_generate_edit_compare_and_refuse_what_they_must() {
    let app = TestApp::spawn().await;
    let ann_api = owner(&app, "ann@example.co.uk", "Quokka Widgets Ltd").await;
    join(&app, &ann_api, "vic@example.co.uk", "viewer").await;
    let mut ann = signed_in(&app, "ann@example.co.uk").await;

    let dash = ann.get("/dashboard").await;
    assert!(dash.html.contains(r#"href="/policies""#), "nav: policies");
    assert!(dash.html.contains(r#"href="/assistant""#), "nav: assistant");
    assert!(
        dash.html.contains(r#"href="/settings/ai""#),
        "nav: AI settings"
    );

    let empty = ann.get("/policies").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.html.contains("No policies yet"), "{}", empty.html);
    let form = ann.get("/policies/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.html.contains(r#"id="policy_type-access_control""#));
    assert!(form.html.contains(r#"name="framework_ids""#));
    assert!(form.html.contains(r#"maxlength="2000""#));

    // A forged form (no CSRF token) writes nothing.
    let forged = ann
        .post("/policies/new", &[("policy_type", "access_control")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.html.contains("Your form had expired"));
    assert!(api_policies(&app, &ann_api).await.is_empty());
    // Overlong instructions and an unknown type come back with their errors.
    let long = "x".repeat(2001);
    let refused = ann
        .submit(
            "/policies/new",
            &[("policy_type", "access_control"), ("instructions", &long)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("at most 2000 characters"));
    let unknown = ann
        .submit("/policies/new", &[("policy_type", "nonsense")])
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown.html.contains("Policy type: Unknown policy type"),
        "{}",
        unknown.html
    );

    let created = ann
        .submit(
            "/policies/new",
            &[
                ("policy_type", "access_control"),
                ("instructions", "We are fully remote."),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    let location = created.location.clone().unwrap();
    let id = id_after(&location, "/policies/");
    let first = ann.get(&location).await;
    assert_eq!(first.status, StatusCode::OK);
    if first.html.contains("Being written") {
        assert!(
            first
                .html
                .contains(r#"<meta http-equiv="refresh" content="2">"#)
        );
    }
    generated(&app, &ann_api, &id).await;
    let page = ann.get(&location).await;
    assert!(!page.html.contains("http-equiv"), "no refresh once ready");
    assert!(
        page.html.contains("Quokka Widgets Ltd"),
        "the text is shown"
    );
    assert!(page.html.contains("First drafted from ruleIQ"));
    assert!(page.html.contains("A.5.15"), "covered controls are listed");
    assert!(page.html.contains(r#"href="/controls/"#));
    assert!(
        page.html
            .contains(&format!(r#"action="/policies/{id}/submit""#))
    );
    assert!(
        page.html
            .contains(&format!("/policies/{id}/export?format=pdf"))
    );
    let library = ann.get("/policies").await;
    assert!(library.html.contains(&format!(r#"href="/policies/{id}""#)));
    assert!(
        library.html.to_lowercase().contains("<td>access control"),
        "the type"
    );
    assert!(library.html.contains("Template"), "the generated-by badge");
    let drafts = ann.get("/policies?status=approved").await;
    assert!(drafts.html.contains("No policies have this status"));
    let bad = ann.get("/policies?status=submitted").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The editor previews without saving, then saves a new version.
    let edit = ann.get(&format!("/policies/{id}/edit")).await;
    assert_eq!(edit.status, StatusCode::OK);
    let api = generated(&app, &ann_api, &id).await;
    let text = api["content_markdown"].as_str().unwrap().to_owned();
    let changed = format!("{text}\n## Visitors\n\nVisitors must <script>sign</script> in.\n");
    let preview = ann
        .submit(
            &format!("/policies/{id}/edit"),
            &[
                ("title", "Access control policy"),
                ("content_markdown", &changed),
                ("base_version", "1"),
                ("action", "preview"),
            ],
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(preview.html.contains("Preview (not saved yet)"));
    assert!(preview.html.contains("<h2>Visitors</h2>"));
    assert!(!preview.html.contains("<script>sign"), "raw HTML is text");
    assert_eq!(generated(&app, &ann_api, &id).await["version"], 1);
    let saved = ann
        .submit(
            &format!("/policies/{id}/edit"),
            &[
                ("title", "Access control policy"),
                ("content_markdown", &changed),
                ("base_version", "1"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let stale = ann
        .submit(
            &format!("/policies/{id}/edit"),
            &[
                ("title", "Access control policy"),
                ("content_markdown", &text),
                ("base_version", "1"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(stale.html.contains("Someone saved version 2"));
    let versions = ann.get(&format!("/policies/{id}/versions")).await;
    assert_eq!(versions.status, StatusCode::OK);
    assert!(versions.html.contains("2 (current)"));
    assert!(
        versions.html.contains("s template") || versions.html.contains("offline"),
        "{}",
        versions.html
    );
    assert!(versions.html.contains("you"), "the editor is named");
    let diff = ann.get(&format!("/policies/{id}/diff?from=1&to=2")).await;
    assert_eq!(diff.status, StatusCode::OK);
    assert!(diff.html.contains("<ins>"), "{}", diff.html);
    assert!(diff.html.contains("Added: </span>## Visitors"));
    assert!(diff.html.contains("unchanged lines"));
    let missing = ann.get(&format!("/policies/{id}/diff?from=1&to=9")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Submitted by Ann, who may approve in general but not her own work.
    let submitted = ann.submit(&format!("/policies/{id}/submit"), &[]).await;
    assert_eq!(submitted.status, StatusCode::SEE_OTHER);
    let page = ann.get(&location).await;
    assert!(page.html.contains("In review"));
    assert!(page.html.contains("another member must approve it"));
    assert!(!page.html.contains("approve-button"));
    let own = ann.submit(&format!("/policies/{id}/approve"), &[]).await;
    assert_eq!(own.status, StatusCode::CONFLICT);
    assert!(
        own.html.contains("another member must approve it"),
        "{}",
        own.html
    );

    let md = ann.get(&format!("/policies/{id}/export?format=md")).await;
    assert_eq!(md.status, StatusCode::OK);
    assert!(
        md.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert!(md.html.contains("## Visitors"));
    let bad_format = ann.get(&format!("/policies/{id}/export?format=exe")).await;
    assert_eq!(bad_format.status, StatusCode::NOT_FOUND);

    // Another organisation's policy is not found, by page, edit and export.
    owner(&app, "eve@example.org", "Eve Ltd").await;
    let mut eve = signed_in(&app, "eve@example.org").await;
    for path in [
        format!("/policies/{id}"),
        format!("/policies/{id}/edit"),
        format!("/policies/{id}/versions"),
        format!("/policies/{id}/export?format=pdf"),
    ] {
        let page = eve.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            page.html.contains("no such policy in your organisation"),
            "{path}"
        );
    }
    let archive = eve.submit(&format!("/policies/{id}/archive"), &[]).await;
    assert_eq!(archive.status, StatusCode::NOT_FOUND);

    // A viewer reads, but cannot write or change.
    let mut vic = signed_in(&app, "vic@example.co.uk").await;
    assert_eq!(vic.get(&location).await.status, StatusCode::OK);
    let vic_library = vic.get("/policies").await;
    assert!(!vic_library.html.contains(r#"href="/policies/new""#));
    let form = vic.get("/policies/new").await;
    assert_eq!(form.status, StatusCode::FORBIDDEN);
    let post = vic
        .submit("/policies/new", &[("policy_type", "access_control")])
        .await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);
    assert!(
        post.html
            .contains("Your role (viewer) cannot write policies.")
    );
    let withdraw = vic.submit(&format!("/policies/{id}/withdraw"), &[]).await;
    assert_eq!(withdraw.status, StatusCode::FORBIDDEN);
    assert_eq!(api_policies(&app, &ann_api).await.len(), 1);

    // Withdraw, archive, restore, then delete through the confirm page.
    let forged = ann.post(&format!("/policies/{id}/withdraw"), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    for step in ["withdraw", "archive", "withdraw"] {
        let done = ann.submit(&format!("/policies/{id}/{step}"), &[]).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{step}: {}", done.html);
    }
    let confirm = ann.get(&format!("/policies/{id}/delete")).await;
    assert!(confirm.html.contains("Yes, delete this policy"));
    let deleted = ann.submit(&format!("/policies/{id}/delete"), &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(ann.get(&location).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_assistant_answers_a_plain_form_and_streams_for_the_script() {
    let app = TestApp::spawn().await;
    let ann_api = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    join(&app, &ann_api, "vic@example.co.uk", "viewer").await;
    let mut ann = signed_in(&app, "ann@example.co.uk").await;

    let list = ann.get("/assistant").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.html.contains("None yet"));
    let created = ann.submit("/assistant", &[("title", "")]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    let location = created.location.unwrap();
    let id = id_after(&location, "/assistant/");
    let page = ann.get(&location).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("New conversation"));
    assert!(page.html.contains(r#"aria-live="polite""#));
    assert!(
        page.html
            .contains(r#"<script src="/static/assistant.js" defer>"#)
    );
    let script = ann.get("/static/assistant.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(
        script.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );

    // Without the CSRF token nothing is asked or stored.
    let forged = ann
        .post(
            &format!("/assistant/{id}/messages"),
            &[("content", "What is multi-factor authentication?")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let empty = ann
        .submit(&format!("/assistant/{id}/messages"), &[("content", "  ")])
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.html.contains("Write a question to ask."));
    let (_, detail) = send(
        &app,
        Method::GET,
        &format!("/chat/conversations/{id}"),
        &ann_api.token,
        None,
    )
    .await;
    assert!(
        detail["messages"].as_array().unwrap().is_empty(),
        "{detail}"
    );

    // The plain form: asked, answered, stored, redirected back.
    let asked = ann
        .submit(
            &format!("/assistant/{id}/messages"),
            &[("content", "What is multi-factor authentication?")],
        )
        .await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER, "{}", asked.html);
    let back = asked.location.unwrap();
    assert!(
        back.starts_with(&format!("/assistant/{id}#message-")),
        "{back}"
    );
    let (_, detail) = send(
        &app,
        Method::GET,
        &format!("/chat/conversations/{id}"),
        &ann_api.token,
        None,
    )
    .await;
    let messages = detail["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{detail}");
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[1]["role"], "assistant");
    let page = ann.get(&format!("/assistant/{id}")).await;
    assert!(page.html.contains("What is multi-factor authentication?"));
    assert!(page.html.contains("Assistant (offline"), "{}", page.html);
    if !messages[1]["citations"].as_array().unwrap().is_empty() {
        assert!(page.html.contains("Sources"));
        assert!(
            page.html.contains(r#"href="/controls/"#)
                || page.html.contains(r#"href="/policies/"#)
                || page.html.contains(r#"href="/evidence/"#)
        );
    }

    // The script's route streams tokens and then the stored message as HTML.
    let csrf = ann.csrf();
    let streamed = ann
        .client
        .post(format!("{}/assistant/{id}/stream", ann.base))
        .header("cookie", ann.cookie_header())
        .header("accept", "text/event-stream")
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("content", "What is a firewall?"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), StatusCode::OK);
    assert!(
        streamed.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = streamed.text().await.unwrap();
    assert!(body.contains("event: token"), "{body}");
    assert!(body.contains("event: done"), "{body}");
    assert!(
        body.contains(r#"class=\"message message-assistant\""#),
        "{body}"
    );
    let forged = ann
        .client
        .post(format!("{}/assistant/{id}/stream", ann.base))
        .header("cookie", ann.cookie_header())
        .form(&[("content", "What is a firewall?")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    // Another organisation's member, and a viewer, cannot see it.
    owner(&app, "eve@example.org", "Eve Ltd").await;
    let mut eve = signed_in(&app, "eve@example.org").await;
    let theirs = eve.get(&format!("/assistant/{id}")).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert!(theirs.html.contains("no such conversation"));
    let ask = eve
        .submit(&format!("/assistant/{id}/messages"), &[("content", "hi")])
        .await;
    assert_eq!(ask.status, StatusCode::NOT_FOUND);
    let mut vic = signed_in(&app, "vic@example.co.uk").await;
    let refused = vic.get("/assistant").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.html.contains("cannot use the assistant"));
    assert!(
        !vic.get("/dashboard")
            .await
            .html
            .contains(r#"href="/assistant""#)
    );

    // Deleting goes through a confirm page.
    let deleted = ann.submit(&format!("/assistant/{id}/delete"), &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(
        ann.get(&format!("/assistant/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn ai_settings_show_spending_and_refuse_a_bad_budget() {
    let app = TestApp::spawn().await;
    let ann_api = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    join(&app, &ann_api, "cat@example.co.uk", "compliance_manager").await;
    join(&app, &ann_api, "vic@example.co.uk", "viewer").await;
    let mut ann = signed_in(&app, "ann@example.co.uk").await;

    let page = ann.get("/settings/ai").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("offline"), "the providers table");
    assert!(page.html.contains("In use"));
    assert!(
        page.html.contains(r#"id="spend-by-day-t""#),
        "the day chart"
    );
    assert!(page.html.contains(r#"role="img""#));
    assert!(
        page.html.contains("AI spending by day, oldest first"),
        "its table"
    );
    assert!(page.html.contains(r#"action="/settings/ai/budget""#));

    let negative = ann
        .submit(
            "/settings/ai/budget",
            &[
                ("daily_limit_usd", "-5"),
                ("monthly_limit_usd", ""),
                ("warning_threshold_percent", "80"),
            ],
        )
        .await;
    assert_eq!(negative.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        negative
            .html
            .contains("Daily limit: A limit cannot be negative."),
        "{}",
        negative.html
    );
    assert!(negative.html.contains(r#"id="daily_limit_usd-error""#));
    assert!(negative.html.contains(r#"value="-5""#), "the value is kept");
    let words = ann
        .submit("/settings/ai/budget", &[("daily_limit_usd", "five")])
        .await;
    assert_eq!(words.status, StatusCode::UNPROCESSABLE_ENTITY);
    let forged = ann
        .post("/settings/ai/budget", &[("daily_limit_usd", "5")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let saved = ann
        .submit(
            "/settings/ai/budget",
            &[
                ("daily_limit_usd", "5"),
                ("monthly_limit_usd", "50.5"),
                ("warning_threshold_percent", "75"),
                ("hard_limit", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let res = call(&app, Method::GET, "/ai/budget", &ann_api.token, None).await;
    let budget: Value = res.json().await.unwrap();
    assert_eq!(budget["daily_limit_usd"], 5.0);
    assert_eq!(budget["monthly_limit_usd"], 50.5);
    assert_eq!(budget["warning_threshold_percent"], 75);
    assert_eq!(budget["hard_limit"], true);
    let page = ann.get("/settings/ai").await;
    assert!(page.html.contains("Saved the AI budget."));
    assert!(page.html.contains("daily limit of $5"), "{}", page.html);

    // A compliance manager sees the page, not the form, and cannot post it.
    let mut cat = signed_in(&app, "cat@example.co.uk").await;
    let seen = cat.get("/settings/ai").await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(!seen.html.contains(r#"action="/settings/ai/budget""#));
    assert!(
        !seen.html.contains(r#"href="/settings/ai""#),
        "not in the nav"
    );
    let post = cat
        .submit("/settings/ai/budget", &[("daily_limit_usd", "1")])
        .await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);
    let mut vic = signed_in(&app, "vic@example.co.uk").await;
    assert_eq!(vic.get("/settings/ai").await.status, StatusCode::FORBIDDEN);
}

// ---- In Chromium ----

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn sign_in(browser: &Client, base: &str, email: &str) {
    browser.goto(&format!("{base}/sign-in")).await.unwrap();
    fill(browser, "#email", email).await;
    fill(browser, "#password", PASSWORD).await;
    click(browser, "form[action='/sign-in'] button[type=submit]").await;
    arrives_under(browser, "/dashboard").await;
}

#[tokio::test]
async fn a_policy_is_written_edited_submitted_approved_by_another_and_exported_in_chromium() {
    let app = TestApp::spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Quokka Widgets Ltd").await;
    join(&app, &ann, "cat@example.co.uk", "compliance_manager").await;
    let driver = Driver::start().await;
    let author = driver.browser().await;
    let approver = driver.browser().await;
    let base = app.base.clone();

    journey("policy", &[&author, &approver], async {
        sign_in(&author, &base, "ann@example.co.uk").await;
        click(&author, "nav a[href='/policies']").await;
        arrives_under(&author, "/policies").await;
        shows(&author, "No policies yet").await;
        click(&author, "main a[href='/policies/new']").await;
        arrives_under(&author, "/policies/new").await;
        click(&author, "#policy_type-access_control").await;
        click(&author, "#generate-form button[type=submit]").await;
        // The page refreshes itself until the text is there.
        let mut policy = String::new();
        for _ in 0..200 {
            policy = path(&author).await;
            if policy.starts_with("/policies/") && policy != "/policies/new" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shows(&author, "Quokka Widgets Ltd").await;
        shows(&author, "First drafted from ruleIQ").await;

        click(&author, &format!("a[href='{policy}/edit']")).await;
        arrives_under(&author, &format!("{policy}/edit")).await;
        fill(
            &author,
            "#content_markdown",
            "\n\n## Visitors\n\nVisitors must sign in at reception.\n",
        )
        .await;
        click(&author, "#preview-button").await;
        shows(&author, "Preview (not saved yet)").await;
        click(&author, "#save-button").await;
        shows(&author, "Saved version 2").await;
        assert_eq!(path(&author).await, policy);
        shows(&author, "Visitors must sign in at reception.").await;
        click(&author, "#submit-button").await;
        shows(&author, "for approval; another member will approve it").await;
        shows(&author, "another member must approve it").await;

        sign_in(&approver, &base, "cat@example.co.uk").await;
        approver.goto(&format!("{base}{policy}")).await.unwrap();
        shows(&approver, "Submitted").await;
        click(&approver, "#approve-button").await;
        shows(&approver, "Approved “").await;
        let status = approver
            .find(Locator::Css("#status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(status, "Approved");

        // The export link, fetched with the approver's session cookie.
        let href = approver
            .find(Locator::Css("#export-pdf"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        let cookies: Vec<String> = approver
            .get_all_cookies()
            .await
            .unwrap()
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect();
        let pdf = reqwest::Client::new()
            .get(format!("{base}{href}"))
            .header("cookie", cookies.join("; "))
            .send()
            .await
            .unwrap();
        assert_eq!(pdf.status(), StatusCode::OK);
        assert_eq!(pdf.headers()["content-type"], "application/pdf");
        assert!(
            pdf.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        let bytes = pdf.bytes().await.unwrap();
        assert!(bytes.starts_with(b"%PDF"), "a PDF");

        // The assistant answers through the streaming script, in place.
        author.goto(&format!("{base}/assistant")).await.unwrap();
        click(&author, "#new-conversation button[type=submit]").await;
        let conversation = arrives_under(&author, "/assistant/").await;
        fill(
            &author,
            "#content",
            "What does our access control policy say?",
        )
        .await;
        click(&author, "#ask-button").await;
        shows(&author, "Assistant (offline").await;
        let said = author
            .find(Locator::Css("#ask-status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(said, "Answer received.", "answered by the script");
        assert_eq!(path(&author).await, conversation);
    })
    .await;
    author.close().await.ok();
    approver.close().await.ok();
}

#[tokio::test]
async fn the_wizard_links_each_question_to_the_assistants_help() {
    let app = TestApp::spawn().await;
    let ann_api = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    owner(&app, "eve@example.org", "Eve Ltd").await;
    let (status, a) = crate::assessments::send(
        &app,
        Method::POST,
        "/assessments",
        &ann_api.token,
        Some(serde_json::json!({"framework_id": "cyber-essentials"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let aid = a["id"].as_str().unwrap().to_owned();
    let (_, qs) = crate::assessments::send(
        &app,
        Method::GET,
        &format!("/assessments/{aid}/questions"),
        &ann_api.token,
        None,
    )
    .await;
    let qid = qs["items"][0]["id"].as_str().unwrap().to_owned();
    let control = qs["items"][0]["controls"][0]["ref"]
        .as_str()
        .map(str::to_owned);

    let mut ann = signed_in(&app, "ann@example.co.uk").await;
    let wizard = ann.get(&format!("/assessments/{aid}")).await;
    let link = format!("/assessments/{aid}/questions/{qid}/help");
    assert!(wizard.html.contains(&link), "{}", wizard.html);
    let help = ann.get(&link).await;
    assert_eq!(help.status, StatusCode::OK, "{}", help.html);
    assert!(help.html.contains("Help with a question"));
    assert!(
        help.html.contains(r#"href="/controls/"#),
        "cites a control: {}",
        help.html
    );
    if let Some(r) = control {
        assert!(help.html.contains(&r), "names the question's control {r}");
    }
    // Another organisation's assessment, or a made-up question, is a 404 page.
    let mut eve = signed_in(&app, "eve@example.org").await;
    assert_eq!(eve.get(&link).await.status, StatusCode::NOT_FOUND);
    let made_up = format!("/assessments/{aid}/questions/{}/help", uuid::Uuid::now_v7());
    assert_eq!(ann.get(&made_up).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        ann.get(&format!("/assessments/{aid}/questions/nope/help"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}
