//! Evidence over HTTP: streamed uploads checked against their extension, stored once
//! by hash, downloaded with `ETag` and `Range`, versioned, linked across frameworks,
//! approved by a second member, expired, extracted for search, and swept — and every
//! kind of bad upload refused with nothing left behind.

use reqwest::{Method, StatusCode};
use ruleiq_test_support::TestApp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    assessments::send,
    members::{Member, call, join, owner},
};

const BOUNDARY: &str = "ruleiq-test-boundary-7f3a";

/// A one-page PDF whose page says `text`.
pub(crate) fn pdf(text: &str) -> Vec<u8> {
    let content = format!("BT /F1 12 Tf 72 712 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A ZIP archive of stored (uncompressed) entries.
pub(crate) fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFF_u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = u32::try_from(out.len()).unwrap();
        let (crc, size, len) = (
            crc32(data),
            u32::try_from(data.len()).unwrap(),
            u16::try_from(name.len()).unwrap(),
        );
        out.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
        for v in [crc, size, size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
        for v in [crc, size, size] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&len.to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let (cd_offset, cd_size) = (
        u32::try_from(out.len()).unwrap(),
        u32::try_from(central.len()).unwrap(),
    );
    out.extend_from_slice(&central);
    let n = u16::try_from(entries.len()).unwrap();
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A Word package, with a macro project when `macros`.
pub(crate) fn docx(text: &str, macros: bool) -> Vec<u8> {
    let body = format!(
        r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"#
    );
    let types = br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
    let mut entries: Vec<(&str, &[u8])> = vec![
        ("[Content_Types].xml", types),
        ("word/document.xml", body.as_bytes()),
    ];
    if macros {
        entries.push(("word/vbaProject.bin", b"\xd0\xcf\x11\xe0macro"));
    }
    zip(&entries)
}

/// A multipart body: text fields, then files `(field, file name, bytes)`.
pub(crate) fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, file_name, bytes) in files {
        out.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

/// Posts a multipart body to an API path.
pub(crate) async fn post_multipart(
    app: &TestApp,
    path: &str,
    token: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1{path}")))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Uploads `bytes` as `file_name` with a title and controls.
pub(crate) async fn upload(
    app: &TestApp,
    m: &Member,
    file_name: &str,
    bytes: &[u8],
    controls: &[&str],
) -> (StatusCode, Value) {
    let mut fields = vec![("title", "Evidence"), ("evidence_type", "policy")];
    fields.extend(controls.iter().map(|c| ("control_ids", *c)));
    post_multipart(
        app,
        "/evidence",
        &m.token,
        multipart(&fields, &[("file", file_name, bytes)]),
    )
    .await
}

/// The id of the first control of a framework.
pub(crate) async fn first_control(app: &TestApp, m: &Member, framework: &str) -> String {
    let (status, page) = send(
        app,
        Method::GET,
        &format!("/frameworks/{framework}/controls?limit=1"),
        &m.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"][0]["id"].as_str().unwrap().to_owned()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every stored blob under the test's data directory.
fn blobs(app: &TestApp) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&app.db.dir.path().join("data/files/blobs"), &mut out);
    out
}

fn staging(app: &TestApp) -> usize {
    std::fs::read_dir(app.db.dir.path().join("data/files/staging"))
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn items(app: &TestApp, m: &Member, query: &str) -> Vec<Value> {
    let (status, page) = send(
        app,
        Method::GET,
        &format!("/evidence{query}"),
        &m.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_upload_is_stored_by_hash_downloaded_versioned_and_approved_by_another_member() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let cat = join(&app, &a, "cat@example.co.uk", "compliance_manager").await;
    let iso = first_control(&app, &a, "iso27001-2022").await;
    let ce = first_control(&app, &a, "cyber-essentials").await;
    let file = pdf("Access control policy");

    let (status, item) = upload(&app, &a, "Access policy.pdf", &file, &[&iso, &ce]).await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    assert_eq!(item["status"], "draft");
    assert_eq!(item["version"], 1);
    assert_eq!(item["kind"], "file");
    assert_eq!(item["file"]["name"], "Access policy.pdf");
    assert_eq!(item["file"]["size_bytes"], file.len());
    assert_eq!(item["file"]["content_type"], "application/pdf");
    assert_eq!(item["file"]["sha256"], sha256(&file));
    assert_eq!(item["created_by"], a.id.as_str());
    let slugs: Vec<&str> = item["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["framework_slug"].as_str().unwrap())
        .collect();
    assert_eq!(
        slugs,
        ["cyber-essentials", "iso27001-2022"],
        "one item, two frameworks"
    );
    let id = item["id"].as_str().unwrap().to_owned();

    // The bytes come back as sent, with the hash as ETag, as an attachment.
    let url = app.url(&format!("/api/v1/evidence/{id}/download"));
    let res = app
        .client
        .get(&url)
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let etag = format!("\"{}\"", sha256(&file));
    assert_eq!(res.headers()["etag"], etag.as_str());
    assert_eq!(res.headers()["accept-ranges"], "bytes");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"Access policy.pdf\""),
        "{disposition}"
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), file.as_slice());
    // Part of it, and nothing when unchanged.
    let res = app
        .client
        .get(&url)
        .bearer_auth(&a.token)
        .header("range", "bytes=0-7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 0-7/{}", file.len()).as_str()
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), &file[..8]);
    let res = app
        .client
        .get(&url)
        .bearer_auth(&a.token)
        .header("range", format!("bytes={}-", file.len() + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let res = app
        .client
        .get(&url)
        .bearer_auth(&a.token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    // The same bytes again: a second item, one stored blob.
    let (status, twin) = upload(&app, &a, "copy.pdf", &file, &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{twin}");
    assert_eq!(blobs(&app).len(), 1);
    assert_eq!(staging(&app), 0);

    // The workflow: nobody approves a draft, nobody approves their own submission.
    let path = |action: &str| format!("/evidence/{id}/{action}");
    let (status, body) = send(&app, Method::POST, &path("approve"), &cat.token, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("submitted first"),
        "{body}"
    );
    let (status, body) = send(&app, Method::POST, &path("submit"), &a.token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "submitted");
    assert_eq!(body["submitted_by"], a.id.as_str());
    let (status, _) = send(&app, Method::POST, &path("submit"), &a.token, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "already awaiting approval");
    let (status, body) = send(&app, Method::POST, &path("approve"), &a.token, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("another member"),
        "{body}"
    );
    let (status, body) = send(
        &app,
        Method::POST,
        &path("reject"),
        &cat.token,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a rejection says why: {body}"
    );
    let awaiting = items(&app, &cat, "?awaiting_my_approval=true").await;
    assert_eq!(awaiting.len(), 1);
    assert!(
        items(&app, &a, "?awaiting_my_approval=true")
            .await
            .is_empty(),
        "not for its submitter"
    );
    let (status, body) = send(
        &app,
        Method::POST,
        &path("approve"),
        &cat.token,
        Some(json!({"comment": "Signed and current"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "approved");
    assert_eq!(body["decided_by"], cat.id.as_str());
    assert_eq!(body["decision_comment"], "Signed and current");
    let (status, _) = send(
        &app,
        Method::POST,
        &path("reject"),
        &cat.token,
        Some(json!({"comment": "x"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "an approved item is not rejected"
    );

    // Coverage: two controls covered by approved evidence.
    let (_, stats) = send(&app, Method::GET, "/evidence/stats", &a.token, None).await;
    assert_eq!(stats["total"], 2, "{stats}");
    assert_eq!(stats["by_status"]["approved"], 1);
    assert_eq!(stats["by_status"]["draft"], 1);
    assert_eq!(stats["by_type"]["policy"], 2);
    assert_eq!(stats["controls_covered"], 2);
    assert!(stats["controls_total"].as_i64().unwrap() > 100, "{stats}");

    // A new version: back to draft, numbered, with its own hash; the old one kept.
    let v2 = pdf("Access control policy, revised");
    let (status, body) = post_multipart(
        &app,
        &path("versions"),
        &a.token,
        multipart(&[], &[("file", "Access policy v2.pdf", &v2)]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "draft");
    assert_eq!(body["version"], 2);
    assert!(
        body["decided_by"].is_null(),
        "a new review starts from nothing"
    );
    let (_, versions) = send(&app, Method::GET, &path("versions"), &a.token, None).await;
    let hashes: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["file"]["sha256"].as_str().unwrap())
        .collect();
    assert_eq!(hashes, [sha256(&v2), sha256(&file)]);
    let old = app
        .client
        .get(format!("{url}?version=1"))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(old.bytes().await.unwrap().as_ref(), file.as_slice());

    // Every step is in the item's history and in the audit log.
    let (_, history) = send(&app, Method::GET, &path("history"), &a.token, None).await;
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["created", "submitted", "approved", "new_version"]);
    let (_, audit) = send(&app, Method::GET, "/audit-log?limit=50", &a.token, None).await;
    let events: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for e in [
        "evidence.created",
        "evidence.submitted",
        "evidence.approved",
        "evidence.version_added",
    ] {
        assert!(events.contains(&e), "{e} in {events:?}");
    }

    // Soft delete: gone from reads and downloads; the blob stays (the twin uses it,
    // and the trail keeps it).
    let (status, _) = send(
        &app,
        Method::DELETE,
        &format!("/evidence/{id}"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(
        &app,
        Method::GET,
        &format!("/evidence/{id}"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let res = app
        .client
        .get(&url)
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(items(&app, &a, "").await.len(), 1);
}

#[tokio::test]
async fn links_filters_edits_and_readiness_coverage() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let cat = join(&app, &a, "cat@example.co.uk", "compliance_manager").await;
    let ce = first_control(&app, &a, "cyber-essentials").await;
    let (status, link) = send(
        &app,
        Method::POST,
        "/evidence",
        &a.token,
        Some(json!({
            "title": "Firewall rule review",
            "url": "https://intranet.example/firewall",
            "evidence_type": "configuration",
            "control_ids": [ce],
            "effective_date": "2026-11-01",
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert_eq!(link["kind"], "link");
    assert_eq!(link["version"], 0);
    assert!(link["file"].is_null());
    assert_eq!(link["extraction"], "not_applicable");
    let id = link["id"].as_str().unwrap().to_owned();
    let res = call(
        &app,
        Method::GET,
        &format!("/evidence/{id}/download"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "a link has no file");
    let (status, _) = upload(&app, &a, "notes.txt", b"Backup restore test notes", &[]).await;
    assert_eq!(status, StatusCode::CREATED);

    // Filters.
    let framework = |slug: &str| format!("/evidence?framework_id={slug}");
    assert_eq!(items(&app, &a, &format!("?control_id={ce}")).await.len(), 1);
    let (status, _) = send(
        &app,
        Method::GET,
        &framework("cyber-essentials"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "framework_id is an id"
    );
    assert_eq!(items(&app, &a, "?q=FIREWALL").await.len(), 1);
    assert_eq!(items(&app, &a, "?q=notes.txt").await.len(), 1);
    assert_eq!(
        items(&app, &a, "?q=100%25").await.len(),
        0,
        "% is not a wildcard"
    );
    assert_eq!(
        items(&app, &a, "?evidence_type=configuration").await.len(),
        1
    );
    assert_eq!(items(&app, &a, "?status=draft").await.len(), 2);
    for bad in [
        "?status=archived",
        "?limit=0",
        "?limit=201",
        "?cursor=zzz",
        "?evidence_type=photo",
        "?colour=red",
    ] {
        let (status, body) = send(
            &app,
            Method::GET,
            &format!("/evidence{bad}"),
            &a.token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    // Paging by cursor sees each item once.
    let (_, first) = send(&app, Method::GET, "/evidence?limit=1", &a.token, None).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = send(
        &app,
        Method::GET,
        &format!("/evidence?limit=1&cursor={cursor}"),
        &a.token,
        None,
    )
    .await;
    assert_ne!(first["items"][0]["id"], second["items"][0]["id"]);
    assert!(second["next_cursor"].is_null());

    // Readiness counts approved, unexpired evidence: complete a CE assessment, then
    // approve the link that backs one of its controls.
    let (_, assessment) = send(
        &app,
        Method::POST,
        "/assessments",
        &a.token,
        Some(json!({"framework_id": "cyber-essentials"})),
    )
    .await;
    let aid = assessment["id"].as_str().unwrap();
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/assessments/{aid}/complete"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        coverage(&app, &a).await.abs() < f64::EPSILON,
        "a draft covers nothing"
    );
    send(
        &app,
        Method::POST,
        &format!("/evidence/{id}/submit"),
        &a.token,
        None,
    )
    .await;
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/evidence/{id}/approve"),
        &cat.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let covered = coverage(&app, &a).await;
    assert!(
        covered > 0.0 && covered < 10.0,
        "one CE control of 40: {covered}"
    );

    // An edit to approved evidence sends it back for review; null clears a field.
    let (status, body) = send(
        &app,
        Method::PATCH,
        &format!("/evidence/{id}"),
        &a.token,
        Some(json!({"effective_date": null, "description": "Quarterly review"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "draft");
    assert!(body["effective_date"].is_null());
    assert_eq!(body["description"], "Quarterly review");
    assert!(
        coverage(&app, &a).await.abs() < f64::EPSILON,
        "no longer approved"
    );
    for (patch, field) in [
        (json!({"title": ""}), "title"),
        (json!({"evidence_type": "photo"}), "evidence_type"),
        (json!({"expires_at": "soon"}), ""),
        (json!({"colour": "red"}), ""),
        (
            json!({"effective_date": "2026-12-01", "expires_at": "2026-11-01T00:00:00Z"}),
            "expires_at",
        ),
    ] {
        let (status, body) = send(
            &app,
            Method::PATCH,
            &format!("/evidence/{id}"),
            &a.token,
            Some(patch.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{patch}: {body}");
        if !field.is_empty() {
            assert_eq!(body["errors"][0]["field"], field, "{body}");
        }
    }
    // Links: replaced, checked, never partly written.
    let iso = first_control(&app, &a, "iso27001-2022").await;
    let (status, body) = send(
        &app,
        Method::PUT,
        &format!("/evidence/{id}/controls"),
        &a.token,
        Some(json!({"control_ids": [iso, ce]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["controls"].as_array().unwrap().len(), 2);
    let missing = uuid::Uuid::now_v7().to_string();
    let (status, body) = send(
        &app,
        Method::PUT,
        &format!("/evidence/{id}/controls"),
        &a.token,
        Some(json!({"control_ids": [iso, missing]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, after) = send(
        &app,
        Method::GET,
        &format!("/evidence/{id}"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(after["controls"].as_array().unwrap().len(), 2, "unchanged");
}

/// The evidence coverage of the organisation's first assessed framework.
async fn coverage(app: &TestApp, m: &Member) -> f64 {
    let (_, status) = send(app, Method::GET, "/compliance/status", &m.token, None).await;
    status["frameworks"][0]["evidence_coverage"]
        .as_f64()
        .unwrap_or_else(|| panic!("{status}"))
}

#[tokio::test]
async fn bad_uploads_are_refused_with_nothing_stored() {
    let app = TestApp::spawn_with(|raw| raw.max_upload_size = 64 * 1024).await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let viewer = join(&app, &a, "val@example.co.uk", "viewer").await;
    let detail = |b: &Value| b["detail"].as_str().unwrap_or_default().to_owned();

    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00".to_vec();
    exe.extend_from_slice(&[0; 256]);
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "tool.exe",
            exe.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "accepted",
        ),
        (
            "policy.pdf",
            exe.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "program",
        ),
        (
            "policy.docx",
            docx("Policy", true),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "macro",
        ),
        (
            "policy.docx",
            b"just some text".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "",
        ),
        (
            "noextension",
            b"text".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "extension",
        ),
        (
            "notes.txt",
            b"bad \xff\xfe utf-8".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "",
        ),
        (
            "empty.txt",
            Vec::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty",
        ),
        (
            "big.txt",
            vec![b'a'; 65 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "MAX_UPLOAD_SIZE",
        ),
    ];
    for (name, bytes, status, mention) in cases {
        let (got, body) = upload(&app, &a, name, &bytes, &[]).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(
            body["status"],
            status.as_u16(),
            "a problem document: {body}"
        );
        assert!(detail(&body).contains(mention), "{name}: {body}");
    }
    // A real Word file passes.
    let (status, body) = upload(&app, &a, "policy.docx", &docx("Policy", false), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["file"]["content_type"],
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    );

    // Malformed forms.
    let txt: &[u8] = b"hello";
    let (status, body) = post_multipart(
        &app,
        "/evidence",
        &a.token,
        multipart(&[("title", "x")], &[]),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no file part: {body}"
    );
    let (status, body) = post_multipart(
        &app,
        "/evidence",
        &a.token,
        multipart(
            &[("title", "x")],
            &[("file", "a.txt", txt), ("file", "b.txt", txt)],
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "two files: {body}"
    );
    let mut truncated = multipart(&[("title", "x")], &[("file", "a.txt", txt)]);
    truncated.truncate(truncated.len() - 30);
    let (status, body) = post_multipart(&app, "/evidence", &a.token, truncated).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "truncated: {body}");
    let (status, body) = post_multipart(
        &app,
        "/evidence",
        &a.token,
        multipart(&[("evidence_type", "policy")], &[("file", "a.txt", txt)]),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "no title: {body}");
    assert_eq!(body["errors"][0]["field"], "title");
    let ghost = uuid::Uuid::now_v7().to_string();
    let (status, body) = post_multipart(
        &app,
        "/evidence",
        &a.token,
        multipart(
            &[("title", "x"), ("control_ids", &ghost)],
            &[("file", "a.txt", txt)],
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a control that does not exist: {body}"
    );
    let res = app
        .client
        .post(app.url("/api/v1/evidence"))
        .bearer_auth(&a.token)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) = upload(&app, &viewer, "a.txt", txt, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer cannot upload");

    // Nothing but the Word file became an item, and refused uploads left no staging.
    assert_eq!(items(&app, &a, "").await.len(), 1);
    assert_eq!(staging(&app), 0);

    // A 2 GB declared body is refused before it is read, and an oversized body sent
    // without a length is cut off as soon as it passes the limit.
    let (status, _) = raw(&app, &a.token, "Content-Length: 2147483648\r\n", b"").await;
    assert_eq!(status, 413);
    // The same on the upload page answers with a page, not JSON.
    let (status, page) = raw_to(
        &app,
        "/evidence/new",
        "",
        "Content-Length: 2147483648\r\n",
        b"",
    )
    .await;
    assert_eq!(status, 413);
    assert!(
        page.contains("text/html") && page.contains("too large"),
        "{page}"
    );
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n\r\n"
    );
    let mut chunked = format!("{:x}\r\n{head}\r\n", head.len()).into_bytes();
    let block = vec![b'a'; 16 * 1024];
    for _ in 0..8 {
        chunked.extend_from_slice(format!("{:x}\r\n", block.len()).as_bytes());
        chunked.extend_from_slice(&block);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, body) = raw(&app, &a.token, "Transfer-Encoding: chunked\r\n", &chunked).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(staging(&app), 0);

    // A path in the file name is not a path on disk.
    let (status, body) = upload(&app, &a, "../../etc/passwd.txt", b"root:x:0:0", &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["file"]["name"], "passwd.txt");
}

/// Sends a raw HTTP/1.1 POST to `/api/v1/evidence` with extra headers and body, and
/// returns the status and body text.
async fn raw(app: &TestApp, token: &str, headers: &str, body: &[u8]) -> (u16, String) {
    raw_to(app, "/api/v1/evidence", token, headers, body).await
}

/// As [`raw`], to any path.
async fn raw_to(
    app: &TestApp,
    path: &str,
    token: &str,
    headers: &str,
    body: &[u8],
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nConnection: close\r\n{headers}\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before taking all of it; that is the point.
    let _ = stream.write_all(body).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut out),
    )
    .await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn other_organisations_evidence_is_not_found() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let b = owner(&app, "bob@example.co.uk", "Bob Ltd").await;
    let (_, item) = upload(&app, &a, "a.txt", b"Ann's evidence", &[]).await;
    let id = item["id"].as_str().unwrap();
    for (method, path, body) in [
        (Method::GET, format!("/evidence/{id}"), None),
        (Method::GET, format!("/evidence/{id}/download"), None),
        (Method::GET, format!("/evidence/{id}/versions"), None),
        (Method::GET, format!("/evidence/{id}/history"), None),
        (
            Method::PATCH,
            format!("/evidence/{id}"),
            Some(json!({"title": "Mine now"})),
        ),
        (
            Method::PUT,
            format!("/evidence/{id}/controls"),
            Some(json!({"control_ids": []})),
        ),
        (Method::POST, format!("/evidence/{id}/submit"), None),
        (Method::DELETE, format!("/evidence/{id}"), None),
        (Method::GET, "/evidence/not-a-uuid".to_owned(), None),
    ] {
        let res = call(&app, method.clone(), &path, &b.token, body).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (status, _) = post_multipart(
        &app,
        &format!("/evidence/{id}/versions"),
        &b.token,
        multipart(&[], &[("file", "b.txt", b"Bob's")]),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(items(&app, &b, "").await.is_empty());
    let (_, still) = send(
        &app,
        Method::GET,
        &format!("/evidence/{id}"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(still["title"], "Evidence");
    assert_eq!(still["version"], 1);
    assert_eq!(still["status"], "draft");
}

#[tokio::test]
async fn fifty_concurrent_uploads_of_one_file_make_fifty_items_and_one_blob() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let file = pdf("Same policy for everyone");
    let uploads = (0..50).map(|i| {
        let (app, a, file) = (&app, &a, &file);
        async move { upload(app, a, &format!("copy-{i}.pdf"), file, &[]).await }
    });
    let results = futures::future::join_all(uploads).await;
    for (status, body) in &results {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
    }
    let (_, stats) = send(&app, Method::GET, "/evidence/stats", &a.token, None).await;
    assert_eq!(stats["total"], 50);
    assert_eq!(blobs(&app).len(), 1, "stored once");
    assert_eq!(staging(&app), 0);
}

/// Waits for an item's extraction to leave `pending`.
async fn extracted(app: &TestApp, m: &Member, id: &str) -> Value {
    for _ in 0..200 {
        let (_, item) = send(app, Method::GET, &format!("/evidence/{id}"), &m.token, None).await;
        if item["extraction"] != "pending" {
            return item;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("extraction of {id} never finished");
}

#[tokio::test]
async fn text_is_extracted_for_search_and_a_bad_file_fails_alone() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let b = owner(&app, "bob@example.co.uk", "Bob Ltd").await;
    let (_, broken) = upload(
        &app,
        &a,
        "broken.pdf",
        b"%PDF-1.4 this is not really a PDF",
        &[],
    )
    .await;
    let (_, word) = upload(
        &app,
        &a,
        "handbook.docx",
        &docx("Zebracrossing induction handbook", false),
        &[],
    )
    .await;
    let (_, pdf_item) = upload(
        &app,
        &a,
        "policy.pdf",
        &pdf("Quokkaflight access control"),
        &[],
    )
    .await;
    let broken = extracted(&app, &a, broken["id"].as_str().unwrap()).await;
    assert_eq!(broken["extraction"], "failed", "{broken}");
    let word = extracted(&app, &a, word["id"].as_str().unwrap()).await;
    assert_eq!(word["extraction"], "done", "the worker lives on: {word}");
    let pdf_item = extracted(&app, &a, pdf_item["id"].as_str().unwrap()).await;
    assert_eq!(pdf_item["extraction"], "done", "{pdf_item}");
    let (_, versions) = send(
        &app,
        Method::GET,
        &format!("/evidence/{}/versions", broken["id"].as_str().unwrap()),
        &a.token,
        None,
    )
    .await;
    assert!(
        !versions[0]["extraction_error"].as_str().unwrap().is_empty(),
        "{versions}"
    );

    for (word_in_text, id) in [
        ("zebracrossing", &word["id"]),
        ("quokkaflight", &pdf_item["id"]),
    ] {
        let (status, hits) = send(
            &app,
            Method::GET,
            &format!("/search?q={word_in_text}&kind=evidence"),
            &a.token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{hits}");
        assert_eq!(hits["items"][0]["id"], *id, "{word_in_text}: {hits}");
        assert_eq!(hits["items"][0]["kind"], "evidence");
        // Never across organisations.
        let (_, theirs) = send(
            &app,
            Method::GET,
            &format!("/search?q={word_in_text}"),
            &b.token,
            None,
        )
        .await;
        assert!(theirs["items"].as_array().unwrap().is_empty(), "{theirs}");
    }
    // Deleted evidence leaves search.
    send(
        &app,
        Method::DELETE,
        &format!("/evidence/{}", word["id"].as_str().unwrap()),
        &a.token,
        None,
    )
    .await;
    let (_, hits) = send(&app, Method::GET, "/search?q=zebracrossing", &a.token, None).await;
    assert!(hits["items"].as_array().unwrap().is_empty(), "{hits}");
}

#[tokio::test]
async fn approved_evidence_expires_and_orphans_are_swept() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let cat = join(&app, &a, "cat@example.co.uk", "compliance_manager").await;
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).date_naive();
    let soon = (chrono::Utc::now() + chrono::Duration::days(10)).date_naive();
    let mut ids = Vec::new();
    for expires in [yesterday, soon] {
        let (status, item) = post_multipart(
            &app,
            "/evidence",
            &a.token,
            multipart(
                &[
                    ("title", "Certificate"),
                    ("evidence_type", "certificate"),
                    ("expires_at", &expires.to_string()),
                ],
                &[(
                    "file",
                    "cert.txt",
                    format!("valid until {expires}").as_bytes(),
                )],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{item}");
        let id = item["id"].as_str().unwrap().to_owned();
        let (status, body) = send(
            &app,
            Method::POST,
            &format!("/evidence/{id}/submit"),
            &a.token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = send(
            &app,
            Method::POST,
            &format!("/evidence/{id}/approve"),
            &cat.token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(id);
    }
    let (_, stats) = send(&app, Method::GET, "/evidence/stats", &a.token, None).await;
    assert_eq!(stats["expiring_30d"], 1, "{stats}");
    let (_, dashboard) = send(&app, Method::GET, "/dashboard", &a.token, None).await;
    assert_eq!(dashboard["evidence_expiring_30d"], 1, "{dashboard}");
    assert_eq!(dashboard["evidence_expiring"][0]["id"], ids[1].as_str());
    assert_eq!(dashboard["pending_approvals"], 0);

    let upkeep = &app.components.upkeep;
    // The daily expiry queued at start-up runs in the embedded worker and may reach
    // the item first; either way it is expired once, by the same code.
    assert!(upkeep.expire_due().await.unwrap() <= 1);
    assert_eq!(upkeep.expire_due().await.unwrap(), 0, "idempotent");
    let (_, gone) = send(
        &app,
        Method::GET,
        &format!("/evidence/{}", ids[0]),
        &a.token,
        None,
    )
    .await;
    assert_eq!(gone["status"], "expired");
    let (_, kept) = send(
        &app,
        Method::GET,
        &format!("/evidence/{}", ids[1]),
        &a.token,
        None,
    )
    .await;
    assert_eq!(kept["status"], "approved");
    let (_, history) = send(
        &app,
        Method::GET,
        &format!("/evidence/{}/history", ids[0]),
        &a.token,
        None,
    )
    .await;
    assert_eq!(
        history.as_array().unwrap().last().unwrap()["action"],
        "expired"
    );
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/evidence/{}/approve", ids[0]),
        &cat.token,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "expired is not approved again without a review"
    );

    // An orphan (stored, never claimed) older than a day goes; claimed blobs stay,
    // however old.
    let store = app.components.evidence.store();
    let orphan = store
        .put_stream(
            futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
                b"orphan",
            ))]),
            100,
        )
        .await
        .unwrap();
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
    for path in blobs(&app) {
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
    }
    let swept = upkeep.sweep().await.unwrap();
    assert_eq!(swept.orphans, 1, "{swept:?}");
    let left: Vec<String> = blobs(&app)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&orphan.sha256));
    let verified = upkeep.verify(|_, _| {}).await.unwrap();
    assert!(verified.ok(), "{verified:?}");
    assert_eq!(verified.checked, 2);
}
