//! The evidence pages as a browser without JavaScript uses them: uploading a file,
//! linking controls, submitting and approving as a second member, new versions and
//! downloads; and everything a page must turn away — forged and malformed uploads
//! (with nothing stored), other organisations' items and read-only roles.

use chrono::{Days, Utc};
use reqwest::{Method, StatusCode, redirect::Policy};
use ruleiq_test_support::TestApp;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

use crate::members::{Member, PASSWORD, call, join, owner};

const BOUNDARY: &str = "ui-evidence-boundary-51c2";

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

    /// The flash message waiting in the cookie jar, decoded.
    fn flash(&self) -> String {
        let Some(f) = self.cookies.get("ruleiq_flash") else {
            return String::new();
        };
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

    /// Posts a urlencoded form with this browser's CSRF token first.
    async fn submit(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.csrf();
        let mut fields = vec![("csrf_token", csrf.as_str())];
        fields.extend_from_slice(form);
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(&fields)
            .send()
            .await
            .unwrap();
        self.finish(res).await
    }

    /// Posts a multipart body as it is given (the caller places the CSRF token).
    async fn post_multipart(&mut self, path: &str, body: Vec<u8>, extra: &[(&str, &str)]) -> Page {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        self.finish(res).await
    }

    /// Uploads through the page's form: the CSRF token, the text fields, then the file.
    async fn upload(&mut self, path: &str, fields: &[(&str, &str)], file: (&str, &[u8])) -> Page {
        let csrf = self.csrf();
        let mut all = vec![("csrf_token", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_multipart(path, multipart(&all, Some(file), &[]), &[])
            .await
    }
}

/// A multipart body: `before` fields, the file part (as a browser sends it), then
/// `after` fields.
fn multipart(
    before: &[(&str, &str)],
    file: Option<(&str, &[u8])>,
    after: &[(&str, &str)],
) -> Vec<u8> {
    let field = |out: &mut Vec<u8>, name: &str, value: &str| {
        out.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    let mut out = Vec::new();
    for (name, value) in before {
        field(&mut out, name, value);
    }
    if let Some((file_name, bytes)) = file {
        out.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in after {
        field(&mut out, name, value);
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

/// A browser signed in through the sign-in page.
async fn signed_in(app: &TestApp, email: &str) -> Browser {
    let mut browser = Browser::new(app);
    browser.get("/sign-in").await;
    let done = browser
        .submit("/sign-in", &[("email", email), ("password", PASSWORD)])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert_eq!(done.location.as_deref(), Some("/dashboard"));
    browser
}

fn id_in(location: &str) -> String {
    location
        .strip_prefix("/evidence/")
        .unwrap_or_else(|| panic!("{location} is an evidence page"))
        .split(['/', '?', '#'])
        .next()
        .unwrap()
        .to_owned()
}

/// The organisation's evidence through the API.
async fn api_items(app: &TestApp, m: &Member) -> Vec<Value> {
    let res = call(app, Method::GET, "/evidence", &m.token, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

/// How many blobs are stored under the test's data directory.
fn stored_blobs(app: &TestApp) -> usize {
    fn walk(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() { walk(&p) } else { 1 }
                })
                .sum()
        })
    }
    walk(&app.db.dir.path().join("data/files/blobs"))
}

/// The status badge of an item page.
fn badge(html: &str) -> String {
    let start = html.find(r#"id="status">"#).expect("a status badge") + r#"id="status">"#.len();
    html[start..].split('<').next().unwrap().to_owned()
}

#[tokio::test]
async fn an_upload_is_linked_submitted_approved_by_a_second_member_and_versioned() {
    let app = TestApp::spawn().await;
    let ann_api = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    join(&app, &ann_api, "cat@example.co.uk", "compliance_manager").await;
    let mut ann = signed_in(&app, "ann@example.co.uk").await;

    let empty = ann.get("/evidence").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.html.contains("No evidence yet"), "{}", empty.html);
    assert!(empty.html.contains(r#"href="/evidence/new""#));
    assert!(
        ann.get("/dashboard")
            .await
            .html
            .contains(r#"href="/evidence""#),
        "the nav links to the library"
    );

    // The form puts the CSRF token before the file, and works without script.
    let form = ann.get("/evidence/new").await;
    assert_eq!(form.status, StatusCode::OK);
    let upload_form = &form.html[form.html.find(r#"action="/evidence/new""#).unwrap()..];
    let upload_form = &upload_form[..upload_form.find("</form>").unwrap()];
    assert!(upload_form.contains(r#"enctype="multipart/form-data""#));
    assert!(
        upload_form.find(r#"name="csrf_token""#).unwrap()
            < upload_form.find(r#"type="file""#).unwrap()
    );
    assert!(form.html.contains(r#"action="/evidence/new-link""#));

    let content = b"2025-06-01 nightly backup: 42 files, verified\n";
    let expires = (Utc::now().date_naive() + Days::new(10)).to_string();
    let created = ann
        .upload(
            "/evidence/new",
            &[
                ("title", "Nightly backup log"),
                ("description", "The backup job's own log."),
                ("evidence_type", "log"),
                ("effective_date", ""),
                ("expires_at", &expires),
            ],
            ("backup.txt", content),
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    let location = created.location.clone().unwrap();
    let id = id_in(&location);
    assert!(
        ann.flash().contains("Uploaded “Nightly backup log”"),
        "{}",
        ann.flash()
    );

    let page = ann.get(&location).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html.contains("Uploaded “Nightly backup log”"),
        "the flash shows"
    );
    assert_eq!(badge(&page.html), "Draft");
    assert!(page.html.contains("backup.txt"));
    assert!(page.html.contains(&hex::encode(Sha256::digest(content))));
    assert!(
        page.html
            .contains(&format!(r#"href="/evidence/{id}/download""#))
    );
    assert!(page.html.contains("Submit for approval"));

    let file = ann.get(&format!("/evidence/{id}/download")).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.body, content);
    assert!(
        file.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"),
    );

    let library = ann.get("/evidence").await;
    assert!(
        library.html.contains(&format!(
            r#"<a href="/evidence/{id}">Nightly backup log</a>"#
        )),
        "{}",
        library.html
    );
    assert!(library.html.contains("badge-draft"));
    let soon = ann.get("/evidence?expiring_within_days=30").await;
    assert!(soon.html.contains("Nightly backup log"));
    assert!(soon.html.contains(r#"aria-current="page">Expiring soon"#));
    let none = ann.get("/evidence?status=approved").await;
    assert!(!none.html.contains("Nightly backup log"));
    assert!(none.html.contains("No evidence matches these filters"));
    let bad = ann.get("/evidence?status=archived").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.html.contains("Status must be one from the list."));

    // Link a control, by reference; an unknown one is refused with the text kept.
    let unknown = ann
        .submit(
            &format!("/evidence/{id}/controls"),
            &[("control_refs", "cyber-essentials:NOPE.9")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown
            .html
            .contains("No control “cyber-essentials:NOPE.9”"),
        "{}",
        unknown.html
    );
    assert!(unknown.html.contains(r#"value="cyber-essentials:NOPE.9""#));
    let linked = ann
        .submit(
            &format!("/evidence/{id}/controls"),
            &[("control_refs", "cyber-essentials:SCOPE.1")],
        )
        .await;
    assert_eq!(linked.status, StatusCode::SEE_OTHER, "{}", linked.html);
    assert!(ann.flash().contains("now backs 1 control"));
    let page = ann.get(&format!("/evidence/{id}")).await;
    assert!(page.html.contains("Controls it shows (1)"));
    assert!(page.html.contains("SCOPE.1"));
    // The control's framework is in the picker now, with the control chosen.
    assert!(
        page.html.contains(r#"<optgroup label="Cyber Essentials"#),
        "{}",
        page.html
    );
    let by_control = ann.get("/evidence?control=cyber-essentials:SCOPE.1").await;
    assert!(by_control.html.contains("Nightly backup log"));

    // Submit. Ann may approve in general, but not her own submission.
    let submitted = ann.submit(&format!("/evidence/{id}/submit"), &[]).await;
    assert_eq!(
        submitted.status,
        StatusCode::SEE_OTHER,
        "{}",
        submitted.html
    );
    let page = ann.get(&format!("/evidence/{id}")).await;
    assert_eq!(badge(&page.html), "Submitted");
    assert!(page.html.contains("another member must decide"));
    assert!(!page.html.contains("approve-button"));
    let own = ann.submit(&format!("/evidence/{id}/approve"), &[]).await;
    assert_eq!(own.status, StatusCode::CONFLICT);
    assert!(
        own.html.contains("another member must decide"),
        "{}",
        own.html
    );
    let again = ann.submit(&format!("/evidence/{id}/submit"), &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.html.contains("already awaiting approval"));
    let dash = ann.get("/dashboard").await;
    assert!(dash.html.contains("Awaiting approval (1)"), "{}", dash.html);
    assert!(dash.html.contains("Evidence expiring within 30 days (1)"));
    assert!(dash.html.contains(&format!(
        r#"<a href="/evidence/{id}">Nightly backup log</a>"#
    )));

    // Cat decides: a rejection needs a comment; an approval takes one.
    let mut cat = signed_in(&app, "cat@example.co.uk").await;
    let queue = cat.get("/evidence?awaiting=me").await;
    assert!(queue.html.contains("Nightly backup log"), "{}", queue.html);
    assert!(
        !ann.get("/evidence?awaiting=me")
            .await
            .html
            .contains("Nightly backup log")
    );
    let page = cat.get(&format!("/evidence/{id}")).await;
    assert!(page.html.contains("approve-button"));
    let bare = cat
        .submit(&format!("/evidence/{id}/reject"), &[("comment", "  ")])
        .await;
    assert_eq!(bare.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bare.html.contains("Say why the evidence is rejected"),
        "{}",
        bare.html
    );
    let approved = cat
        .submit(
            &format!("/evidence/{id}/approve"),
            &[("comment", "Matches the backup schedule.")],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.html);
    assert!(cat.flash().contains("Approved “Nightly backup log”"));
    let page = cat.get(&format!("/evidence/{id}")).await;
    assert_eq!(badge(&page.html), "Approved");
    assert!(page.html.contains("Matches the backup schedule."));
    assert!(page.html.contains("Submitted for approval"), "the history");
    let library = ann.get("/evidence?status=approved").await;
    assert!(library.html.contains("badge-approved"));
    assert!(
        ann.get("/dashboard")
            .await
            .html
            .contains("Awaiting approval (0)")
    );

    // A new version returns it to draft; the old one stays downloadable.
    let v2 = ann
        .upload(
            &format!("/evidence/{id}/versions"),
            &[],
            ("backup-june.txt", b"2025-06-02 nightly backup: 43 files\n"),
        )
        .await;
    assert_eq!(v2.status, StatusCode::SEE_OTHER, "{}", v2.html);
    let page = ann.get(&format!("/evidence/{id}")).await;
    assert_eq!(badge(&page.html), "Draft");
    assert!(page.html.contains("version 2"));
    assert!(page.html.contains("backup-june.txt"));
    let old = ann.get(&format!("/evidence/{id}/download?version=1")).await;
    assert_eq!(old.body, content);

    // Delete, after the confirmation page.
    let confirm = ann.get(&format!("/evidence/{id}/delete")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.html.contains("Yes, delete this evidence"));
    let deleted = ann.submit(&format!("/evidence/{id}/delete"), &[]).await;
    assert_eq!(deleted.location.as_deref(), Some("/evidence"));
    assert_eq!(
        ann.get(&format!("/evidence/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(api_items(&app, &ann_api).await.is_empty());
}

#[tokio::test]
async fn forged_and_malformed_uploads_are_refused_with_the_form_again_and_nothing_stored() {
    let app = TestApp::spawn_with(|raw| raw.max_upload_size = 1024).await;
    let ann_api = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let mut ann = signed_in(&app, "ann@example.co.uk").await;
    ann.get("/evidence/new").await;
    let txt: &[u8] = b"a policy\n";

    // No token, and a token that arrives only after the file: refused before storing.
    let no_token = ann
        .post_multipart(
            "/evidence/new",
            multipart(&[("title", "Forged")], Some(("a.txt", txt)), &[]),
            &[],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert!(
        no_token.html.contains("Your form had expired"),
        "{}",
        no_token.html
    );
    let csrf = ann.csrf();
    let late = ann
        .post_multipart(
            "/evidence/new",
            multipart(
                &[("title", "Late")],
                Some(("a.txt", txt)),
                &[("csrf_token", &csrf)],
            ),
            &[],
        )
        .await;
    assert_eq!(late.status, StatusCode::FORBIDDEN);
    let wrong = ann
        .post_multipart(
            "/evidence/new",
            multipart(
                &[("csrf_token", &"x".repeat(43)), ("title", "Wrong")],
                Some(("a.txt", txt)),
                &[],
            ),
            &[],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(
        stored_blobs(&app),
        0,
        "nothing of a forged upload is stored"
    );

    // An empty title: the form again with its message and values, and no file kept.
    let untitled = ann
        .upload(
            "/evidence/new",
            &[
                ("title", "  "),
                ("description", "Kept description"),
                ("evidence_type", "procedure"),
            ],
            ("a.txt", txt),
        )
        .await;
    assert_eq!(untitled.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        untitled.html.contains("Title must not be empty."),
        "{}",
        untitled.html
    );
    assert!(
        untitled.html.contains(r##"<a href="#title">"##),
        "the summary links to the field"
    );
    assert!(
        untitled
            .html
            .contains(r#"aria-invalid="true" aria-describedby="title-error""#)
    );
    assert!(untitled.html.contains(">Kept description</textarea>"));
    assert!(
        untitled
            .html
            .contains(r#"<option value="procedure" selected>"#)
    );
    assert_eq!(
        stored_blobs(&app),
        0,
        "the title is checked before the file is stored"
    );

    // Files the service refuses: the status and the message by the file input.
    let exe = ann
        .upload(
            "/evidence/new",
            &[("title", "Tool")],
            ("tool.exe", b"MZ\x90\x00"),
        )
        .await;
    assert_eq!(exe.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        exe.html.contains("Files ending .exe are not accepted here"),
        "{}",
        exe.html
    );
    assert!(exe.html.contains(r#"id="file-error""#));
    assert!(exe.html.contains(r#"value="Tool""#), "values are kept");
    let fake = ann
        .upload(
            "/evidence/new",
            &[("title", "Fake")],
            ("report.pdf", b"just text"),
        )
        .await;
    assert_eq!(fake.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        fake.html.contains("does not match its .pdf extension"),
        "{}",
        fake.html
    );
    let empty = ann
        .upload("/evidence/new", &[("title", "Empty")], ("empty.txt", b""))
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.html.contains("The file is empty."), "{}", empty.html);
    let big = ann
        .upload(
            "/evidence/new",
            &[("title", "Big")],
            ("big.txt", &[b'a'; 2000]),
        )
        .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        big.html.contains("larger than the limit of 1 KB"),
        "{}",
        big.html
    );
    let dated = ann
        .upload(
            "/evidence/new",
            &[("title", "Dated"), ("expires_at", "next week")],
            ("a.txt", txt),
        )
        .await;
    assert_eq!(dated.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        dated.html.contains("Expiry date must be a date"),
        "{}",
        dated.html
    );
    assert!(
        api_items(&app, &ann_api).await.is_empty(),
        "nothing was created"
    );

    // The link form.
    let no_url = ann
        .submit(
            "/evidence/new-link",
            &[("title", "Intranet policy"), ("url", "")],
        )
        .await;
    assert_eq!(no_url.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_url.html.contains("Enter the address of the evidence"));
    assert!(no_url.html.contains(r#"value="Intranet policy""#));
    let bad_url = ann
        .submit(
            "/evidence/new-link",
            &[("title", "Intranet policy"), ("url", "javascript:alert(1)")],
        )
        .await;
    assert_eq!(bad_url.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad_url
            .html
            .contains("Address must be an http or https address."),
        "{}",
        bad_url.html
    );
    let link = ann
        .submit(
            "/evidence/new-link",
            &[
                ("title", "Intranet policy"),
                ("url", "https://intranet.example/policy"),
                ("evidence_type", "policy"),
            ],
        )
        .await;
    assert_eq!(link.status, StatusCode::SEE_OTHER, "{}", link.html);
    let page = ann.get(link.location.as_deref().unwrap()).await;
    assert!(
        page.html
            .contains(r#"href="https://intranet.example/policy""#)
    );

    // The script's upload: 201 with the page to go to, and the flash for it.
    let csrf = ann.csrf();
    let scripted = ann
        .post_multipart(
            "/evidence/new",
            multipart(
                &[("csrf_token", &csrf), ("title", "Scripted")],
                Some(("s.txt", txt)),
                &[],
            ),
            &[("x-requested-with", "XMLHttpRequest")],
        )
        .await;
    assert_eq!(scripted.status, StatusCode::CREATED, "{}", scripted.html);
    assert!(scripted.location.unwrap().starts_with("/evidence/"));
    assert!(ann.flash().contains("Uploaded “Scripted”"));
    assert_eq!(api_items(&app, &ann_api).await.len(), 2);
}

#[tokio::test]
async fn other_organisations_get_404_and_read_only_roles_get_no_forms_and_403() {
    let app = TestApp::spawn().await;
    let ann_api = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    owner(&app, "bob@example.co.uk", "Bob Ltd").await;
    join(&app, &ann_api, "vi@example.co.uk", "viewer").await;
    let mut ann = signed_in(&app, "ann@example.co.uk").await;
    ann.get("/evidence/new").await;
    let created = ann
        .upload(
            "/evidence/new",
            &[("title", "Firewall rules")],
            ("rules.txt", b"deny all\n"),
        )
        .await;
    let id = id_in(created.location.as_deref().unwrap());

    let mut bob = signed_in(&app, "bob@example.co.uk").await;
    for path in [
        format!("/evidence/{id}"),
        format!("/evidence/{id}/download"),
        format!("/evidence/{id}/delete"),
        "/evidence/not-an-id".to_owned(),
        format!("/evidence/{id}/download?version=x"),
    ] {
        let page = bob.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            page.html.contains("no such evidence") || page.html.contains("No such"),
            "{path}: {}",
            page.html
        );
    }
    for action in ["submit", "approve", "controls", "delete"] {
        let page = bob.submit(&format!("/evidence/{id}/{action}"), &[]).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{action}");
    }
    let version = bob
        .upload(
            &format!("/evidence/{id}/versions"),
            &[],
            ("x.txt", b"mine now\n"),
        )
        .await;
    assert_eq!(version.status, StatusCode::NOT_FOUND);
    assert!(!bob.get("/evidence").await.html.contains("Firewall rules"));

    let mut vi = signed_in(&app, "vi@example.co.uk").await;
    let page = vi.get(&format!("/evidence/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    for form in ["/controls", "/versions", "/submit", "/delete"] {
        assert!(
            !page.html.contains(&format!("/evidence/{id}{form}\"")),
            "no {form} form: {}",
            page.html
        );
    }
    assert!(
        !vi.get("/evidence")
            .await
            .html
            .contains(r#"href="/evidence/new""#)
    );
    assert_eq!(vi.get("/evidence/new").await.status, StatusCode::FORBIDDEN);
    let upload = vi
        .upload(
            "/evidence/new",
            &[("title", "Viewer's")],
            ("v.txt", b"hello\n"),
        )
        .await;
    assert_eq!(upload.status, StatusCode::FORBIDDEN);
    assert!(
        upload
            .html
            .contains("Your role (viewer) cannot add evidence."),
        "{}",
        upload.html
    );
    let link = vi
        .submit(
            "/evidence/new-link",
            &[("title", "x"), ("url", "https://example.com")],
        )
        .await;
    assert_eq!(link.status, StatusCode::FORBIDDEN);
    for action in ["submit", "approve", "reject", "controls", "delete"] {
        let page = vi
            .submit(&format!("/evidence/{id}/{action}"), &[("comment", "no")])
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{action}");
    }
    let version = vi
        .upload(
            &format!("/evidence/{id}/versions"),
            &[],
            ("v.txt", b"hello\n"),
        )
        .await;
    assert_eq!(version.status, StatusCode::FORBIDDEN);
    let items = api_items(&app, &ann_api).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "draft");
    assert_eq!(items[0]["version"], 1);
}

#[tokio::test]
async fn the_library_pages_by_keyset_keeping_its_filters() {
    let app = TestApp::spawn().await;
    let ann_api = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    for i in 0..27 {
        let res = call(
            &app,
            Method::POST,
            "/evidence",
            &ann_api.token,
            Some(serde_json::json!({
                "title": format!("Policy page {i:02}"),
                "url": format!("https://intranet.example/policy/{i}"),
                "evidence_type": "policy",
            })),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let mut ann = signed_in(&app, "ann@example.co.uk").await;
    let first = ann.get("/evidence?evidence_type=policy").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.html.matches("badge-draft").count(), 25);
    assert!(first.html.contains("Policy page 26"), "newest first");
    assert!(!first.html.contains("First page"));
    let marker = r#"rel="next""#;
    let before = &first.html[..first.html.find(marker).expect("a next page link")];
    let next = before[before.rfind("href=\"").unwrap() + 6..]
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&");
    assert!(
        next.starts_with("/evidence?evidence_type=policy&cursor="),
        "{next}"
    );
    let second = ann.get(&next).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.html.matches("badge-draft").count(), 2);
    assert!(second.html.contains("Policy page 00"));
    assert!(!second.html.contains("Policy page 26"));
    assert!(!second.html.contains(marker), "the last page");
    assert!(second.html.contains("First page"));
    let junk = ann.get("/evidence?cursor=nonsense").await;
    assert_eq!(junk.status, StatusCode::UNPROCESSABLE_ENTITY);
}
