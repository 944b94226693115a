//! Policies over HTTP: written offline from our templates as a job, edited into
//! versions, compared, approved only by a second member, exported as Markdown, Word
//! and PDF, searched, and counted in readiness once approved; and the bad input.

use reqwest::{Method, StatusCode};
use ruleiq_test_support::TestApp;
use serde_json::{Value, json};

use crate::{
    assessments::send,
    members::{Member, call, join, owner},
};

/// Waits for a policy's generation to leave `pending`.
pub(crate) async fn generated(app: &TestApp, m: &Member, id: &str) -> Value {
    for _ in 0..400 {
        let (_, p) = send(app, Method::GET, &format!("/policies/{id}"), &m.token, None).await;
        if p["generation"] != "pending" {
            return p;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("generation of {id} never finished");
}

/// Generates a policy of `policy_type` and waits for it.
pub(crate) async fn generate(app: &TestApp, m: &Member, policy_type: &str) -> Value {
    let (status, body) = send(
        app,
        Method::POST,
        "/policies/generate",
        &m.token,
        Some(json!({ "policy_type": policy_type })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body["job_id"].is_string(), "{body}");
    generated(app, m, body["policy_id"].as_str().unwrap()).await
}

/// Completes an empty Cyber Essentials assessment, so readiness has a framework.
async fn assess(app: &TestApp, m: &Member) {
    let (status, a) = send(
        app,
        Method::POST,
        "/assessments",
        &m.token,
        Some(json!({"framework_id": "cyber-essentials"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let id = a["id"].as_str().unwrap();
    let (status, r) = send(
        app,
        Method::POST,
        &format!("/assessments/{id}/complete"),
        &m.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
}

fn policy_coverage(status: &Value) -> f64 {
    status["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["framework"]["slug"] == "cyber-essentials")
        .unwrap()["policy_coverage"]
        .as_f64()
        .unwrap()
}

#[tokio::test]
async fn a_policy_is_written_edited_compared_approved_by_another_and_exported() {
    let app = TestApp::spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Quokka Widgets Ltd").await;
    let bob = join(&app, &ann, "bob@example.co.uk", "compliance_manager").await;

    let (status, templates) =
        send(&app, Method::GET, "/policies/templates", &ann.token, None).await;
    assert_eq!(status, StatusCode::OK);
    let templates = templates.as_array().unwrap();
    assert!(templates.len() >= 14, "{}", templates.len());
    for t in templates {
        assert!(!t["controls"].as_array().unwrap().is_empty(), "{t}");
    }

    let p = generate(&app, &ann, "access_control").await;
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(p["generation"], "ready", "{p}");
    assert_eq!(p["version"], 1);
    assert_eq!(p["status"], "draft");
    let text = p["content_markdown"].as_str().unwrap();
    assert!(text.contains("## "), "{text}");
    assert!(
        text.contains("Quokka Widgets Ltd"),
        "filled from the organisation"
    );
    assert!(!text.contains("{{"), "no placeholder left: {text}");
    assert_eq!(p["generated_by"]["provider"], "offline", "{p}");
    assert_eq!(p["generated_by"]["prompt_version"], "policy-2026-11");
    let controls = p["controls"].as_array().unwrap();
    assert!(
        controls
            .iter()
            .any(|c| c["framework_slug"] == "iso27001-2022" && c["ref"] == "A.5.15"),
        "{controls:?}"
    );

    // Found by search.
    let (_, hits) = send(
        &app,
        Method::GET,
        "/search?q=quokka&kind=policy",
        &ann.token,
        None,
    )
    .await;
    assert!(
        hits["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == id.as_str()),
        "{hits}"
    );
    // Not by another organisation.
    let eve = owner(&app, "eve@example.org", "Eve Ltd").await;
    let (_, hits) = send(
        &app,
        Method::GET,
        "/search?q=quokka&kind=policy",
        &eve.token,
        None,
    )
    .await;
    assert!(hits["items"].as_array().unwrap().is_empty(), "{hits}");

    // An edit is a new version and a draft again.
    let edited = format!("{text}\n## Visitors\n\nVisitors must wear a badge at all times.\n");
    let (status, v2) = send(
        &app,
        Method::PUT,
        &format!("/policies/{id}"),
        &ann.token,
        Some(json!({ "content_markdown": edited, "title": "Access Control Policy (office)" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["title"], "Access Control Policy (office)");
    let (_, versions) = send(
        &app,
        Method::GET,
        &format!("/policies/{id}/versions"),
        &ann.token,
        None,
    )
    .await;
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 2);
    assert_eq!(versions[0]["author_id"], ann.id.as_str());
    assert_eq!(versions[1]["generated_by"]["provider"], "offline");
    assert_eq!(
        versions[1]["generated_by"]["prompt_version"],
        "policy-2026-11"
    );
    let (status, diff) = send(
        &app,
        Method::GET,
        &format!("/policies/{id}/diff?from=1&to=2"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    assert!(diff["insertions"].as_u64().unwrap() >= 2, "{diff}");
    assert_eq!(diff["deletions"], 0);
    assert!(
        diff["unified"]
            .as_str()
            .unwrap()
            .contains("+Visitors must wear a badge at all times.")
    );

    // Readiness counts the policy only once it is approved.
    assess(&app, &ann).await;
    let (_, before) = send(&app, Method::GET, "/compliance/status", &ann.token, None).await;
    assert_eq!(policy_coverage(&before), 0.0, "{before}");

    let (status, sub) = send(
        &app,
        Method::POST,
        &format!("/policies/{id}/submit"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sub}");
    assert_eq!(sub["status"], "in_review");
    // The author cannot approve her own text.
    let (status, own) = send(
        &app,
        Method::POST,
        &format!("/policies/{id}/approve"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{own}");
    let (status, ok) = send(
        &app,
        Method::POST,
        &format!("/policies/{id}/approve"),
        &bob.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(ok["status"], "approved");
    assert_eq!(ok["approved_by"], bob.id.as_str());
    let approved_at =
        chrono::DateTime::parse_from_rfc3339(ok["approved_at"].as_str().unwrap()).unwrap();
    let review =
        chrono::DateTime::parse_from_rfc3339(ok["next_review_at"].as_str().unwrap()).unwrap();
    assert!((review - approved_at).num_days() >= 365, "reviewed yearly");
    // Approving twice is not a move.
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/policies/{id}/approve"),
        &bob.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (_, after) = send(&app, Method::GET, "/compliance/status", &ann.token, None).await;
    assert!(policy_coverage(&after) > 0.0, "{after}");

    // Exports.
    let res = call(
        &app,
        Method::GET,
        &format!("/policies/{id}/export?format=md"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("access-control-policy-office-v2.md")
    );
    let md = res.text().await.unwrap();
    assert!(
        md.contains("Access Control Policy") && md.contains("Visitors must wear a badge"),
        "{md}"
    );
    let res = call(
        &app,
        Method::GET,
        &format!("/policies/{id}/export?format=docx"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let docx = res.bytes().await.unwrap();
    assert!(docx.starts_with(b"PK"), "a zip package");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(docx.to_vec())).unwrap();
    let mut xml = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("word/document.xml").unwrap(), &mut xml)
        .unwrap();
    assert!(
        xml.contains("Visitors must wear a badge at all times."),
        "the text is in the document"
    );
    let res = call(
        &app,
        Method::GET,
        &format!("/policies/{id}/export?format=pdf"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let pdf = res.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF"), "a PDF");

    // The list shows it with its controls; archiving takes it out of readiness.
    let (_, list) = send(
        &app,
        Method::GET,
        "/policies?status=approved",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (status, archived) = send(
        &app,
        Method::PATCH,
        &format!("/policies/{id}/status"),
        &ann.token,
        Some(json!({"status": "archived"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{archived}");
    let (_, later) = send(&app, Method::GET, "/compliance/status", &ann.token, None).await;
    assert_eq!(policy_coverage(&later), 0.0);

    // The trail.
    let (_, audit) = send(&app, Method::GET, "/audit-log?limit=50", &ann.token, None).await;
    let events: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    for e in [
        "policy.generation_requested",
        "policy.edited",
        "policy.submitted",
        "policy.approved",
        "policy.archived",
    ] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_policy_input_is_refused_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let eve = owner(&app, "eve@example.org", "Eve Ltd").await;
    let viewer = join(&app, &ann, "vic@example.co.uk", "viewer").await;
    let p = generate(&app, &ann, "backup").await;
    let id = p["id"].as_str().unwrap().to_owned();

    for (body, field) in [
        (json!({"policy_type": "astrology"}), "policy_type"),
        (
            json!({"policy_type": "backup", "instructions": "x".repeat(3_000)}),
            "instructions",
        ),
        (json!({"policy_type": "backup", "framework_ids": "all"}), ""),
        (json!({"policy_type": "backup", "surprise": 1}), ""),
    ] {
        let (status, problem) = send(
            &app,
            Method::POST,
            "/policies/generate",
            &ann.token,
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{problem}"
        );
    }
    let (status, _) = send(
        &app,
        Method::POST,
        "/policies/generate",
        &ann.token,
        Some(json!({"policy_type": "backup", "framework_ids": [uuid::Uuid::now_v7()]})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a framework nobody has");
    let (status, _) = send(
        &app,
        Method::POST,
        "/policies/generate",
        &viewer.token,
        Some(json!({"policy_type": "backup"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Edits: too large, empty, not text.
    let res = call(
        &app,
        Method::PUT,
        &format!("/policies/{id}"),
        &ann.token,
        Some(json!({"content_markdown": "x".repeat(300 * 1024)})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = send(
        &app,
        Method::PUT,
        &format!("/policies/{id}"),
        &ann.token,
        Some(json!({"content_markdown": "   "})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = send(
        &app,
        Method::PUT,
        &format!("/policies/{id}"),
        &ann.token,
        Some(json!({"content_markdown": 42})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let res = app
        .client
        .put(app.url(&format!("/api/v1/policies/{id}")))
        .bearer_auth(&ann.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Another organisation sees nothing and changes nothing.
    for (method, path, body) in [
        (Method::GET, format!("/policies/{id}"), None),
        (
            Method::PUT,
            format!("/policies/{id}"),
            Some(json!({"content_markdown": "mine now"})),
        ),
        (Method::POST, format!("/policies/{id}/submit"), None),
        (Method::GET, format!("/policies/{id}/versions"), None),
        (
            Method::GET,
            format!("/policies/{id}/diff?from=1&to=1"),
            None,
        ),
        (
            Method::GET,
            format!("/policies/{id}/export?format=md"),
            None,
        ),
        (Method::DELETE, format!("/policies/{id}"), None),
        (Method::GET, "/policies/not-a-uuid".to_owned(), None),
    ] {
        let (status, problem) = send(&app, method.clone(), &path, &eve.token, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {problem}");
        assert_eq!(problem["type"], "https://ruleiq.dev/problems/not-found");
    }
    // Unknown versions, formats and statuses.
    let (status, _) = send(
        &app,
        Method::GET,
        &format!("/policies/{id}/diff?from=1&to=9"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &app,
        Method::GET,
        &format!("/policies/{id}/export?format=exe"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = send(
        &app,
        Method::PATCH,
        &format!("/policies/{id}/status"),
        &ann.token,
        Some(json!({"status": "published"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A draft cannot be approved without review.
    let (status, _) = send(
        &app,
        Method::PATCH,
        &format!("/policies/{id}/status"),
        &ann.token,
        Some(json!({"status": "approved"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = send(
        &app,
        Method::GET,
        "/policies?cursor=garbage",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (_, unchanged) = send(
        &app,
        Method::GET,
        &format!("/policies/{id}"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(unchanged["version"], 1);
    assert_eq!(unchanged["content_markdown"], p["content_markdown"]);
    assert_eq!(unchanged["status"], "draft");

    // Deleting takes it out of every list.
    let (status, _) = send(
        &app,
        Method::DELETE,
        &format!("/policies/{id}"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(
        &app,
        Method::GET,
        &format!("/policies/{id}"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = send(&app, Method::GET, "/policies", &ann.token, None).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    app.stop().await;
}
