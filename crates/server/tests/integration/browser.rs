//! Journeys in a real headless Chromium, driven through chromedriver (Debian's
//! `chromium` and `chromium-driver`, which `.ci/run` installs). A failing journey leaves
//! a screenshot under `target/browser-screenshots/`. Later issues add their journeys.

use fantoccini::{Client, ClientBuilder, Locator};
use ruleiq_test_support::{TestApp, smtp::SmtpCapture, text};
use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

/// A chromedriver process of this test's own.
pub(crate) struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub(crate) async fn start() -> Self {
        // The free port is found by binding and letting go, so another process can take
        // it first; and a machine busy with builds may take seconds to start the driver.
        // Three tries on fresh ports, ten seconds each.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver is installed (Debian chromium-driver; .ci/run installs it)");
            for _ in 0..400 {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return Self { child, port };
                }
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break; // it exited: most likely the port was taken
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("chromedriver did not start in three tries");
    }

    /// A fresh browser session (its own profile, so its own cookies).
    pub(crate) async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1024,768",
                ],
            }),
        );
        // rustls is built with both ring and aws-lc-rs in this graph; the WebDriver
        // connection is plain HTTP on loopback, but a provider must still be chosen.
        let _ = rustls::crypto::ring::default_provider().install_default();
        ClientBuilder::rustls()
            .expect("connector")
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn fill(browser: &Client, css: &str, value: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(value)
        .await
        .unwrap();
}

async fn submit(browser: &Client, form_action: &str) {
    browser
        .find(Locator::Css(&format!(
            "form[action='{form_action}'] button[type=submit]"
        )))
        .await
        .unwrap_or_else(|e| panic!("submit of {form_action}: {e}"))
        .click()
        .await
        .unwrap();
}

pub(crate) async fn path(browser: &Client) -> String {
    browser.current_url().await.unwrap().path().to_owned()
}

/// Waits (up to 10 s) for a click's navigation to arrive at `expected`.
async fn arrives_at(browser: &Client, expected: &str) {
    for _ in 0..200 {
        if path(browser).await == expected && browser.find(Locator::Css("footer")).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(path(browser).await, expected);
}

pub(crate) async fn text_of(browser: &Client) -> String {
    browser
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits (up to 20 s) for the page's main content to contain `expected`.
pub(crate) async fn shows(browser: &Client, expected: &str) {
    let mut last = String::new();
    for _ in 0..400 {
        if let Ok(main) = browser.find(Locator::Css("main")).await
            && let Ok(text) = main.text().await
        {
            if text.contains(expected) {
                return;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page never showed {expected:?}; it shows: {last}");
}

/// Runs a journey; on failure, saves a screenshot of every browser before re-raising.
pub(crate) async fn journey(
    name: &str,
    browsers: &[&Client],
    run: impl std::future::Future<Output = ()>,
) {
    let outcome = {
        use futures::FutureExt;
        std::panic::AssertUnwindSafe(run).catch_unwind().await
    };
    if let Err(panic) = outcome {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/browser-screenshots");
        let _ = std::fs::create_dir_all(&dir);
        for (i, b) in browsers.iter().enumerate() {
            if let Ok(png) = b.screenshot().await {
                let _ = std::fs::write(dir.join(format!("{name}-{i}.png")), png);
            }
        }
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn register_sign_out_sign_in_invite_and_accept_in_a_second_browser() {
    let smtp = SmtpCapture::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(move |raw| raw.smtp_url = Some(text(&url))).await;
    let driver = Driver::start().await;
    let owner = driver.browser().await;
    let member = driver.browser().await;
    let base = app.base.clone();

    journey("invite", &[&owner, &member], async {
        owner.goto(&format!("{base}/")).await.unwrap();
        arrives_at(&owner, "/sign-in").await;
        owner.goto(&format!("{base}/register")).await.unwrap();
        fill(&owner, "#organization_name", "Analytical Engines").await;
        fill(&owner, "#full_name", "Ada Lovelace").await;
        fill(&owner, "#email", "ada@example.co.uk").await;
        fill(&owner, "#password", "otter lantern quarry velvet").await;
        submit(&owner, "/register").await;
        arrives_at(&owner, "/dashboard").await;
        shows(&owner, "Analytical Engines").await;

        submit(&owner, "/sign-out").await;
        arrives_at(&owner, "/sign-in").await;
        shows(&owner, "You are signed out.").await;
        fill(&owner, "#email", "ada@example.co.uk").await;
        fill(&owner, "#password", "otter lantern quarry velvet").await;
        submit(&owner, "/sign-in").await;
        arrives_at(&owner, "/dashboard").await;

        owner.goto(&format!("{base}/members")).await.unwrap();
        fill(&owner, "#invite-email", "cy@example.co.uk").await;
        submit(&owner, "/members/invite").await;
        shows(&owner, "Invitation sent to cy@example.co.uk.").await;

        let mail = smtp.wait_for(1).await;
        let body = mail[0].decoded();
        let start = body.find("/accept-invitation?token=").expect("a link");
        let link: String = body[start..].split_whitespace().next().unwrap().to_owned();
        member.goto(&format!("{base}{link}")).await.unwrap();
        fill(&member, "#full_name", "Cy Young").await;
        fill(&member, "#password", "quiet harbour lantern fig").await;
        submit(&member, "/accept-invitation").await;
        arrives_at(&member, "/dashboard").await;
        let page = text_of(&member).await;
        assert!(
            page.contains("Cy Young") && page.contains("contributor"),
            "{page}"
        );

        // The owner still has their own session; the member list shows both.
        owner.goto(&format!("{base}/members")).await.unwrap();
        let members = text_of(&owner).await;
        assert!(members.contains("cy@example.co.uk") && members.contains("ada@example.co.uk"));
    })
    .await;

    owner.close().await.ok();
    member.close().await.ok();
}

#[tokio::test]
async fn search_shows_results_as_you_type_and_opens_a_control() {
    let app = TestApp::spawn().await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let base = app.base.clone();

    journey("search", &[&browser], async {
        browser.goto(&format!("{base}/register")).await.unwrap();
        fill(&browser, "#organization_name", "Bakery Ltd").await;
        fill(&browser, "#full_name", "Bea Baker").await;
        fill(&browser, "#email", "bea@example.co.uk").await;
        fill(&browser, "#password", "otter lantern quarry velvet").await;
        submit(&browser, "/register").await;
        arrives_at(&browser, "/dashboard").await;

        browser.goto(&format!("{base}/search")).await.unwrap();
        let input = browser.find(Locator::Css("#q")).await.unwrap();
        // Typed, not submitted: the script fetches results while the page stays put.
        input.send_keys("multi-factor").await.unwrap();
        shows(&browser, "results for “multi-factor”").await;
        assert_eq!(path(&browser).await, "/search");
        browser
            .find(Locator::Css("#results ol a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        for _ in 0..200 {
            if path(&browser).await.starts_with("/controls/") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(path(&browser).await.starts_with("/controls/"));
        shows(&browser, "In other frameworks").await;
    })
    .await;
    browser.close().await.ok();
}

/// Presses one key on whatever has the focus, as a person at the keyboard does.
async fn press(browser: &Client, key: fantoccini::key::Key) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let value = char::from(key);
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value })
        .then(KeyAction::Up { value });
    browser.perform_actions(keys).await.unwrap();
}

/// Presses Tab (at most `limit` times) until the focused element matches `wanted`,
/// which is given its tag name and its `id` and `value` attributes.
async fn tab_to(browser: &Client, limit: usize, wanted: impl Fn(&str, &str, &str) -> bool) {
    for _ in 0..limit {
        press(browser, fantoccini::key::Key::Tab).await;
        let focused = browser.active_element().await.unwrap();
        let tag = focused.tag_name().await.unwrap_or_default();
        let id = focused.attr("id").await.unwrap().unwrap_or_default();
        let value = focused.attr("value").await.unwrap().unwrap_or_default();
        if wanted(&tag, &id, &value) {
            return;
        }
    }
    panic!("Tab never reached the element wanted");
}

/// Waits (up to 10 s) for a navigation to arrive under `prefix`; the path.
pub(crate) async fn arrives_under(browser: &Client, prefix: &str) -> String {
    for _ in 0..200 {
        let p = path(browser).await;
        if p.starts_with(prefix) && browser.find(Locator::Css("footer")).await.is_ok() {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never arrived under {prefix}: at {}", path(browser).await);
}

#[tokio::test]
async fn from_profile_to_plan_with_a_question_answered_by_keyboard_alone() {
    let app = TestApp::spawn().await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let base = app.base.clone();

    journey("profile-to-plan", &[&browser], async {
        browser.goto(&format!("{base}/register")).await.unwrap();
        fill(&browser, "#organization_name", "Bakery Ltd").await;
        fill(&browser, "#full_name", "Bea Baker").await;
        fill(&browser, "#email", "bea@example.co.uk").await;
        fill(&browser, "#password", "otter lantern quarry velvet").await;
        submit(&browser, "/register").await;
        arrives_at(&browser, "/dashboard").await;

        // The dashboard leads a new organisation to onboarding.
        browser
            .find(Locator::Css("main a[href='/onboarding']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        arrives_at(&browser, "/onboarding").await;
        browser
            .find(Locator::Css("#industry"))
            .await
            .unwrap()
            .select_by_value("retail")
            .await
            .unwrap();
        fill(&browser, "#employee_count", "12").await;
        for choice in ["#data_sensitivity-medium", "#handles_personal_data"] {
            browser
                .find(Locator::Css(choice))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        }
        submit(&browser, "/onboarding").await;
        arrives_at(&browser, "/onboarding/frameworks").await;
        shows(&browser, "Recommended for you").await;
        browser
            .find(Locator::XPath(
                "//form[input[@name='framework' and @value='cyber-essentials']]//button",
            ))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let wizard = arrives_under(&browser, "/assessments/").await;
        shows(&browser, "Section 1 of").await;

        // Keyboard only: Tab into the first question, Space picks "Yes", Tab to
        // "Save and continue", Enter submits.
        tab_to(&browser, 100, |tag, id, _| {
            tag == "input" && id.starts_with("q-")
        })
        .await;
        let radio = browser.active_element().await.unwrap();
        let id = radio.attr("id").await.unwrap().unwrap();
        assert!(id.ends_with("-yes"), "the group's first choice: {id}");
        press(&browser, fantoccini::key::Key::Space).await;
        assert!(radio.is_selected().await.unwrap(), "Space chose Yes");
        tab_to(&browser, 300, |tag, _, value| {
            tag == "button" && value == "continue"
        })
        .await;
        press(&browser, fantoccini::key::Key::Enter).await;
        shows(&browser, "Saved 1 answer.").await;
        shows(&browser, "Section 2 of").await;
        shows(&browser, "1 of ").await;

        // Finish and score, then plan.
        browser
            .goto(&format!("{base}{wizard}/finish"))
            .await
            .unwrap();
        submit(&browser, &format!("{wizard}/complete")).await;
        arrives_at(&browser, &format!("{wizard}/results")).await;
        shows(&browser, "Assessment finished").await;
        shows(&browser, "Gaps, most severe first").await;
        submit(&browser, &format!("{wizard}/plans")).await;
        arrives_under(&browser, "/plans/").await;
        shows(&browser, "Plan created with").await;
        shows(&browser, "To do (").await;

        browser
            .find(Locator::Css("nav a[href='/dashboard']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        arrives_at(&browser, "/dashboard").await;
        shows(&browser, "out of 100 overall").await;
        shows(&browser, "Cyber Essentials").await;
        let chart = browser
            .find(Locator::Css("svg.chart[role='img']"))
            .await
            .expect("the readiness chart");
        assert!(
            chart.attr("aria-labelledby").await.unwrap().is_some(),
            "the chart is named"
        );
    })
    .await;
    browser.close().await.ok();
}

#[tokio::test]
async fn evidence_is_uploaded_with_the_script_linked_submitted_and_approved_by_a_second_member() {
    let app = TestApp::spawn().await;
    let ann = crate::members::owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    crate::members::join(&app, &ann, "cat@example.co.uk", "compliance_manager").await;
    let files = tempfile::tempdir().unwrap();
    let log = files.path().join("backup-log.txt");
    std::fs::write(&log, "2025-06-01 nightly backup: 42 files, verified\n").unwrap();
    let exe = files.path().join("tool.exe");
    std::fs::write(&exe, b"MZ\x90\x00").unwrap();
    let driver = Driver::start().await;
    let uploader = driver.browser().await;
    let approver = driver.browser().await;
    let base = app.base.clone();

    let sign_in = |browser: &Client, email: &'static str| {
        let base = base.clone();
        let browser = browser.clone();
        async move {
            browser.goto(&format!("{base}/sign-in")).await.unwrap();
            fill(&browser, "#email", email).await;
            fill(&browser, "#password", crate::members::PASSWORD).await;
            submit(&browser, "/sign-in").await;
            arrives_at(&browser, "/dashboard").await;
        }
    };

    journey("evidence", &[&uploader, &approver], async {
        sign_in(&uploader, "ann@example.co.uk").await;
        uploader
            .find(Locator::Css("nav a[href='/evidence']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        arrives_at(&uploader, "/evidence").await;
        shows(&uploader, "No evidence yet").await;
        uploader
            .find(Locator::Css("main a[href='/evidence/new']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        arrives_at(&uploader, "/evidence/new").await;
        // The script has enhanced the form: the drop zone says so.
        shows(&uploader, "Or drag the file here and drop it.").await;
        fill(&uploader, "#title", "Nightly backup log").await;
        uploader
            .find(Locator::Css("#evidence_type"))
            .await
            .unwrap()
            .select_by_value("log")
            .await
            .unwrap();
        // A refused file comes back as the form with its error, in place, and the
        // form is enhanced again.
        fill(&uploader, "#file", exe.to_str().unwrap()).await;
        submit(&uploader, "/evidence/new").await;
        shows(&uploader, "Files ending .exe are not accepted here").await;
        assert_eq!(path(&uploader).await, "/evidence/new");
        let kept = uploader
            .find(Locator::Css("#title"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
        assert_eq!(kept.as_deref(), Some("Nightly backup log"));
        shows(&uploader, "Or drag the file here and drop it.").await;
        fill(&uploader, "#file", log.to_str().unwrap()).await;
        shows(&uploader, "Chosen: backup-log.txt").await;
        // Note, across the navigation, what the progress bar showed when the upload's
        // last byte was sent.
        uploader
            .execute(
                "var send = XMLHttpRequest.prototype.send;
                 XMLHttpRequest.prototype.send = function (body) {
                   this.upload.addEventListener('load', function () {
                     var box = document.querySelector('[data-progress]');
                     sessionStorage.setItem('progress', box.hidden ? 'hidden' :
                       String(box.querySelector('progress').value));
                   });
                   return send.call(this, body);
                 };",
                vec![],
            )
            .await
            .unwrap();
        submit(&uploader, "/evidence/new").await;
        let mut item = String::new();
        for _ in 0..200 {
            item = path(&uploader).await;
            if item.starts_with("/evidence/") && item != "/evidence/new" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Posted by the script, answered 201: the flash survives to the item page.
        shows(&uploader, "Uploaded “Nightly backup log”").await;
        let progress = uploader
            .execute("return sessionStorage.getItem('progress');", vec![])
            .await
            .unwrap();
        assert_eq!(
            progress,
            serde_json::json!("100"),
            "the upload went by the script"
        );
        shows(&uploader, "backup-log.txt").await;

        fill(
            &uploader,
            "#controls-form #control_refs",
            "cyber-essentials:SCOPE.1",
        )
        .await;
        submit(&uploader, &format!("{item}/controls")).await;
        shows(&uploader, "This evidence now backs 1 control.").await;
        shows(&uploader, "SCOPE.1").await;
        submit(&uploader, &format!("{item}/submit")).await;
        shows(
            &uploader,
            "for approval; another member will approve or reject it",
        )
        .await;
        shows(
            &uploader,
            "You submitted this evidence, so another member must decide on it.",
        )
        .await;

        sign_in(&approver, "cat@example.co.uk").await;
        approver
            .goto(&format!("{base}/evidence?awaiting=me"))
            .await
            .unwrap();
        approver
            .find(Locator::LinkText("Nightly backup log"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        arrives_at(&approver, &item).await;
        fill(&approver, "#comment", "Matches the backup schedule.").await;
        approver
            .find(Locator::Css("#approve-button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        shows(&approver, "Approved “Nightly backup log”.").await;
        let status = approver
            .find(Locator::Css("#status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(status.to_lowercase(), "approved");

        uploader.refresh().await.unwrap();
        shows(&uploader, "Matches the backup schedule.").await;
    })
    .await;
    uploader.close().await.ok();
    approver.close().await.ok();
}
