//! "From profile to plan" in the pages, as a browser without JavaScript uses them:
//! onboarding, the assessment wizard, results, the plan and its tasks, and the
//! dashboard; and the bad input each page must turn away.

use chrono::{Days, Utc};
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
    html: String,
}

impl Page {
    /// The flash message the redirect carries, decoded.
    fn flash(&self, browser: &Browser) -> String {
        browser
            .cookies
            .get("ruleiq_flash")
            .map(|f| {
                let mut out = Vec::new();
                let b = f.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    if b[i] == b'%' {
                        out.push(u8::from_str_radix(&f[i + 1..i + 3], 16).unwrap());
                        i += 3;
                    } else {
                        out.push(b[i]);
                        i += 1;
                    }
                }
                String::from_utf8(out).unwrap()
            })
            .unwrap_or_default()
    }
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
        Page {
            status: res.status(),
            location: res
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
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

    /// Posts a form with this browser's CSRF token.
    async fn submit(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.cookies["ruleiq_csrf"].clone();
        let mut fields = vec![("csrf_token", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields).await
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
}

const PASSWORD: &str = "otter lantern quarry velvet";

async fn register(app: &TestApp, org: &str, email: &str) -> Browser {
    let mut browser = Browser::new(app);
    browser.get("/register").await;
    let done = browser
        .submit(
            "/register",
            &[
                ("organization_name", org),
                ("full_name", "Ada Lovelace"),
                ("email", email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    browser
}

/// Every distinct value that follows `marker` up to the next `"`, in order.
fn all_after(html: &str, marker: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in html.split(marker).skip(1) {
        let value = part.split('"').next().unwrap().to_owned();
        if !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

fn id_in(location: &str, prefix: &str) -> String {
    location
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{location} starts with {prefix}"))
        .split(['/', '?', '#'])
        .next()
        .unwrap()
        .to_owned()
}

/// The HTML of the task with this id (its `<li>`).
fn task_html<'a>(html: &'a str, task: &str) -> &'a str {
    let start = html
        .find(&format!(r#"id="task-{task}""#))
        .expect("the task is on the page");
    let end = html[start..].find("</li>").unwrap();
    &html[start..start + end]
}

const PROFILE: &[(&str, &str)] = &[
    ("company_name", "Bakery Ltd"),
    ("industry", "retail"),
    ("employee_count", "12"),
    ("annual_turnover_gbp", "850,000"),
    ("country", "GB"),
    ("data_sensitivity", "medium"),
    ("handles_personal_data", "true"),
    ("uses_cloud_services", "true"),
    ("cloud_providers", "AWS, Microsoft 365"),
    ("planned_frameworks", "cyber-essentials"),
];

/// Saves the profile, starts a Cyber Essentials assessment from onboarding's
/// recommendations and returns its id.
async fn start_assessment(browser: &mut Browser) -> String {
    let saved = browser.submit("/onboarding", PROFILE).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let started = browser
        .submit(
            "/assessments",
            &[("framework", "cyber-essentials"), ("from", "onboarding")],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.html);
    id_in(started.location.as_deref().unwrap(), "/assessments/")
}

/// A completed assessment (nothing answered, so every control is a gap) and a plan.
async fn plan_of(browser: &mut Browser) -> (String, String) {
    let id = start_assessment(browser).await;
    let done = browser
        .submit(&format!("/assessments/{id}/complete"), &[])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let plan = browser
        .submit(&format!("/assessments/{id}/plans"), &[])
        .await;
    assert_eq!(plan.status, StatusCode::SEE_OTHER, "{}", plan.html);
    (id, id_in(plan.location.as_deref().unwrap(), "/plans/"))
}

#[tokio::test]
async fn from_profile_to_plan_to_dashboard_without_javascript() {
    let app = TestApp::spawn().await;
    let mut browser = register(&app, "Bakery Ltd", "ada@example.co.uk").await;

    // A new organisation is sent to onboarding from the dashboard.
    let dash = browser.get("/dashboard").await;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(dash.html.contains(r#"href="/onboarding""#), "{}", dash.html);
    for link in [r#"href="/assessments""#, r#"href="/plans""#] {
        assert!(dash.html.contains(link), "nav links to {link}");
    }

    // Step 1: the profile form, every field labelled; radio groups in fieldsets.
    let form = browser.get("/onboarding").await;
    assert_eq!(form.status, StatusCode::OK);
    for field in [
        "company_name",
        "industry",
        "employee_count",
        "annual_turnover_gbp",
        "country",
        "cloud_providers",
        "existing_certifications",
        "handles_personal_data",
        "data_sensitivity-low",
        "planned-cyber-essentials",
    ] {
        assert!(
            form.html.contains(&format!(r#"<label for="{field}">"#)),
            "a label for {field}"
        );
    }
    assert!(
        form.html
            .contains("<legend>How sensitive is the data you hold?</legend>")
    );
    assert!(
        form.html.contains(r#"value="Bakery Ltd""#),
        "pre-filled name"
    );

    let saved = browser.submit("/onboarding", PROFILE).await;
    assert_eq!(saved.location.as_deref(), Some("/onboarding/frameworks"));

    // Step 2: recommendations with their reasons; the profile is kept for editing.
    let recs = browser.get("/onboarding/frameworks").await;
    assert_eq!(recs.status, StatusCode::OK);
    assert!(recs.html.contains("Cyber Essentials"));
    assert!(recs.html.contains("UK GDPR"));
    assert!(
        recs.html.contains("You process personal data in the UK"),
        "a reason is shown: {}",
        recs.html
    );
    assert!(recs.html.contains("Start assessment"));
    let again = browser.get("/onboarding").await;
    assert!(again.html.contains(r#"value="AWS, Microsoft 365""#));
    assert!(again.html.contains(
        r#"id="handles_personal_data" name="handles_personal_data" value="true" checked"#
    ));

    // Step 3: starting the assessment opens its wizard.
    let started = browser
        .submit(
            "/assessments",
            &[("framework", "cyber-essentials"), ("from", "onboarding")],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    let id = id_in(started.location.as_deref().unwrap(), "/assessments/");
    let wizard = browser.get(&format!("/assessments/{id}")).await;
    assert_eq!(wizard.status, StatusCode::OK);
    let total: usize = all_after(&wizard.html, r#"<progress id="progress" max=""#)[0]
        .parse()
        .unwrap();
    assert!(total >= 40, "every control has a question");
    assert!(wizard.html.contains(&format!(
        r#"<progress id="progress" max="{total}" value="0">"#
    )));
    assert!(
        wizard
            .html
            .contains(&format!("0 of {total} questions answered"))
    );
    assert!(wizard.html.contains("Section 1 of 6"));
    assert!(
        wizard
            .html
            .contains("<details><summary>Help with this question")
    );
    assert!(wizard.html.contains(">Not sure</label>"));
    let domain = all_after(&wizard.html, r#"name="domain" value=""#)[0].clone();
    let questions = all_after(&wizard.html, r#"name="q-"#);
    assert!(questions.len() > 1, "{}", wizard.html);

    // Answer the whole domain: one answer no, the rest yes, with a note.
    let names: Vec<String> = questions.iter().map(|q| format!("q-{q}")).collect();
    let note = format!("notes-{}", questions[0]);
    let mut form: Vec<(&str, &str)> = vec![("domain", &domain), ("action", "continue")];
    for (i, n) in names.iter().enumerate() {
        form.push((n, if i == 0 { "no" } else { "yes" }));
    }
    form.push((&note, "Scope agreed with the board <b>in 2024</b>"));
    let next = browser
        .submit(&format!("/assessments/{id}/answers"), &form)
        .await;
    assert_eq!(next.status, StatusCode::SEE_OTHER, "{}", next.html);
    let to = next.location.clone().unwrap();
    assert!(to.starts_with(&format!("/assessments/{id}?domain=")) && !to.ends_with(&domain));
    assert_eq!(
        next.flash(&browser),
        format!("Saved {} answers.", questions.len())
    );
    let second = browser.get(&to).await;
    assert!(second.html.contains("Section 2 of 6"));
    assert!(second.html.contains(&format!(
        "{} of {total} questions answered",
        questions.len()
    )));

    // The answers persist: back on the first domain they are checked.
    let first = browser
        .get(&format!("/assessments/{id}?domain={domain}"))
        .await;
    assert!(first.html.contains(&format!(
        r#"id="q-{}-no" name="q-{}" value="no" checked"#,
        questions[0], questions[0]
    )));
    assert!(
        first
            .html
            .contains("Scope agreed with the board &#60;b&#62;in 2024&#60;/b&#62;")
            || first
                .html
                .contains("Scope agreed with the board &lt;b&gt;in 2024&lt;/b&gt;"),
        "notes kept, escaped"
    );
    // Saving unchanged answers changes nothing.
    let same = browser
        .submit(&format!("/assessments/{id}/answers"), &form)
        .await;
    assert_eq!(same.flash(&browser), "No changes to save.");

    // Finish: a confirmation, then the score.
    let confirm = browser.get(&format!("/assessments/{id}/finish")).await;
    assert!(confirm.html.contains("Finish and score"));
    assert!(confirm.html.contains(&format!(
        "{} questions are unanswered",
        total - questions.len()
    )));
    let done = browser
        .submit(&format!("/assessments/{id}/complete"), &[])
        .await;
    assert_eq!(
        done.location.as_deref(),
        Some(format!("/assessments/{id}/results").as_str())
    );
    assert!(done.flash(&browser).starts_with("Assessment finished:"));
    let results = browser.get(&format!("/assessments/{id}/results")).await;
    assert_eq!(results.status, StatusCode::OK);
    assert!(results.html.contains(r#"<span class="score-figure">"#));
    assert!(results.html.contains("Early") || results.html.contains("Developing"));
    assert!(results.html.contains("Gaps, most severe first"));
    // Gaps most severe first.
    let gaps = &results.html[results.html.find("Gaps, most severe first").unwrap()..];
    let rank = |s: &str| {
        ["Critical", "High", "Medium", "Low"]
            .iter()
            .position(|x| *x == s)
    };
    let severities: Vec<usize> = gaps
        .split("<tr><td>")
        .skip(1)
        .filter_map(|row| rank(row.split('<').next().unwrap()))
        .collect();
    assert!(
        !severities.is_empty() && severities.windows(2).all(|w| w[0] <= w[1]),
        "{severities:?}"
    );

    // Completed means read-only.
    let read_only = browser.get(&format!("/assessments/{id}")).await;
    assert!(
        !read_only
            .html
            .contains(&format!(r#"action="/assessments/{id}/answers""#))
    );
    assert!(read_only.html.contains("read-only"));
    let late = browser
        .submit(&format!("/assessments/{id}/answers"), &form)
        .await;
    assert_eq!(
        late.location.as_deref(),
        Some(format!("/assessments/{id}/results").as_str())
    );

    // A plan with a target it cannot meet says so.
    let today = Utc::now().date_naive();
    let target = (today + Days::new(3)).format("%Y-%m-%d").to_string();
    let created = browser
        .submit(
            &format!("/assessments/{id}/plans"),
            &[("start_date", ""), ("target_date", &target)],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    let plan = id_in(created.location.as_deref().unwrap(), "/plans/");
    assert!(created.flash(&browser).starts_with("Plan created with "));
    let page = browser.get(&format!("/plans/{plan}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html.contains("<strong>Schedule:</strong>"),
        "{}",
        page.html
    );
    assert!(page.html.contains("cannot be met"));
    let tasks = all_after(&page.html, r#"<li class="task" id="task-"#);
    assert!(tasks.len() >= 2);
    let (t1, t2) = (tasks[0].clone(), tasks[1].clone());
    assert!(task_html(&page.html, &t1).contains("Unassigned"));
    let listed = browser.get("/plans").await;
    assert!(listed.html.contains(&format!(r#"href="/plans/{plan}""#)));

    // Mark done: the task moves to the Done group.
    let moved = browser
        .submit(&format!("/plans/{plan}/tasks/{t1}"), &[("status", "done")])
        .await;
    assert_eq!(
        moved.location.as_deref(),
        Some(format!("/plans/{plan}#task-{t1}").as_str())
    );
    assert!(moved.flash(&browser).starts_with("Saved "));
    let page = browser.get(&format!("/plans/{plan}")).await;
    let done_at = page.html.find(r#"id="group-done""#).unwrap();
    assert!(page.html.find(&format!(r#"id="task-{t1}""#)).unwrap() > done_at);
    assert!(page.html.contains("1 of "));

    // Assign to a member (the only one: Ada), and reschedule.
    let me = all_after(&page.html, r#"<option value=""#)
        .into_iter()
        .find(|v| v.len() == 36)
        .expect("a member to assign");
    let assigned = browser
        .submit(
            &format!("/plans/{plan}/tasks/{t2}"),
            &[("assignee_id", &me)],
        )
        .await;
    assert_eq!(assigned.status, StatusCode::SEE_OTHER, "{}", assigned.html);
    let due = (today + Days::new(45)).format("%Y-%m-%d").to_string();
    let moved = browser
        .submit(&format!("/plans/{plan}/tasks/{t2}"), &[("due_date", &due)])
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.html);
    let noted = browser
        .submit(&format!("/plans/{plan}/tasks/{t2}"), &[("notes", "Ask IT")])
        .await;
    assert_eq!(noted.status, StatusCode::SEE_OTHER);
    let page = browser.get(&format!("/plans/{plan}")).await;
    let task = task_html(&page.html, &t2);
    assert!(task.contains("<dd>Ada Lovelace</dd>"), "{task}");
    assert!(task.contains(&format!(r#"<option value="{me}" selected>"#)));
    assert!(task.contains(&format!(r#"value="{due}""#)));
    assert!(task.contains(">Ask IT</textarea>"));

    // The dashboard: readiness with its chart and text alternative, gaps, tasks.
    let dash = browser.get("/dashboard").await;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(
        !dash.html.contains(r#"href="/onboarding">Set up"#),
        "profile exists"
    );
    assert!(dash.html.contains(r#"<svg class="chart""#));
    assert!(dash.html.contains(r#"role="img""#));
    assert!(
        dash.html
            .contains("<title id=\"readiness-chart-t\">Readiness by framework</title>")
    );
    assert!(dash.html.contains("<desc id=\"readiness-chart-d\">"));
    assert!(
        dash.html
            .contains("Cyber Essentials readiness over time</title>")
    );
    assert!(
        dash.html
            .contains("<caption>Readiness by framework</caption>")
    );
    assert!(dash.html.contains("open gaps by severity</caption>"));
    assert!(dash.html.contains("Cyber Essentials</a></th>"));
    // The one task done is no longer an open gap; the rest are.
    let open = tasks.len() - 1;
    assert!(
        dash.html
            .contains(&format!("<caption>{open} open gaps by severity</caption>")),
        "{}",
        dash.html
    );
    assert!(
        dash.html.contains("Recent activity"),
        "the owner reads the audit log"
    );
    assert!(dash.html.contains("plan task updated"));
}

#[tokio::test]
async fn bad_profile_values_come_back_with_their_errors() {
    let app = TestApp::spawn().await;
    let mut browser = register(&app, "Bakery Ltd", "ada@example.co.uk").await;
    browser.get("/onboarding").await;
    let page = browser
        .submit(
            "/onboarding",
            &[
                ("company_name", "B"),
                ("industry", "mining"),
                ("employee_count", "lots"),
                ("annual_turnover_gbp", "-5"),
                ("country", "gbr"),
                ("data_sensitivity", "extreme"),
                ("planned_frameworks", "no-such-framework"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.html.contains("There is a problem"));
    for (field, message) in [
        ("company_name", "Company name must be 2 to 200 characters."),
        ("industry", "Choose your industry."),
        (
            "employee_count",
            "Number of employees must be a whole number",
        ),
        (
            "annual_turnover_gbp",
            "Annual turnover must be a whole number",
        ),
        ("country", "Country must be an ISO 3166 alpha-2 code"),
        ("data_sensitivity-low", "Choose how sensitive your data is."),
    ] {
        assert!(
            page.html
                .contains(&format!(r##"<a href="#{field}">{message}"##)),
            "summary links {field}: {}",
            page.html
        );
        let id = field.split('-').next().unwrap();
        assert!(
            page.html.contains(&format!(r#"id="{id}-error">"#)),
            "an error beside {field}"
        );
    }
    assert!(page.html.contains(r#"value="B""#), "entries are kept");
    // Nothing was saved.
    let recs = browser.get("/onboarding/frameworks").await;
    assert_eq!(recs.location.as_deref(), Some("/onboarding"));

    // Only an unknown planned framework: the service's check, shown on the form.
    let mut profile: Vec<(&str, &str)> = PROFILE.to_vec();
    profile.retain(|(k, _)| *k != "planned_frameworks");
    profile.push(("planned_frameworks", "no-such-framework"));
    let page = browser.submit("/onboarding", &profile).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.html
            .contains("Planned frameworks must be chosen from the list.")
    );

    // A bad framework or name when starting an assessment.
    let page = browser
        .submit("/assessments", &[("framework", "no-such-framework")])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.html.contains("Choose a framework from the list."));

    // A nonsense answer value and over-long notes re-render the domain with errors.
    let id = start_assessment(&mut browser).await;
    let wizard = browser.get(&format!("/assessments/{id}")).await;
    let domain = all_after(&wizard.html, r#"name="domain" value=""#)[0].clone();
    let q = all_after(&wizard.html, r#"name="q-"#);
    let long = "x".repeat(5_001);
    let (q0, q1, n1) = (
        format!("q-{}", q[0]),
        format!("q-{}", q[1]),
        format!("notes-{}", q[1]),
    );
    let page = browser
        .submit(
            &format!("/assessments/{id}/answers"),
            &[
                ("domain", &domain),
                ("action", "continue"),
                (&q0, "maybe"),
                (&q1, "yes"),
                (&n1, &long),
            ],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.html
    );
    assert!(page.html.contains("Question 1: choose an answer"));
    assert!(
        page.html
            .contains("Question 2: notes must be at most 5,000 characters.")
    );
    assert!(page.html.contains(&format!(r#"id="error-{}""#, q[1])));

    // Plan dates that are not dates, or out of order.
    browser
        .submit(&format!("/assessments/{id}/complete"), &[])
        .await;
    let page = browser
        .submit(
            &format!("/assessments/{id}/plans"),
            &[("start_date", "next week"), ("target_date", "")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.html.contains(r#"id="start_date-error""#));
    let page = browser
        .submit(
            &format!("/assessments/{id}/plans"),
            &[("start_date", "2030-06-01"), ("target_date", "2030-01-01")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.html
            .contains("Target date must not be before the start date.")
    );
    assert!(
        page.html.contains(r#"value="2030-06-01""#),
        "entries are kept"
    );
    assert!(browser.get("/plans").await.html.contains("No plans yet"));
}

#[tokio::test]
async fn another_organisations_assessments_and_plans_are_not_found() {
    let app = TestApp::spawn().await;
    let mut ada = register(&app, "Engines", "ada@example.co.uk").await;
    let (assessment, plan) = plan_of(&mut ada).await;
    let page = ada.get(&format!("/plans/{plan}")).await;
    let task = all_after(&page.html, r#"id="task-"#)[0].clone();

    let mut eve = register(&app, "Eavesdroppers", "eve@example.co.uk").await;
    for path in [
        format!("/assessments/{assessment}"),
        format!("/assessments/{assessment}/results"),
        format!("/assessments/{assessment}/finish"),
        format!("/plans/{plan}"),
        "/plans/not-a-uuid".to_owned(),
        "/assessments/not-a-uuid".to_owned(),
    ] {
        let page = eve.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.html.contains("Not found"));
    }
    for (path, form) in [
        (
            format!("/plans/{plan}/tasks/{task}"),
            vec![("status", "done")],
        ),
        (format!("/assessments/{assessment}/plans"), vec![]),
        (format!("/assessments/{assessment}/complete"), vec![]),
        (
            format!("/assessments/{assessment}/answers"),
            vec![("domain", "scope")],
        ),
    ] {
        let page = eve.submit(&path, &form).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
    }
    // Nothing of Ada's changed, and Eve's lists do not show it.
    let page = ada.get(&format!("/plans/{plan}")).await;
    let done_at = page.html.find(r#"id="group-done""#).unwrap();
    assert!(page.html.find(&format!(r#"id="task-{task}""#)).unwrap() < done_at);
    assert!(!eve.get("/plans").await.html.contains(&plan));
    assert!(!eve.get("/assessments").await.html.contains(&assessment));
}

#[tokio::test]
async fn a_task_cannot_go_to_someone_outside_the_organisation() {
    let app = TestApp::spawn().await;
    let mut ada = register(&app, "Engines", "ada@example.co.uk").await;
    let (_, plan) = plan_of(&mut ada).await;
    let mut eve = register(&app, "Eavesdroppers", "eve@example.co.uk").await;
    let (_, eve_plan) = plan_of(&mut eve).await;
    let eve_page = eve.get(&format!("/plans/{eve_plan}")).await;
    let eve_id = all_after(&eve_page.html, r#"<option value=""#)
        .into_iter()
        .find(|v| v.len() == 36)
        .unwrap();

    let page = ada.get(&format!("/plans/{plan}")).await;
    let task = all_after(&page.html, r#"id="task-"#)[0].clone();
    for stranger in [eve_id.as_str(), "0192f0c4-0000-7000-8000-000000000000"] {
        let page = ada
            .submit(
                &format!("/plans/{plan}/tasks/{task}"),
                &[("assignee_id", stranger)],
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            page.html
        );
        let message = "Assignee must be an active member of your organisation.";
        assert!(
            page.html
                .contains(&format!(r##"<a href="#assignee-{task}">{message}"##))
        );
        assert!(task_html(&page.html, &task).contains(&format!(r#"id="assignee-{task}-error""#)));
    }
    for (field, value, message) in [
        ("assignee_id", "nobody", "Assignee must be a member"),
        ("due_date", "soon", "Due date must be a date"),
        (
            "due_date",
            "2999-01-01",
            "Due date must be within ten years of today.",
        ),
        ("status", "finished", "Status must be one from the list."),
    ] {
        let page = ada
            .submit(&format!("/plans/{plan}/tasks/{task}"), &[(field, value)])
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(page.html.contains(message), "{field}: {}", page.html);
    }
    let page = ada.get(&format!("/plans/{plan}")).await;
    assert!(task_html(&page.html, &task).contains("Unassigned"));
}

#[tokio::test]
async fn posts_without_the_csrf_token_change_nothing() {
    let app = TestApp::spawn().await;
    let mut ada = register(&app, "Engines", "ada@example.co.uk").await;

    let mut forged: Vec<(&str, &str)> = vec![("csrf_token", "forged")];
    forged.extend_from_slice(PROFILE);
    let page = ada.post("/onboarding", &forged).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.flash(&ada), "Your form had expired; please try again.");
    assert_eq!(
        ada.get("/onboarding/frameworks").await.location.as_deref(),
        Some("/onboarding"),
        "no profile was saved"
    );
    let page = ada
        .post(
            "/assessments",
            &[("csrf_token", ""), ("framework", "cyber-essentials")],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/assessments"));
    assert!(
        ada.get("/assessments")
            .await
            .html
            .contains("No assessments yet")
    );

    let (assessment, plan) = plan_of(&mut ada).await;
    let page = ada.get(&format!("/plans/{plan}")).await;
    let task = all_after(&page.html, r#"id="task-"#)[0].clone();
    // Another browser holding the session cookie but not the CSRF cookie.
    let mut other = Browser::new(&app);
    other.cookies.insert(
        "ruleiq_session".into(),
        ada.cookies["ruleiq_session"].clone(),
    );
    for (path, form) in [
        (
            format!("/plans/{plan}/tasks/{task}"),
            vec![("csrf_token", ""), ("status", "done")],
        ),
        (
            format!("/assessments/{assessment}/plans"),
            vec![("csrf_token", "")],
        ),
    ] {
        let page = other.post(&path, &form).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            page.flash(&other),
            "Your form had expired; please try again."
        );
    }
    let page = ada.get(&format!("/plans/{plan}")).await;
    let done_at = page.html.find(r#"id="group-done""#).unwrap();
    assert!(page.html.find(&format!(r#"id="task-{task}""#)).unwrap() < done_at);
    let results = ada.get(&format!("/assessments/{assessment}/results")).await;
    assert_eq!(
        all_after(&results.html, r#"<li><a href="/plans/"#).len(),
        1,
        "still one plan"
    );

    // An unanswered assessment cannot be finished without the token either.
    let id = {
        let started = ada
            .submit("/assessments", &[("framework", "uk-gdpr")])
            .await;
        id_in(started.location.as_deref().unwrap(), "/assessments/")
    };
    let page = other
        .post(
            &format!("/assessments/{id}/complete"),
            &[("csrf_token", "x")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let finish = ada.get(&format!("/assessments/{id}/finish")).await;
    assert_eq!(finish.status, StatusCode::OK, "still in progress");
}
