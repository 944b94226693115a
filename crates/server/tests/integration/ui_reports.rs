//! The report, schedule and jobs pages: an executive summary asked for through the
//! form, followed on its self-refreshing page until ready and downloaded, in a real
//! headless Chromium and as a browser without JavaScript; and what each page must
//! turn away or explain (a type in a format it does not come in, forged forms, other
//! organisations' reports and jobs, read-only roles, bad cron expressions, reports
//! still being made, failed or past their retention).

use fantoccini::{Client, Locator};
use reqwest::{Method, StatusCode, redirect::Policy};
use ruleiq_db::{
    entities::report,
    sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter},
};
use ruleiq_jobs::kinds::CANARY;
use ruleiq_test_support::TestApp;
use serde_json::{Value, json};
use std::{collections::HashMap, time::Duration};
use uuid::Uuid;

use crate::{
    browser::{Driver, arrives_under, fill, journey, path, text_of},
    members::{Member, PASSWORD, call, join, owner},
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
    body: Vec<u8>,
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
            body,
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

/// The value of the first `attribute="…"` after `marker` in `html`.
fn attribute_after(html: &str, marker: &str, attribute: &str) -> String {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} is on the page: {html}"));
    let needle = format!("{attribute}=\"");
    let from = start + html[start..].find(&needle).unwrap() + needle.len();
    html[from..from + html[from..].find('"').unwrap()].to_owned()
}

/// The id of the first framework the report form offers.
fn first_framework(html: &str) -> String {
    let select = html
        .find(r#"<select id="framework_id""#)
        .expect("a framework list");
    let rest = &html[select..];
    let first = rest.find(r#"<option value=""#).unwrap();
    // Past "All frameworks", whose value is empty.
    attribute_after(&rest[first + 15..], "<option", "value")
}

/// Polls a report's page until it is ready; the last page seen.
async fn until_ready(browser: &mut Browser, location: &str) -> Page {
    for _ in 0..900 {
        let page = browser.get(location).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        if page.html.contains(r#"id="download""#) {
            return page;
        }
        assert!(
            !page.html.contains("Making this report failed"),
            "{}",
            page.html
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the report at {location} never became ready");
}

async fn set_report(app: &TestApp, id: &str, change: report::ActiveModel) {
    report::Entity::update_many()
        .set(change)
        .filter(report::Column::Id.eq(Uuid::parse_str(id).unwrap()))
        .exec(&app.components.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_report_is_asked_for_followed_until_ready_downloaded_and_refused_where_it_must_be() {
    let app = TestApp::spawn().await;
    let ann_api = owner(&app, "ann@example.co.uk", "Quokka Widgets Ltd").await;
    join(&app, &ann_api, "vic@example.co.uk", "viewer").await;
    let mut ann = signed_in(&app, "ann@example.co.uk").await;

    let dash = ann.get("/dashboard").await;
    assert!(dash.html.contains(r#"href="/reports""#), "nav: reports");
    assert!(dash.html.contains(r#"href="/admin/jobs""#), "nav: jobs");

    let empty = ann.get("/reports").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.html.contains("Create a report"));
    assert!(empty.html.contains("No reports yet"), "{}", empty.html);
    assert!(
        empty
            .html
            .contains(r#"id="report_type-executive_summary" value="executive_summary""#)
    );
    assert!(
        empty.html.contains("five minutes"),
        "each type is described"
    );
    assert!(
        empty.html.contains("Comes as Excel, CSV or JSON."),
        "the formats per type"
    );
    for format in ["pdf", "docx", "xlsx", "csv", "zip", "json"] {
        assert!(
            empty.html.contains(&format!(r#"<option value="{format}""#)),
            "{format} is offered"
        );
    }
    let framework = first_framework(&empty.html);
    assert!(framework.parse::<Uuid>().is_ok(), "{framework}");

    // A forged form (no CSRF token) makes nothing.
    let forged = ann
        .post(
            "/reports",
            &[("report_type", "executive_summary"), ("format", "pdf")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.html.contains("Your form had expired"));
    let (_, listed) =
        crate::assessments::send(&app, Method::GET, "/reports", &ann_api.token, None).await;
    assert!(listed["items"].as_array().unwrap().is_empty());

    // A type in a format it does not come in: the page names the ones it does.
    let wrong = ann
        .submit(
            "/reports",
            &[("report_type", "evidence_register"), ("format", "pdf")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.html.contains("There is a problem"), "the summary");
    assert!(
        wrong
            .html
            .contains("An evidence register comes as Excel, CSV or JSON, not as PDF"),
        "{}",
        wrong.html
    );
    assert!(
        wrong.html.contains(r##"href="#format""##),
        "the summary links to the field"
    );
    assert!(wrong.html.contains(r#"id="format-error""#));
    assert!(wrong.html.contains(r#"aria-invalid="true""#));
    assert!(
        wrong
            .html
            .contains(r#"id="report_type-evidence_register" value="evidence_register" aria-describedby="report_type-evidence_register-help" checked"#),
        "the choice is kept"
    );
    let none = ann.submit("/reports", &[("format", "pdf")]).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(none.html.contains("Choose the type of report."));
    let scoped = ann
        .submit(
            "/reports",
            &[
                ("report_type", "policy_pack"),
                ("format", "pdf"),
                ("framework_id", &framework),
            ],
        )
        .await;
    assert_eq!(scoped.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        scoped
            .html
            .contains("A policy pack cannot be limited to one framework"),
        "{}",
        scoped.html
    );
    let made_up = Uuid::now_v7().to_string();
    let unknown = ann
        .submit(
            "/reports",
            &[
                ("report_type", "gap_analysis"),
                ("format", "pdf"),
                ("framework_id", &made_up),
            ],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown
            .html
            .contains("Framework must be one from the list.")
    );

    // An executive summary as a PDF: to its page, which follows the job.
    let created = ann
        .submit(
            "/reports",
            &[
                ("report_type", "executive_summary"),
                ("format", "pdf"),
                ("framework_id", ""),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    let location = created.location.clone().unwrap();
    let id = location.strip_prefix("/reports/").unwrap().to_owned();
    assert!(id.parse::<Uuid>().is_ok(), "{location}");
    let first = ann.get(&location).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.html.contains("is being made"), "the flash");
    if !first.html.contains(r#"id="download""#) {
        assert!(
            first
                .html
                .contains(r#"<meta http-equiv="refresh" content="2">"#),
            "{}",
            first.html
        );
        assert!(first.html.contains(r#"<progress id="progress" max="100""#));
        assert!(first.html.contains("refreshes by itself"));
    }
    let ready = until_ready(&mut ann, &location).await;
    assert!(!ready.html.contains("http-equiv"), "no refresh once ready");
    assert!(ready.html.contains("Ready to download"));
    assert!(ready.html.contains("SHA-256"));
    assert!(ready.html.contains("Kept until"));
    let download = attribute_after(&ready.html, r#"id="download""#, "href");
    assert_eq!(download, format!("/reports/{id}/download"));
    let file = ann.get(&download).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.headers["content-type"], "application/pdf");
    let disposition = file.headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(
        disposition.contains("executive-summary-quokka-widgets-ltd"),
        "{disposition}"
    );
    assert!(file.body.starts_with(b"%PDF"), "a PDF");
    let (_, api) = crate::assessments::send(
        &app,
        Method::GET,
        &format!("/reports/{id}"),
        &ann_api.token,
        None,
    )
    .await;
    assert!(
        ready.html.contains(api["sha256"].as_str().unwrap()),
        "the page shows the file's SHA-256"
    );
    assert_eq!(api["size_bytes"].as_u64().unwrap(), file.body.len() as u64);

    // The history lists it, newest first, with its download link.
    let history = ann.get("/reports").await;
    assert!(history.html.contains("Reports, newest first"));
    assert!(history.html.contains(&format!(r#"href="/reports/{id}""#)));
    assert!(
        history
            .html
            .contains(r#"<span class="badge badge-ready">Ready</span>"#)
    );
    assert!(history.html.contains("<td>100%</td>"));
    assert!(
        history
            .html
            .contains(&format!(r#"href="/reports/{id}/download""#))
    );

    // Another organisation's report, or a made-up id, is not found.
    owner(&app, "eve@example.org", "Eve Ltd").await;
    let mut eve = signed_in(&app, "eve@example.org").await;
    for path in [
        format!("/reports/{id}"),
        format!("/reports/{id}/download"),
        "/reports/nope".to_owned(),
        format!("/reports/{made_up}"),
    ] {
        let page = eve.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            page.html.contains("no such report in your organisation"),
            "{path}"
        );
    }
    assert!(!eve.get("/reports").await.html.contains(&id));

    // A viewer reads and downloads, but cannot create.
    let mut vic = signed_in(&app, "vic@example.co.uk").await;
    let seen = vic.get("/reports").await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.html.contains(&format!(r#"href="/reports/{id}""#)));
    assert!(!seen.html.contains(r#"id="create-form""#));
    assert!(
        seen.html
            .contains("Your role (viewer) can see and download reports")
    );
    assert!(
        !seen.html.contains(r#"href="/admin/jobs""#),
        "no jobs link for a viewer"
    );
    let refused = vic
        .submit(
            "/reports",
            &[("report_type", "executive_summary"), ("format", "pdf")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused
            .html
            .contains("Your role (viewer) cannot create reports.")
    );
    let theirs = vic.get(&download).await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert!(theirs.body.starts_with(b"%PDF"));

    // Still being made: the page refreshes and shows its progress; no file yet (409).
    set_report(
        &app,
        &id,
        report::ActiveModel {
            status: Set("running".into()),
            progress: Set(40),
            progress_note: Set(Some("counting evidence".into())),
            ..Default::default()
        },
    )
    .await;
    let running = ann.get(&location).await;
    assert!(
        running
            .html
            .contains(r#"<meta http-equiv="refresh" content="2">"#)
    );
    assert!(
        running
            .html
            .contains(r#"<progress id="progress" max="100" value="40">40%</progress>"#),
        "{}",
        running.html
    );
    assert!(running.html.contains("Counting evidence."));
    let early = ann.get(&download).await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert!(early.html.contains("not ready yet"), "{}", early.html);
    assert!(early.html.contains("still being made (40 %)"));

    // Failed: the reason, and a way to make it again (409 for the file).
    set_report(
        &app,
        &id,
        report::ActiveModel {
            status: Set("failed".into()),
            error: Set(Some("the typesetter ran out of paper".into())),
            ..Default::default()
        },
    )
    .await;
    let broken = ann.get(&location).await;
    assert!(!broken.html.contains("http-equiv"));
    assert!(broken.html.contains("Making this report failed"));
    assert!(broken.html.contains("The typesetter ran out of paper."));
    assert!(broken.html.contains(r#"id="again-button""#));
    let file = ann.get(&download).await;
    assert_eq!(file.status, StatusCode::CONFLICT);
    assert!(file.html.contains("This report failed"));
    assert!(file.html.contains("the typesetter ran out of paper"));
    let vic_sees = vic.get(&location).await;
    assert!(
        !vic_sees.html.contains(r#"id="again-button""#),
        "a viewer cannot"
    );

    // Past its retention: said so, the file is gone (410), and it can be made again.
    set_report(
        &app,
        &id,
        report::ActiveModel {
            status: Set("expired".into()),
            ..Default::default()
        },
    )
    .await;
    let gone = ann.get(&location).await;
    assert_eq!(gone.status, StatusCode::OK);
    assert!(
        gone.html.contains("This report's file has been removed"),
        "{}",
        gone.html
    );
    assert!(
        gone.html
            .contains(r#"<span class="badge badge-expired" id="status">Expired</span>"#)
    );
    assert!(!gone.html.contains(r#"id="download""#));
    let file = ann.get(&download).await;
    assert_eq!(file.status, StatusCode::GONE);
    assert!(
        file.html.contains("end of its retention period"),
        "{}",
        file.html
    );
    assert!(file.html.contains(r#"id="again-button""#));
    let again = ann
        .submit(
            "/reports",
            &[
                ("report_type", "executive_summary"),
                ("format", "pdf"),
                ("framework_id", ""),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.html);
    let fresh = again.location.unwrap();
    assert_ne!(fresh, location, "a new report");
    until_ready(&mut ann, &fresh).await;
    app.stop().await;
}

#[tokio::test]
async fn schedules_are_added_with_errors_per_field_listed_and_deleted() {
    let app = TestApp::spawn().await;
    let ann_api = owner(&app, "ann@example.co.uk", "Quokka Widgets Ltd").await;
    join(&app, &ann_api, "vic@example.co.uk", "viewer").await;
    let mut ann = signed_in(&app, "ann@example.co.uk").await;

    let empty = ann.get("/reports/schedules").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.html.contains("No schedules yet"));
    assert!(
        empty
            .html
            .contains(r#"name="timezone" value="Europe/London""#)
    );
    assert!(empty.html.contains(
        "Five fields: minute hour day-of-month month day-of-week, e.g. <code>0 8 * * 1</code> = Mondays 08:00."
    ));
    assert!(empty.html.contains(r#"<textarea id="recipients""#));

    let good = [
        ("report_type", "executive_summary"),
        ("format", "pdf"),
        ("framework_id", ""),
        ("cron", "0 8 * * 1"),
        ("timezone", "Europe/London"),
        ("recipients", "board@quokka.example,\r\ncfo@quokka.example"),
    ];
    let with = |name: &'static str, value: &'static str| {
        good.iter()
            .map(|(k, v)| (*k, if *k == name { value } else { *v }))
            .collect::<Vec<_>>()
    };
    for (name, value, says) in [
        ("cron", "0 8 * *", "Schedule: Expected five fields"),
        ("cron", "0 25 * * *", "Schedule: "),
        ("timezone", "Mars/Olympus", "is not an IANA time zone"),
        ("recipients", "board", "is not an e-mail address"),
        (
            "recipients",
            " ",
            "Recipients: Name at least one e-mail address.",
        ),
        (
            "format",
            "zip",
            "An executive summary comes as PDF, Word or JSON, not as ZIP",
        ),
    ] {
        let refused = ann.submit("/reports/schedules", &with(name, value)).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}={value}"
        );
        assert!(
            refused.html.contains(says),
            "{name}={value}: {}",
            refused.html
        );
        assert!(
            refused.html.contains(&format!(r#"id="{name}-error""#)),
            "{name}: the message is at the field"
        );
        assert!(
            refused.html.contains(&format!(r##"href="#{name}""##)),
            "{name}: the summary"
        );
    }
    let kept = ann
        .submit("/reports/schedules", &with("cron", "0 8 * *"))
        .await;
    assert!(
        kept.html.contains(r#"value="0 8 * *""#),
        "the values are kept"
    );
    assert!(kept.html.contains("board@quokka.example,"));
    let forged = ann.post("/reports/schedules", &good).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let added = ann.submit("/reports/schedules", &good).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.html);
    assert_eq!(added.location.as_deref(), Some("/reports/schedules"));
    let list = ann.get("/reports/schedules").await;
    assert!(
        list.html.contains("Scheduled an executive summary (PDF)"),
        "{}",
        list.html
    );
    assert!(list.html.contains("Report schedules, oldest first"));
    assert!(list.html.contains("<code>0 8 * * 1</code>"));
    assert!(list.html.contains("<td>Europe/London</td>"));
    assert!(list.html.contains("<li>board@quokka.example</li>"));
    assert!(list.html.contains("<li>cfo@quokka.example</li>"));
    assert!(list.html.contains(":00 UTC"), "the next run");
    let action = attribute_after(&list.html, "schedule-table", "action");
    assert!(
        action.starts_with("/reports/schedules/") && action.ends_with("/delete"),
        "{action}"
    );

    // A viewer sees it but cannot add or delete; another organisation cannot find it.
    let mut vic = signed_in(&app, "vic@example.co.uk").await;
    let seen = vic.get("/reports/schedules").await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.html.contains("<code>0 8 * * 1</code>"));
    assert!(!seen.html.contains(r#"id="schedule-form""#));
    assert!(!seen.html.contains(&action));
    assert_eq!(
        vic.submit("/reports/schedules", &good).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(vic.submit(&action, &[]).await.status, StatusCode::FORBIDDEN);
    owner(&app, "eve@example.org", "Eve Ltd").await;
    let mut eve = signed_in(&app, "eve@example.org").await;
    assert!(
        eve.get("/reports/schedules")
            .await
            .html
            .contains("No schedules yet")
    );
    let theirs = eve.submit(&action, &[]).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert!(
        theirs
            .html
            .contains("no such schedule in your organisation")
    );

    // Deleting needs the form's token.
    let forged = ann.post(&action, &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.html.contains("Your form had expired"));
    assert!(
        forged.html.contains("<code>0 8 * * 1</code>"),
        "still there"
    );
    let deleted = ann.submit(&action, &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    let after = ann.get("/reports/schedules").await;
    assert!(after.html.contains("Deleted the schedule."));
    assert!(after.html.contains("No schedules yet"));
    app.stop().await;
}

/// Waits until a job reaches a final state.
async fn settled(app: &TestApp, id: ruleiq_core::JobId) -> String {
    for _ in 0..1200 {
        let job = app.components.jobs.get(id).await.unwrap().unwrap();
        if matches!(job.status.as_str(), "succeeded" | "failed" | "cancelled") {
            return job.status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} never finished");
}

async fn status_of(app: &TestApp, id: ruleiq_core::JobId) -> String {
    app.components.jobs.get(id).await.unwrap().unwrap().status
}

#[tokio::test]
async fn owners_retry_and_cancel_jobs_on_the_jobs_page_and_no_one_else_can() {
    // No worker inside the server, so a queued job stays queued until the test runs
    // one.
    let app =
        TestApp::spawn_with(|raw| raw.embedded_worker = ruleiq_config::raw::Flag(false)).await;
    let ann_api: Member = owner(&app, "ann@example.co.uk", "Quokka Widgets Ltd").await;
    join(&app, &ann_api, "vic@example.co.uk", "viewer").await;
    let me: Value = call(&app, Method::GET, "/auth/me", &ann_api.token, None)
        .await
        .json()
        .await
        .unwrap();
    let org: Uuid = me["organization"]["id"].as_str().unwrap().parse().unwrap();

    // One job that fails its only attempt (run by a worker started for it), and one
    // left queued.
    let broken = app
        .components
        .jobs
        .enqueue(
            CANARY,
            json!({"message": "hello", "fail_attempts": 1}),
            Some(org),
            1,
        )
        .await
        .unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let worker = app.components.spawn_worker("test".into(), token.clone());
    assert_eq!(settled(&app, broken).await, "failed");
    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the worker stops")
        .unwrap();
    let waiting = app
        .components
        .jobs
        .enqueue(CANARY, json!({"message": "later"}), Some(org), 3)
        .await
        .unwrap();

    let mut ann = signed_in(&app, "ann@example.co.uk").await;
    let page = ann.get("/admin/jobs").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("Jobs, newest first"));
    assert!(page.html.contains("<code>canary</code>"));
    assert!(
        page.html
            .contains(r#"<span class="badge badge-failed">Failed</span>"#)
    );
    assert!(
        page.html
            .contains(r#"<span class="badge badge-queued">Queued</span>"#)
    );
    assert!(page.html.contains("<td>1 of 1</td>"));
    assert!(
        page.html
            .contains("canary asked to fail its first 1 attempts")
    );
    let retry = format!("/admin/jobs/{broken}/retry");
    let cancel = format!("/admin/jobs/{waiting}/cancel");
    assert!(page.html.contains(&format!(r#"action="{retry}""#)));
    assert!(page.html.contains(&format!(r#"action="{cancel}""#)));
    assert!(!page.html.contains(&format!("/admin/jobs/{broken}/cancel")));
    assert!(!page.html.contains(&format!("/admin/jobs/{waiting}/retry")));

    let failed_tab = ann.get("/admin/jobs?status=failed").await;
    assert!(
        failed_tab
            .html
            .contains(r#"href="/admin/jobs?status=failed" aria-current="page""#)
    );
    assert!(failed_tab.html.contains(&retry));
    assert!(!failed_tab.html.contains(&cancel));
    let none = ann.get("/admin/jobs?status=succeeded").await;
    assert!(none.html.contains("No succeeded jobs."));
    let bad = ann.get("/admin/jobs?status=dead").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.html
            .contains("Status must be queued, running, failed, succeeded or cancelled.")
    );

    // A forged form changes nothing; a real one queues the job again.
    let forged = ann.post(&retry, &[("status", "failed")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.html.contains("Your form had expired"));
    assert_eq!(status_of(&app, broken).await, "failed");
    let retried = ann.submit(&retry, &[("status", "failed")]).await;
    assert_eq!(retried.status, StatusCode::SEE_OTHER, "{}", retried.html);
    assert_eq!(
        retried.location.as_deref(),
        Some("/admin/jobs?status=failed")
    );
    assert_eq!(status_of(&app, broken).await, "queued");
    let back = ann.get("/admin/jobs?status=failed").await;
    assert!(
        back.html
            .contains("Queued the canary job again, with a fresh set of 1 attempts."),
        "{}",
        back.html
    );

    let cancelled = ann.submit(&cancel, &[("status", "")]).await;
    assert_eq!(
        cancelled.status,
        StatusCode::SEE_OTHER,
        "{}",
        cancelled.html
    );
    assert_eq!(cancelled.location.as_deref(), Some("/admin/jobs"));
    assert_eq!(status_of(&app, waiting).await, "cancelled");
    assert!(
        ann.get("/admin/jobs")
            .await
            .html
            .contains("Cancelled the queued canary job")
    );
    let twice = ann.submit(&cancel, &[]).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(
        twice.html.contains("only a queued job can be cancelled"),
        "{}",
        twice.html
    );
    let cancelled_tab = ann.get("/admin/jobs?status=cancelled").await;
    assert!(
        cancelled_tab
            .html
            .contains(&format!("/admin/jobs/{waiting}/retry"))
    );
    let missing = ann
        .submit(&format!("/admin/jobs/{}/retry", Uuid::now_v7()), &[])
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        ann.submit("/admin/jobs/nope/cancel", &[]).await.status,
        StatusCode::NOT_FOUND
    );

    // A viewer gets the forbidden page; another organisation cannot find the job.
    let mut vic = signed_in(&app, "vic@example.co.uk").await;
    let refused = vic.get("/admin/jobs").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused
            .html
            .contains("Your role (viewer) cannot see or manage background jobs")
    );
    let post = vic
        .submit(&format!("/admin/jobs/{waiting}/retry"), &[])
        .await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);
    assert_eq!(status_of(&app, waiting).await, "cancelled");
    owner(&app, "eve@example.org", "Eve Ltd").await;
    let mut eve = signed_in(&app, "eve@example.org").await;
    assert!(eve.get("/admin/jobs").await.html.contains("No jobs yet."));
    let theirs = eve
        .submit(&format!("/admin/jobs/{waiting}/retry"), &[])
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(status_of(&app, waiting).await, "cancelled");
    app.stop().await;
}

/// Owners and admins read the organisation's outgoing mail and send a failed message
/// again; viewers and other organisations cannot.
#[tokio::test]
async fn administrators_read_the_outbox_and_send_a_failed_message_again() {
    use ruleiq_db::entities::mail_outbox;
    use ruleiq_services::mail::{MailStatus, Message, OutboxScope};
    // A mail server that refuses connections: the outbox is sending, every attempt fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = TestApp::spawn_with(move |raw| {
        raw.smtp_host = Some(ruleiq_test_support::text("127.0.0.1"));
        raw.smtp_port = Some(port);
        raw.smtp_tls = Some(ruleiq_test_support::text("none"));
    })
    .await;
    let ann_api = owner(&app, "ann@example.co.uk", "Quokka Widgets Ltd").await;
    join(&app, &ann_api, "vic@example.co.uk", "viewer").await;
    let me: Value = call(&app, Method::GET, "/auth/me", &ann_api.token, None)
        .await
        .json()
        .await
        .unwrap();
    let org: Uuid = me["organization"]["id"].as_str().unwrap().parse().unwrap();
    let id = app
        .components
        .outbox
        .enqueue(Message {
            organization_id: Some(org.into()),
            to: vec!["board@quokka.example".into()],
            subject: "Your scheduled Gap analysis is ready".into(),
            text: "Attached.".into(),
            ..Message::default()
        })
        .await
        .unwrap();
    // Once the sender has made its first attempt (refused), set the message as it
    // stands after its last one; the next attempt is far off, so nothing races this.
    for _ in 0..500 {
        let e = app
            .components
            .outbox
            .get(&OutboxScope::operator(), id)
            .await
            .unwrap();
        if e.attempts >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    mail_outbox::Entity::update_many()
        .set(mail_outbox::ActiveModel {
            status: Set("failed".into()),
            attempts: Set(5),
            max_attempts: Set(5),
            last_error: Set(Some("550 5.1.1 mailbox unavailable".into())),
            next_attempt_at: Set(None),
            ..Default::default()
        })
        .filter(mail_outbox::Column::Id.eq(id))
        .exec(&app.components.db)
        .await
        .unwrap();

    let mut ann = signed_in(&app, "ann@example.co.uk").await;
    let dash = ann.get("/dashboard").await;
    assert!(dash.html.contains(r#"href="/admin/mail""#), "nav: mail");
    let page = ann.get("/admin/mail").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("Your scheduled Gap analysis is ready"));
    assert!(page.html.contains("board@quokka.example"));
    assert!(
        page.html
            .contains(r#"<span class="badge badge-failed">Failed</span>"#)
    );
    assert!(page.html.contains("550 5.1.1 mailbox unavailable"));
    assert!(page.html.contains("<td>5 of 5</td>"));
    assert!(!page.html.contains("No mail server is configured"));
    let retry = format!("/admin/mail/{id}/retry");
    assert!(page.html.contains(&format!(r#"action="{retry}""#)));
    let failed_tab = ann.get("/admin/mail?status=failed").await;
    assert!(
        failed_tab
            .html
            .contains(r#"href="/admin/mail?status=failed" aria-current="page""#)
    );
    assert!(
        ann.get("/admin/mail?status=sent")
            .await
            .html
            .contains("No messages here.")
    );
    let bad = ann.get("/admin/mail?status=lost").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.html
            .contains("Status must be queued, failed, sent or logged.")
    );

    // A forged form changes nothing; a real one queues the message again.
    let status = |app: &TestApp| {
        let outbox = app.components.outbox.clone();
        async move {
            outbox
                .get(&OutboxScope::operator(), id)
                .await
                .unwrap()
                .status
        }
    };
    let forged = ann.post(&retry, &[("status", "failed")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(status(&app).await, MailStatus::Failed);
    let retried = ann.submit(&retry, &[("status", "failed")]).await;
    assert_eq!(retried.status, StatusCode::SEE_OTHER, "{}", retried.html);
    assert_eq!(
        retried.location.as_deref(),
        Some("/admin/mail?status=failed")
    );
    assert_eq!(status(&app).await, MailStatus::Queued);
    let twice = ann.submit(&retry, &[]).await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.html);
    assert!(twice.html.contains("only failed or logged messages"));
    let missing = ann
        .submit(&format!("/admin/mail/{}/retry", Uuid::now_v7()), &[])
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        ann.submit("/admin/mail/nope/retry", &[]).await.status,
        StatusCode::NOT_FOUND
    );

    // A viewer gets the forbidden page and no link; another organisation sees nothing.
    let mut vic = signed_in(&app, "vic@example.co.uk").await;
    assert!(
        !vic.get("/dashboard")
            .await
            .html
            .contains(r#"href="/admin/mail""#)
    );
    let refused = vic.get("/admin/mail").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused
            .html
            .contains("Your role (viewer) cannot read the organisation")
    );
    assert_eq!(vic.submit(&retry, &[]).await.status, StatusCode::FORBIDDEN);
    owner(&app, "eve@example.org", "Eve Ltd").await;
    let mut eve = signed_in(&app, "eve@example.org").await;
    assert!(
        eve.get("/admin/mail")
            .await
            .html
            .contains("No messages yet.")
    );
    assert_eq!(eve.submit(&retry, &[]).await.status, StatusCode::NOT_FOUND);
    app.stop().await;
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

#[tokio::test]
async fn an_executive_summary_is_asked_for_followed_and_downloaded_in_chromium() {
    let app = TestApp::spawn().await;
    owner(&app, "ann@example.co.uk", "Quokka Widgets Ltd").await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let base = app.base.clone();

    journey("report", &[&browser], async {
        browser.goto(&format!("{base}/sign-in")).await.unwrap();
        fill(&browser, "#email", "ann@example.co.uk").await;
        fill(&browser, "#password", PASSWORD).await;
        click(&browser, "form[action='/sign-in'] button[type=submit]").await;
        arrives_under(&browser, "/dashboard").await;

        click(&browser, "nav a[href='/reports']").await;
        arrives_under(&browser, "/reports").await;
        assert!(text_of(&browser).await.contains("No reports yet"));
        click(&browser, "#report_type-executive_summary").await;
        browser
            .find(Locator::Css("#format"))
            .await
            .unwrap()
            .select_by_value("pdf")
            .await
            .unwrap();
        click(&browser, "#create-button").await;

        // The report's page refreshes itself until the file is ready.
        let mut report = String::new();
        for _ in 0..200 {
            report = path(&browser).await;
            if report.starts_with("/reports/") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(report.len() > "/reports/".len(), "{report}");
        let mut download = None;
        for _ in 0..1200 {
            if let Ok(link) = browser.find(Locator::Css("#download")).await {
                download = link.attr("href").await.unwrap();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let href = download.expect("the report became ready");
        assert_eq!(href, format!("{report}/download"));
        assert_eq!(
            path(&browser).await,
            report,
            "the refresh stayed on the page"
        );
        let main = text_of(&browser).await;
        assert!(main.contains("Ready to download"), "{main}");
        assert!(main.contains("SHA-256"), "{main}");
        let status = browser
            .find(Locator::Css("#status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(status, "Ready");

        // The download link, fetched with the browser's session cookie.
        let cookies: Vec<String> = browser
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
        assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF"), "a PDF");

        // The history lists it as ready, with the same link.
        click(&browser, "nav a[href='/reports']").await;
        arrives_under(&browser, "/reports").await;
        let row = browser
            .find(Locator::Css(&format!("a.download-link[href='{href}']")))
            .await;
        assert!(row.is_ok(), "the history links the download");
    })
    .await;
    browser.close().await.ok();
}
