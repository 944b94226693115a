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
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    async fn start() -> Self {
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
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self { child, port };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromedriver did not start");
    }

    /// A fresh browser session (its own profile, so its own cookies).
    async fn browser(&self) -> Client {
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

async fn fill(browser: &Client, css: &str, value: &str) {
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

async fn path(browser: &Client) -> String {
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

async fn text_of(browser: &Client) -> String {
    browser
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits (up to 10 s) for the page's main content to contain `expected`.
async fn shows(browser: &Client, expected: &str) {
    let mut last = String::new();
    for _ in 0..200 {
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
async fn journey(name: &str, browsers: &[&Client], run: impl std::future::Future<Output = ()>) {
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
