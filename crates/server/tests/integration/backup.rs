//! `ruleiq backup` and `ruleiq restore`, run as an operator runs them: an organisation
//! built through the API is backed up while its server runs, restored into a fresh
//! database of the same and of the other engine, and a second server over the restored
//! database and storage answers every read exactly as the first did. A damaged archive
//! and a target that already holds data are refused, with nothing written.

use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use reqwest::{Method, StatusCode};
use ruleiq_db::sea_orm::{ConnectionTrait, Database, Statement};
use ruleiq_test_support::{TestApp, TestDatabase, backend};
use serde_json::{Value, json};
use std::{
    io::{Read, Write},
    path::Path,
    process::Command,
};

use crate::{
    assessments::send,
    members::{Member, call, owner},
    reports::{organisation, report},
};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `ruleiq` on `db` and its data directory, with nothing else in the environment.
fn ruleiq(db: &TestDatabase, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_ruleiq"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("DATA_DIR", db.dir.path().join("data"))
        .env("LOG_LEVEL", "warn")
        .current_dir(db.dir.path())
        .args(args)
        .output()
        .expect("runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(run: &Run) {
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
}

/// A failure with exit code 1 whose message mentions every one of `mentions`.
fn refused(run: &Run, mentions: &[&str]) {
    assert_eq!(
        run.code, 1,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    for m in mentions {
        assert!(run.stderr.contains(m), "names {m}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// What the organisation looks like, to compare two servers by.
struct Org {
    ann: Member,
    assessment: String,
    plan: String,
    evidence: String,
    policy: String,
    report: String,
}

/// The reports test's organisation (assessment, plan, evidence, approved policy),
/// plus a business profile, answered questions on a second assessment, and a report.
async fn build(app: &TestApp) -> Org {
    let (ann, _bob, _gaps, _file) = organisation(app).await;
    let profile = json!({
        "company_name": "Quokka Widgets Ltd",
        "industry": "retail",
        "employee_count": 12,
        "data_sensitivity": "medium",
        "handles_personal_data": true,
        "processes_payment_cards": true
    });
    let res = call(
        app,
        Method::PUT,
        "/business-profile",
        &ann.token,
        Some(profile),
    )
    .await;
    assert!(res.status().is_success(), "{:?}", res.text().await);
    let (status, a) = send(
        app,
        Method::POST,
        "/assessments",
        &ann.token,
        Some(json!({"framework_id": "iso27001-2022"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let assessment = a["id"].as_str().unwrap().to_owned();
    let (_, qs) = send(
        app,
        Method::GET,
        &format!("/assessments/{assessment}/questions"),
        &ann.token,
        None,
    )
    .await;
    for (i, response) in ["yes", "partial", "no"].iter().enumerate() {
        let q = qs["items"][i]["id"].as_str().unwrap();
        let (status, body) = send(
            app,
            Method::PUT,
            &format!("/assessments/{assessment}/answers/{q}"),
            &ann.token,
            Some(json!({ "response": response, "notes": format!("note {i} ✓") })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, plans) = send(app, Method::GET, "/plans", &ann.token, None).await;
    let plan = first_id(&plans);
    let (_, evidence) = send(app, Method::GET, "/evidence", &ann.token, None).await;
    let evidence = first_id(&evidence);
    let (_, policies) = send(app, Method::GET, "/policies", &ann.token, None).await;
    let policy = first_id(&policies);
    let (r, _) = report(
        app,
        &ann,
        json!({"report_type": "gap_analysis", "format": "csv"}),
    )
    .await;
    Org {
        ann,
        assessment,
        plan,
        evidence,
        policy,
        report: r["id"].as_str().unwrap().to_owned(),
    }
}

fn first_id(page: &Value) -> String {
    let items = page["items"].as_array().or(page.as_array()).unwrap();
    items[0]["id"].as_str().unwrap().to_owned()
}

/// The answers of the read endpoints an auditor and the dashboard use, and the bytes
/// of the stored files, keyed by path.
async fn answers(app: &TestApp, org: &Org) -> Vec<(String, String)> {
    let paths = [
        "/auth/me".to_owned(),
        "/organization".to_owned(),
        "/business-profile".to_owned(),
        "/dashboard".to_owned(),
        "/compliance/status".to_owned(),
        "/frameworks".to_owned(),
        "/frameworks/cyber-essentials/controls?limit=5".to_owned(),
        "/assessments".to_owned(),
        format!("/assessments/{}", org.assessment),
        format!("/assessments/{}/questions", org.assessment),
        "/plans".to_owned(),
        format!("/plans/{}", org.plan),
        "/evidence".to_owned(),
        format!("/evidence/{}", org.evidence),
        format!("/evidence/{}/history", org.evidence),
        "/policies".to_owned(),
        format!("/policies/{}", org.policy),
        "/reports".to_owned(),
        format!("/reports/{}", org.report),
        "/audit-log".to_owned(),
        "/audit-log/verify".to_owned(),
        "/ai/cost/usage".to_owned(),
        "/users".to_owned(),
        "/notifications".to_owned(),
        "/rbac/roles".to_owned(),
        // Search reads the restored search documents: policy text and control text.
        "/search?q=firewall".to_owned(),
        "/search?q=information%20security".to_owned(),
    ];
    let mut out = Vec::new();
    for path in paths {
        let (status, body) = send(app, Method::GET, &path, &org.ann.token, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        out.push((path, body.to_string()));
    }
    for path in [
        format!("/evidence/{}/download", org.evidence),
        format!("/reports/{}/download", org.report),
    ] {
        let res = call(app, Method::GET, &path, &org.ann.token, None).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let bytes = res.bytes().await.unwrap();
        assert!(!bytes.is_empty(), "{path}");
        out.push((path, hex::encode(bytes)));
    }
    out
}

fn other(engine: &str) -> &'static str {
    if engine == "postgres" {
        "sqlite"
    } else {
        "postgres"
    }
}

#[tokio::test]
async fn a_restored_backup_answers_exactly_as_the_original_on_either_engine() {
    let source = TestApp::spawn().await;
    let org = build(&source).await;
    let before = answers(&source, &org).await;
    for (path, body) in &before {
        if path.starts_with("/search") {
            let hits: Value = serde_json::from_str(body).unwrap();
            assert!(
                !hits["items"].as_array().unwrap().is_empty(),
                "{path}: {hits}"
            );
        }
    }

    // Backed up while the source server is still running.
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("ruleiq.tar.gz");
    let run = ruleiq(
        &source.db,
        &["backup", "--output", archive.to_str().unwrap()],
    );
    ok(&run);
    assert!(run.stdout.contains("backup written to"), "{}", run.stdout);
    assert!(run.stderr.contains("answers"), "progress: {}", run.stderr);
    // A second backup to the same name is refused rather than overwriting the first.
    refused(
        &ruleiq(
            &source.db,
            &["backup", "--output", archive.to_str().unwrap()],
        ),
        &["already exists"],
    );

    // The manifest describes what it holds.
    let (manifest, _) = unpack(&archive);
    assert_eq!(manifest["format"], "ruleiq-backup");
    assert_eq!(manifest["source_backend"], backend());
    assert!(
        manifest["schema_version"]
            .as_str()
            .unwrap()
            .starts_with("m2026"),
        "{manifest}"
    );
    let rows = |table: &str| {
        manifest["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == table)
            .unwrap_or_else(|| panic!("{table} in {manifest}"))["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rows("organizations"), 1);
    assert_eq!(rows("answers"), 3);
    assert!(rows("evidence_versions") >= 1);
    // The evidence file and the report file.
    assert_eq!(manifest["blobs"].as_array().unwrap().len(), 2, "{manifest}");

    let engine = backend();
    for target in [engine, other(engine)] {
        let db = TestDatabase::on(target).await;
        let run = ruleiq(&db, &["restore", archive.to_str().unwrap()]);
        ok(&run);
        assert!(run.stdout.contains("restored"), "{}", run.stdout);
        // The same signed-in session works against the restored server: sessions,
        // users and the signing key's tokens all came across.
        let restored = TestApp::spawn_on(db, |_| {}).await;
        let after = answers(&restored, &org).await;
        for ((path, a), (_, b)) in before.iter().zip(&after) {
            // PostgreSQL keeps timestamps to the microsecond; SQLite keeps what it is
            // given, the nanoseconds of the clock. Moving to PostgreSQL truncates them
            // there (the audit chain hashes its times to the microsecond for this).
            let a = if engine == "sqlite" && target == "postgres" {
                to_microseconds(a)
            } else {
                a.clone()
            };
            assert_eq!(&a, b, "{engine} → {target}: {path} differs");
        }
        restored.stop().await;
    }
    source.stop().await;
}

/// `text` with every RFC 3339 time's fraction cut to microseconds and written as
/// chrono writes it (`AutoSi`: no fraction, or 3, 6 or 9 digits).
fn to_microseconds(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut last, mut i) = (0, 0);
    while i < bytes.len() {
        // `:SS.` then 7 to 9 digits then `Z`.
        if bytes[i] == b'.' && i >= 3 && bytes[i - 3] == b':' {
            let digits = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if (7..=9).contains(&digits) && bytes.get(i + 1 + digits) == Some(&b'Z') {
                let nanos: u32 = text[i + 1..i + 1 + digits].parse().unwrap();
                let micros = nanos * 10u32.pow(9 - digits as u32) / 1_000;
                out.push_str(&text[last..i]);
                match micros {
                    0 => {}
                    m if m % 1_000 == 0 => out.push_str(&format!(".{:03}", m / 1_000)),
                    m => out.push_str(&format!(".{m:06}")),
                }
                i += 1 + digits;
                last = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[last..]);
    out
}

#[test]
fn times_are_cut_to_microseconds_as_postgresql_keeps_them() {
    assert_eq!(
        to_microseconds(r#"{"a":"2026-11-27T11:03:15.315326961Z","b":"ab.123456789Z ✓"}"#),
        r#"{"a":"2026-11-27T11:03:15.315326Z","b":"ab.123456789Z ✓"}"#
    );
    assert_eq!(
        to_microseconds("10:00:01.000000500Z 10:00:01.250000100Z 10:00:01.5Z"),
        "10:00:01Z 10:00:01.250Z 10:00:01.5Z"
    );
}

/// The archive's manifest and its uncompressed tar bytes.
fn unpack(archive: &Path) -> (Value, Vec<u8>) {
    let mut tar = Vec::new();
    GzDecoder::new(std::fs::File::open(archive).unwrap())
        .read_to_end(&mut tar)
        .unwrap();
    let at = find(&tar, b"\"format\": \"ruleiq-backup\"").expect("manifest");
    let start = tar[..at].iter().rposition(|b| *b == b'{').unwrap();
    let end = start + tar[start..].iter().position(|b| *b == 0).unwrap();
    (serde_json::from_slice(&tar[start..end]).unwrap(), tar)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The archive again with one byte changed: of `needle`'s first occurrence after the
/// entry named `entry`.
fn tampered(tar: &[u8], entry: &str, needle: &[u8], to: &Path) {
    let mut tar = tar.to_vec();
    let from = find(&tar, entry.as_bytes()).unwrap_or_else(|| panic!("{entry} in the archive"));
    let at = from + find(&tar[from..], needle).unwrap_or_else(|| panic!("{needle:?} in {entry}"));
    tar[at] ^= 0x20;
    let mut gz = GzEncoder::new(std::fs::File::create(to).unwrap(), Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap();
}

/// Rows in the target's organisations table, or `None` when it has no such table.
async fn organisations(db: &TestDatabase) -> Option<i64> {
    let conn = Database::connect(&db.url).await.unwrap();
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM organizations",
        ))
        .await
        .ok()?;
    conn.close().await.ok();
    row.map(|r| r.try_get::<i64>("", "n").unwrap())
}

#[tokio::test]
async fn a_damaged_archive_is_refused_naming_the_file_and_nothing_is_written() {
    let source = TestApp::spawn().await;
    let org = build(&source).await;
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("good.tar.gz");
    ok(&ruleiq(
        &source.db,
        &["backup", "-o", archive.to_str().unwrap()],
    ));
    let (manifest, tar) = unpack(&archive);
    let evidence_sha = {
        let (_, item) = send(
            &source,
            Method::GET,
            &format!("/evidence/{}", org.evidence),
            &org.ann.token,
            None,
        )
        .await;
        item["file"]["sha256"].as_str().unwrap().to_owned()
    };
    assert!(manifest.to_string().contains(&evidence_sha), "{manifest}");

    let target = TestDatabase::on(backend()).await;
    // A database never migrated has nothing to back up, and is told what to do.
    refused(
        &ruleiq(
            &target,
            &[
                "backup",
                "-o",
                out.path().join("none.tar.gz").to_str().unwrap(),
            ],
        ),
        &["schema is none", "ruleiq migrate up"],
    );
    assert!(!out.path().join("none.tar.gz").exists());
    assert!(!out.path().join("none.tar.gz.partial").exists());
    // A changed row in a table file.
    let bad_table = out.path().join("table.tar.gz");
    tampered(
        &tar,
        "tables/organizations.jsonl",
        b"Quokka Widgets Ltd",
        &bad_table,
    );
    refused(
        &ruleiq(&target, &["restore", bad_table.to_str().unwrap()]),
        &[
            "damaged",
            "tables/organizations.jsonl",
            "SHA-256",
            "nothing was restored",
        ],
    );
    // A changed byte in the evidence file.
    let bad_blob = out.path().join("blob.tar.gz");
    tampered(
        &tar,
        &format!("blobs/{evidence_sha}"),
        b"Firewall rules reviewed",
        &bad_blob,
    );
    refused(
        &ruleiq(&target, &["restore", bad_blob.to_str().unwrap()]),
        &["damaged", &format!("blobs/{evidence_sha}")],
    );
    // `--check` finds the same without a database.
    refused(
        &ruleiq(&target, &["restore", "--check", bad_blob.to_str().unwrap()]),
        &[&format!("blobs/{evidence_sha}")],
    );
    // Cut short.
    let bytes = std::fs::read(&archive).unwrap();
    let cut = out.path().join("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    refused(
        &ruleiq(&target, &["restore", cut.to_str().unwrap()]),
        &["truncated"],
    );

    // Nothing was written: no schema, no rows, no files.
    assert_eq!(organisations(&target).await, None, "no table was created");
    assert!(
        !target.dir.path().join("data/files/blobs").exists(),
        "no file was stored"
    );
    // And the whole archive still restores into it.
    let run = ruleiq(&target, &["restore", "--check", archive.to_str().unwrap()]);
    ok(&run);
    assert!(run.stdout.contains("is whole"), "{}", run.stdout);
    ok(&ruleiq(&target, &["restore", archive.to_str().unwrap()]));
    assert_eq!(organisations(&target).await, Some(1));
    source.stop().await;
}

#[tokio::test]
async fn a_target_with_data_is_refused_unless_wiping_is_asked_for() {
    let source = TestApp::spawn().await;
    let org = build(&source).await;
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("b.tar.gz");
    ok(&ruleiq(
        &source.db,
        &["backup", "-o", archive.to_str().unwrap()],
    ));
    source.stop().await;

    // A target someone already started a server on and registered in.
    let target = TestApp::spawn_on(TestDatabase::on(backend()).await, |_| {}).await;
    let _other = owner(&target, "zed@example.co.uk", "Zed Ltd").await;
    let db = target.stop_keeping_database().await;

    let run = ruleiq(&db, &["restore", archive.to_str().unwrap()]);
    refused(
        &run,
        &["not empty", "organizations: 1 rows", "--wipe-existing"],
    );
    assert_eq!(organisations(&db).await, Some(1));

    let run = ruleiq(
        &db,
        &["restore", "--wipe-existing", archive.to_str().unwrap()],
    );
    ok(&run);
    assert!(
        run.stderr.contains("deleting existing data"),
        "{}",
        run.stderr
    );
    // Only the backup's organisation is left, and it answers as before.
    assert_eq!(organisations(&db).await, Some(1));
    let restored = TestApp::spawn_on(db, |_| {}).await;
    let (status, me) = send(
        &restored,
        Method::GET,
        "/organization",
        &org.ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "Quokka Widgets Ltd", "{me}");
    let res = restored
        .client
        .post(restored.url("/api/v1/auth/login"))
        .json(&json!({"email": "zed@example.co.uk", "password": crate::members::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the wiped account is gone"
    );
    restored.stop().await;
}
