//! The framework library over HTTP: listing, controls, questions, mappings,
//! comparison, applicability, OSCAL exchange, search; and the bad input each refuses.

use reqwest::{Method, StatusCode};
use ruleiq_services::frameworks::{content, library};
use ruleiq_test_support::TestApp;
use serde_json::{Value, json};

use crate::members::{Member, call, join, owner};

const NIST_LOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/oscal/NIST_SP-800-53_rev5_LOW-baseline-resolved-profile_catalog.json"
);

async fn get(app: &TestApp, path: &str, who: &Member) -> (StatusCode, Value) {
    let res = call(app, Method::GET, path, &who.token, None).await;
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn import(app: &TestApp, who: &Member, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/frameworks/import"))
        .bearer_auth(&who.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn find<'a>(items: &'a Value, key: &str, value: &str) -> &'a Value {
    items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i[key] == value)
        .unwrap_or_else(|| panic!("no {key}={value} in {items}"))
}

#[tokio::test]
async fn the_library_lists_every_framework_with_its_published_structure() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let (status, body) = get(&app, "/frameworks", &a).await;
    assert_eq!(status, StatusCode::OK);
    let items = &body["items"];
    assert_eq!(items.as_array().unwrap().len(), 8);
    let iso = find(items, "slug", "iso27001-2022");
    assert_eq!(iso["control_count"], 123);
    assert_eq!(iso["source"], "library");
    assert_eq!(
        iso["content_version"], 2,
        "bumped when effort estimates were added"
    );
    let domains = &iso["domains"];
    for (domain, n) in [
        ("annex-a", 93),
        ("A.5", 37),
        ("A.6", 8),
        ("A.7", 14),
        ("A.8", 34),
    ] {
        assert_eq!(find(domains, "ref", domain)["control_count"], n, "{domain}");
    }
    let csf = find(items, "slug", "nist-csf-2.0");
    assert_eq!(csf["control_count"], 106);
    let functions: Vec<_> = csf["domains"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["parent_ref"].is_null())
        .collect();
    assert_eq!(functions.len(), 6);
    assert_eq!(csf["domains"].as_array().unwrap().len(), 6 + 22);
    assert_eq!(find(items, "slug", "ncsc-caf")["control_count"], 41);
    assert_eq!(find(items, "slug", "pci-dss-4.0.1")["control_count"], 63);
    for slug in ["uk-gdpr", "cyber-essentials", "soc2-2017", "nis2"] {
        assert!(find(items, "slug", slug)["control_count"].as_i64().unwrap() > 10);
    }

    let (status, one) = get(&app, "/frameworks/uk-gdpr", &a).await;
    assert_eq!(status, StatusCode::OK);
    let (_, by_id) = get(
        &app,
        &format!("/frameworks/{}", one["id"].as_str().unwrap()),
        &a,
    )
    .await;
    assert_eq!(by_id["slug"], "uk-gdpr");

    let (status, problem) = get(&app, "/frameworks/no-such-framework", &a).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem["type"], "https://ruleiq.dev/problems/not-found");
    let anonymous = app.get("/api/v1/frameworks").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn controls_page_in_order_with_questions_mappings_and_filters() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let (status, page) = get(
        &app,
        "/frameworks/iso27001-2022/controls?domain=A.8&limit=20",
        &a,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    assert_eq!(items[0]["ref"], "A.8.1");
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = get(
        &app,
        &format!("/frameworks/iso27001-2022/controls?domain=A.8&limit=20&cursor={cursor}"),
        &a,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 14);
    assert_eq!(rest["items"][0]["ref"], "A.8.21");
    assert!(rest["next_cursor"].is_null());

    let auth = find(&page["items"], "ref", "A.8.5");
    assert_eq!(auth["framework_slug"], "iso27001-2022");
    assert!(["low", "medium", "high", "critical"].contains(&auth["criticality"].as_str().unwrap()));
    assert!(!auth["guidance"].as_str().unwrap().is_empty());
    assert!(!auth["evidence_examples"].as_array().unwrap().is_empty());
    let mapped: Vec<&str> = auth["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["framework_slug"].as_str().unwrap())
        .collect();
    for slug in ["cyber-essentials", "nist-csf-2.0", "soc2-2017"] {
        assert!(mapped.contains(&slug), "A.8.5 maps into {slug}: {mapped:?}");
    }
    // A shared question serves this control and controls of other frameworks.
    let shared = auth["questions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["shared"] == true)
        .expect("A.8.5 has a shared question")
        .clone();
    let ce = auth["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["framework_slug"] == "cyber-essentials")
        .unwrap();
    let (status, ce_control) = get(
        &app,
        &format!("/controls/{}", ce["control_id"].as_str().unwrap()),
        &a,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ce_control["framework_slug"], "cyber-essentials");
    let reverse = find(&ce_control["mappings"], "ref", "A.8.5");
    assert_eq!(reverse["framework_slug"], "iso27001-2022");
    let (_, bank_users) = get(
        &app,
        &format!(
            "/search?q={}&limit=50",
            urlencode(shared["text"].as_str().unwrap())
        ),
        &a,
    )
    .await;
    assert!(!bank_users["items"].as_array().unwrap().is_empty());

    // Clients that accept gzip get the same page compressed (once, not twice).
    let res = app
        .client
        .get(app.url("/api/v1/frameworks/iso27001-2022/controls?domain=A.8&limit=20"))
        .bearer_auth(&a.token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let compressed = res.bytes().await.unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut plain,
    )
    .unwrap();
    let unzipped: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(unzipped, page);
    assert!(compressed.len() * 3 < plain.len());

    let (_, searched) = get(&app, "/frameworks/iso27001-2022/controls?q=backup", &a).await;
    assert!(
        searched["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["ref"] == "A.8.13")
    );

    for (path, field) in [
        ("/frameworks/iso27001-2022/controls?limit=0", "limit"),
        ("/frameworks/iso27001-2022/controls?limit=abc", "query"),
        ("/frameworks/iso27001-2022/controls?cursor=xyz", "cursor"),
        ("/frameworks/iso27001-2022/controls?domain=Z.9", "domain"),
    ] {
        let (status, problem) = get(&app, path, &a).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(problem["errors"][0]["field"], field, "{path}: {problem}");
    }
    let (status, _) = get(&app, "/frameworks/nope/controls", &a).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for id in ["not-a-uuid", "0190d6a4-0000-7000-8000-000000000000"] {
        let (status, problem) = get(&app, &format!("/controls/{id}"), &a).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(problem["type"], "https://ruleiq.dev/problems/not-found");
    }
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    url_escape(s)
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn comparison_reports_pairs_and_coverage_both_ways() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let res = call(
        &app,
        Method::POST,
        "/frameworks/compare",
        &a.token,
        Some(json!({"framework_ids": ["cyber-essentials", "iso27001-2022"]})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["a"]["slug"], "cyber-essentials");
    assert_eq!(
        body["a"]["covered_percent"], 100.0,
        "every CE control maps to ISO"
    );
    let b_cover = body["b"]["covered_percent"].as_f64().unwrap();
    assert!(b_cover > 0.0 && b_cover < 100.0, "{b_cover}");
    let pairs = body["pairs"].as_array().unwrap();
    assert!(pairs.len() >= 40);
    assert!(
        pairs
            .iter()
            .all(|p| p["a"]["ref"].is_string() && p["b"]["ref"].is_string())
    );
    // Read from the other side, subset turns into superset.
    let res = call(
        &app,
        Method::POST,
        "/frameworks/compare",
        &a.token,
        Some(json!({"framework_ids": ["iso27001-2022", "cyber-essentials"]})),
    )
    .await;
    let flipped: Value = res.json().await.unwrap();
    let subsets = pairs.iter().filter(|p| p["relation"] == "subset").count();
    let supersets = flipped["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["relation"] == "superset")
        .count();
    assert_eq!(subsets, supersets);
    assert_eq!(flipped["a"]["covered_percent"].as_f64().unwrap(), b_cover);

    for (body, status) in [
        (
            json!({"framework_ids": ["uk-gdpr"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"framework_ids": ["uk-gdpr", "uk-gdpr"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"framework_ids": "uk-gdpr"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"framework_ids": ["uk-gdpr", "nope"]}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let res = call(
            &app,
            Method::POST,
            "/frameworks/compare",
            &a.token,
            Some(body.clone()),
        )
        .await;
        assert_eq!(res.status(), status, "{body}");
    }
    let res = app
        .client
        .post(app.url("/api/v1/frameworks/compare"))
        .bearer_auth(&a.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}

fn profile() -> Value {
    json!({
        "company_name": "Corner Bakery Ltd",
        "industry": "retail",
        "employee_count": 12,
        "data_sensitivity": "medium",
        "handles_personal_data": true,
        "processes_payment_cards": true
    })
}

#[tokio::test]
async fn recommendations_follow_the_business_profile() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let (status, problem) = get(&app, "/frameworks/recommendations", &a).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("PUT /business-profile")
    );
    let (status, _) = get(&app, "/business-profile", &a).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for (patch, field) in [
        (json!({"company_name": "X"}), "company_name"),
        (json!({"employee_count": 0}), "employee_count"),
        (json!({"country": "gbr"}), "country"),
        (json!({"industry": "mining"}), "industry"),
        (
            json!({"planned_frameworks": ["iso9001"]}),
            "planned_frameworks",
        ),
        (json!({"surprise": true}), "body"),
    ] {
        let mut body = profile();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let res = call(&app, Method::PUT, "/business-profile", &a.token, Some(body)).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{patch}");
        let problem: Value = res.json().await.unwrap();
        let text = problem.to_string();
        assert!(text.contains(field), "{patch}: {problem}");
    }
    let res = call(
        &app,
        Method::PUT,
        "/business-profile",
        &a.token,
        Some(profile()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = call(
        &app,
        Method::PUT,
        "/business-profile",
        &a.token,
        Some(profile()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (_, saved) = get(&app, "/business-profile", &a).await;
    assert_eq!(saved["company_name"], "Corner Bakery Ltd");
    assert_eq!(saved["country"], "GB");

    let (status, recs) = get(&app, "/frameworks/recommendations", &a).await;
    assert_eq!(status, StatusCode::OK);
    let recs = recs.as_array().unwrap().clone();
    assert_eq!(recs.len(), 8);
    let by = |slug: &str| {
        recs.iter()
            .find(|r| r["framework"]["slug"] == slug)
            .unwrap()
            .clone()
    };
    for slug in ["uk-gdpr", "pci-dss-4.0.1"] {
        let r = by(slug);
        assert_eq!(r["mandatory"], true, "{r}");
        assert_eq!(r["relevance_score"], 100);
    }
    assert!(recs[0]["mandatory"].as_bool().unwrap(), "mandatory first");
    let ce = by("cyber-essentials");
    assert!(ce["applicable"].as_bool().unwrap() && !ce["mandatory"].as_bool().unwrap());
    let nis2 = by("nis2");
    assert_eq!(nis2["applicable"], false);
    assert!(nis2["reasons"][0].as_str().unwrap().contains("EU"));

    // The original system's paths answer the same, by the profile's id.
    let id = saved["id"].as_str().unwrap().to_owned();
    let (status, listed) = get(&app, "/business-profiles", &a).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["id"], id.as_str());
    let (status, by_id) = get(&app, &format!("/business-profiles/{id}"), &a).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id["company_name"], "Corner Bakery Ltd");
    let mut renamed = profile();
    renamed["company_name"] = json!("Corner Bakery & Café Ltd");
    let res = call(
        &app,
        Method::PUT,
        &format!("/business-profiles/{id}"),
        &a.token,
        Some(renamed.clone()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = call(
        &app,
        Method::POST,
        "/business-profiles",
        &a.token,
        Some(renamed),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (status, _) = get(
        &app,
        "/business-profiles/0190d6a4-0000-7000-8000-000000000000",
        &a,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A viewer may read but not change the profile.
    let viewer = join(&app, &a, "vic@example.co.uk", "viewer").await;
    let (status, _) = get(&app, "/frameworks/recommendations", &viewer).await;
    assert_eq!(status, StatusCode::OK);
    let res = call(
        &app,
        Method::PUT,
        "/business-profile",
        &viewer.token,
        Some(profile()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Another organisation has no profile of its own.
    let b = owner(&app, "bob@example.co.uk", "Bob Ltd").await;
    let (status, _) = get(&app, "/business-profile", &b).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nor can it reach A's by id; A's owner can delete it (and the viewer cannot).
    let (status, _) = get(&app, &format!("/business-profiles/{id}"), &b).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let res = call(
        &app,
        Method::DELETE,
        &format!("/business-profiles/{id}"),
        &b.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = call(
        &app,
        Method::DELETE,
        &format!("/business-profiles/{id}"),
        &viewer.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = call(
        &app,
        Method::DELETE,
        &format!("/business-profiles/{id}"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (status, _) = get(&app, "/business-profile", &a).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

fn count_links(doc: &Value) -> usize {
    fn walk(v: &Value, n: &mut usize) {
        match v {
            Value::Object(map) => {
                if let Some(href) = map.get("href").and_then(Value::as_str)
                    && href.starts_with("urn:ruleiq:control:")
                {
                    *n += 1;
                }
                map.values().for_each(|x| walk(x, n));
            }
            Value::Array(items) => items.iter().for_each(|x| walk(x, n)),
            _ => {}
        }
    }
    let mut n = 0;
    walk(doc, &mut n);
    n
}

/// Every control in a catalog, depth first, as (label, number of parts).
fn controls_of(doc: &Value) -> Vec<(String, usize, Value)> {
    fn walk(v: &Value, out: &mut Vec<(String, usize, Value)>) {
        for c in v["controls"].as_array().into_iter().flatten() {
            let label = c["props"]
                .as_array()
                .and_then(|p| p.iter().find(|p| p["name"] == "label"))
                .map_or_else(
                    || c["id"].as_str().unwrap().to_owned(),
                    |p| p["value"].as_str().unwrap().to_owned(),
                );
            out.push((
                label,
                c["parts"].as_array().map_or(0, Vec::len),
                c["parts"].clone(),
            ));
            walk(c, out);
        }
        for g in v["groups"].as_array().into_iter().flatten() {
            walk(g, out);
        }
    }
    let mut out = Vec::new();
    walk(&doc["catalog"], &mut out);
    out
}

#[tokio::test]
async fn the_nist_catalog_imports_and_a_library_framework_survives_export_then_import() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let nist = std::fs::read(NIST_LOW).expect("the fixture is in tests/fixtures");
    let res = import(&app, &a, nist.clone()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/api/v1/frameworks/")
    );
    let f: Value = res.json().await.unwrap();
    assert_eq!(f["control_count"], 149);
    assert_eq!(f["source"], "oscal");
    let families: Vec<_> = f["domains"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["parent_ref"].is_null())
        .collect();
    assert_eq!(families.len(), 18);
    // Enhancements are nested under their control, with its label as ref.
    let (_, page) = get(
        &app,
        &format!(
            "/frameworks/{}/controls?limit=200",
            f["id"].as_str().unwrap()
        ),
        &a,
    )
    .await;
    let ac2 = find(&page["items"], "ref", "AC-2");
    assert!(
        ac2["description"]
            .as_str()
            .unwrap()
            .contains("[Assignment:"),
        "{ac2}"
    );
    assert!(!ac2["guidance"].as_str().unwrap().is_empty());
    let enhancement = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["parent_ref"] == "IA-2")
        .expect("an IA-2 enhancement");
    assert!(
        enhancement["ref"].as_str().unwrap().starts_with("IA-2("),
        "{enhancement}"
    );
    // The same catalog and version again is a conflict.
    let res = import(&app, &a, nist).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);

    // Export a library framework, import it back: every control, part and mapping.
    let res = call(
        &app,
        Method::GET,
        "/frameworks/iso27001-2022/export?format=oscal",
        &a.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("iso27001-2022")
    );
    let exported: Value = res.json().await.unwrap();
    let res = import(&app, &a, serde_json::to_vec(&exported).unwrap()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let copy: Value = res.json().await.unwrap();
    assert_eq!(copy["control_count"], 123);
    assert_ne!(
        copy["slug"], "iso27001-2022",
        "a library slug is never taken over"
    );
    let res = call(
        &app,
        Method::GET,
        &format!("/frameworks/{}/export", copy["id"].as_str().unwrap()),
        &a.token,
        None,
    )
    .await;
    let again: Value = res.json().await.unwrap();
    let (before, after) = (controls_of(&exported), controls_of(&again));
    assert_eq!(before.len(), 123);
    assert_eq!(before.len(), after.len());
    for (x, y) in before.iter().zip(&after) {
        assert_eq!(x.0, y.0);
        assert_eq!(x.1, y.1, "parts of {}", x.0);
        assert_eq!(x.2, y.2, "parts of {}", x.0);
    }
    assert_eq!(count_links(&exported), count_links(&again));
    assert!(count_links(&exported) > 300);
    // The imported copy's controls carry the mappings as data.
    let (_, copied) = get(
        &app,
        &format!(
            "/frameworks/{}/controls?q=A.8.5",
            copy["id"].as_str().unwrap()
        ),
        &a,
    )
    .await;
    let c = find(&copied["items"], "ref", "A.8.5");
    assert!(
        c["mappings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["framework_slug"] == "cyber-essentials")
    );
    assert!(!c["questions"].as_array().unwrap().is_empty());

    // Another organisation sees none of it.
    let b = owner(&app, "bob@example.co.uk", "Bob Ltd").await;
    let (status, _) = get(
        &app,
        &format!("/frameworks/{}", f["id"].as_str().unwrap()),
        &b,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(
        &app,
        &format!("/controls/{}", ac2["id"].as_str().unwrap()),
        &b,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = get(&app, "/frameworks", &b).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 8);
    let (_, hits) = get(&app, "/search?q=account%20management", &b).await;
    assert!(
        hits["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["framework_slug"] != f["slug"])
    );
    let (_, hits) = get(&app, "/search?q=account%20management", &a).await;
    assert!(
        hits["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["framework_slug"] == f["slug"])
    );
    let res = call(
        &app,
        Method::DELETE,
        &format!("/frameworks/{}", f["id"].as_str().unwrap()),
        &b.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = call(
        &app,
        Method::GET,
        &format!("/frameworks/{}/export", f["id"].as_str().unwrap()),
        &b.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Deleting an import removes it; the library cannot be deleted.
    let res = call(
        &app,
        Method::DELETE,
        "/frameworks/iso27001-2022",
        &a.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let res = call(
        &app,
        Method::DELETE,
        &format!("/frameworks/{}", f["id"].as_str().unwrap()),
        &a.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (status, _) = get(
        &app,
        &format!("/controls/{}", ac2["id"].as_str().unwrap()),
        &a,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn bad_catalogs_are_refused_with_the_path_of_the_problem() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let meta = json!({"title": "T", "last-modified": "2024-01-01T00:00:00Z", "version": "1", "oscal-version": "1.1.2"});
    let uuid = "74c8ba1e-5cd4-4ad1-bbfd-d888e2f6c724";
    for (doc, path) in [
        (
            json!({"catalog": {"uuid": uuid, "metadata": meta, "groups": [{"title": "G", "controls": [{"id": "c-1"}]}]}}),
            "$.catalog.groups[0].controls[0].title",
        ),
        (
            json!({"catalog": {"uuid": uuid, "metadata": meta, "controls": [{"id": "c-1", "title": "X", "controls": [{"id": "c-1", "title": "Y"}]}]}}),
            "$.catalog.controls[0].controls[0].id",
        ),
        (
            json!({"catalog": {"uuid": uuid, "metadata": meta, "controls": [{"id": "1bad", "title": "X"}]}}),
            "$.catalog.controls[0].id",
        ),
        (
            json!({"catalog": {"uuid": "not-a-uuid", "metadata": meta}}),
            "$.catalog.uuid",
        ),
        (
            json!({"catalog": {"uuid": uuid, "metadata": {"title": "T"}}}),
            "$.catalog.metadata.last-modified",
        ),
        (
            json!({"catalog": {"uuid": uuid, "metadata": meta}}),
            "$.catalog",
        ),
        (json!({"profile": {}}), "$.catalog"),
        (
            json!({"catalog": {"uuid": uuid, "metadata": {"title": "T".repeat(301), "last-modified": "x", "version": "1", "oscal-version": "1.1.2"}}}),
            "$.catalog.metadata.title",
        ),
        (
            json!({"catalog": {"uuid": uuid, "metadata": meta, "controls": [{"id": "c-1", "title": "X\u{0}"}]}}),
            "$",
        ),
        (json!([1, 2]), "$"),
    ] {
        let res = import(&app, &a, serde_json::to_vec(&doc).unwrap()).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{doc}");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], path, "{problem}");
    }
    // Group labels that clash after renaming still import (made unique), not a 500.
    let clash = json!({"catalog": {"uuid": uuid, "metadata": meta, "groups": [
        {"title": "One", "props": [{"name": "label", "value": "A-2"}], "controls": [{"id": "c-1", "title": "X"}]},
        {"title": "Two", "props": [{"name": "label", "value": "A"}], "controls": [{"id": "c-2", "title": "Y"}]},
        {"title": "Three", "props": [{"name": "label", "value": "A"}], "controls": [{"id": "c-3", "title": "Z"}]}
    ]}});
    let res = import(&app, &a, serde_json::to_vec(&clash).unwrap()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["domains"].as_array().unwrap().len(), 3);
    let res = call(
        &app,
        Method::DELETE,
        &format!("/frameworks/{}", body["id"].as_str().unwrap()),
        &a.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let res = import(&app, &a, b"{\"catalog\": ".to_vec()).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let res = app
        .client
        .post(app.url("/api/v1/frameworks/import"))
        .bearer_auth(&a.token)
        .header("content-type", "text/xml")
        .body("<catalog/>")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // 50 MB is refused from its declared length, before the body is read.
    let big = vec![b' '; 50 * 1024 * 1024];
    let res = import(&app, &a, big).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://ruleiq.dev/problems/payload-too-large"
    );

    let viewer = join(&app, &a, "vic@example.co.uk", "viewer").await;
    let res = import(&app, &viewer, br#"{}"#.to_vec()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (_, list) = get(&app, "/frameworks", &a).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        8,
        "nothing half-imported"
    );
    let res = call(
        &app,
        Method::GET,
        "/frameworks/uk-gdpr/export?format=pdf",
        &a.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

#[tokio::test]
async fn search_ranks_highlights_and_treats_syntax_as_text() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let (status, body) = get(&app, "/search?q=multi-factor%20authentication", &a).await;
    assert_eq!(status, StatusCode::OK);
    let items = body["items"].as_array().unwrap();
    assert!(items.len() >= 5, "{body}");
    assert!(items.iter().all(|i| i["kind"] == "control"));
    assert!(
        items[0]["snippet"].as_str().unwrap().contains("<mark>"),
        "{}",
        items[0]
    );
    let slugs: std::collections::HashSet<&str> = items
        .iter()
        .filter_map(|i| i["framework_slug"].as_str())
        .collect();
    assert!(slugs.len() >= 3, "results span frameworks: {slugs:?}");

    let (_, by_ref) = get(&app, "/search?q=A.8.13", &a).await;
    assert!(
        by_ref["items"][0]["title"]
            .as_str()
            .unwrap()
            .starts_with("A.8.13"),
        "{by_ref}"
    );

    for q in [
        "%27%3B%20DROP%20TABLE%20controls%3B%20--",
        "backup%25%20OR%201%3D1",
        "%22phrase%22%20AND%20(x%20OR%20y)*",
        "%5C%5C%25%25__",
        "%E2%80%94%20%C3%A9t%C3%A9",
    ] {
        let (status, body) = get(&app, &format!("/search?q={q}"), &a).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{q}: {status} {body}"
        );
    }
    for (q, field) in [
        ("", "q"),
        ("%21%21%21", "q"),
        ("x&kind=bogus", "kind"),
        ("x&limit=0", "limit"),
    ] {
        let (status, problem) = get(&app, &format!("/search?q={q}"), &a).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
        assert_eq!(problem["errors"][0]["field"], field);
    }
    let long = "a".repeat(201);
    let (status, _) = get(&app, &format!("/search?q={long}"), &a).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

#[tokio::test]
async fn reseeding_changed_content_updates_in_place_and_keeps_ids() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    // An operator's import into the shared library (`ruleiq frameworks import`).
    let basic = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/oscal/basic-catalog.json"
    ))
    .unwrap();
    let shared = ruleiq_services::frameworks::oscal::import(
        &app.components.db,
        None,
        &basic,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let (_, before) = get(&app, "/frameworks/nis2/controls?limit=200", &a).await;
    let first = before["items"][0].clone();
    let dropped = before["items"][1].clone();

    let mut files = content::embedded_files();
    let nis2 = files
        .iter_mut()
        .find(|f| f.path.ends_with("nis2.yaml"))
        .unwrap();
    let mut def: Value = serde_json::to_value(serde_yaml_value(&nis2.text)).unwrap();
    let first_ref = first["ref"].as_str().unwrap();
    let dropped_ref = dropped["ref"].as_str().unwrap();
    def["content_version"] = json!(2);
    let controls = def["controls"].as_array_mut().unwrap();
    controls.retain(|c| c["ref"] != dropped_ref);
    for c in controls.iter_mut() {
        if c["ref"] == first_ref {
            c["guidance"] = json!("Revised guidance written for this test.");
        }
    }
    nis2.text = serde_json::to_string(&def).unwrap(); // JSON is YAML too.
    // Shared questions and mappings that name the dropped control must drop it as well.
    for f in files
        .iter_mut()
        .filter(|f| !f.path.contains("/frameworks/"))
    {
        let mut doc = serde_yaml_value(&f.text);
        scrub(&mut doc, dropped_ref);
        f.text = serde_json::to_string(&doc).unwrap();
    }
    let changed = content::load(&files).unwrap_or_else(|e| panic!("{e}"));
    let report = library::load(&app.components.db, &changed, chrono::Utc::now())
        .await
        .unwrap();
    assert!(report.changed);
    let again = library::load(&app.components.db, &changed, chrono::Utc::now())
        .await
        .unwrap();
    assert!(!again.changed, "an unchanged revision is not rewritten");

    let (_, after) = get(&app, "/frameworks/nis2", &a).await;
    assert_eq!(after["content_version"], 2);
    assert_eq!(
        after["control_count"].as_i64().unwrap(),
        before["items"].as_array().unwrap().len() as i64 - 1
    );
    let (status, kept) = get(
        &app,
        &format!("/controls/{}", first["id"].as_str().unwrap()),
        &a,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "same id after the update");
    assert_eq!(kept["guidance"], "Revised guidance written for this test.");
    let (status, _) = get(
        &app,
        &format!("/controls/{}", dropped["id"].as_str().unwrap()),
        &a,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "retired controls are not listed"
    );
    // The operator's import is untouched by the content update, and an organisation
    // cannot delete it.
    let (_, hits) = get(&app, "/search?q=security&limit=50", &a).await;
    assert!(
        hits["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["framework_slug"] == shared.slug.as_str()),
        "{hits}"
    );
    let res = call(
        &app,
        Method::DELETE,
        &format!("/frameworks/{}", shared.slug),
        &a.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    app.stop().await;
}

fn serde_yaml_value(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

/// Removes every mention of a NIS2 control from a question bank or mapping document.
fn scrub(doc: &mut Value, reference: &str) {
    if let Some(questions) = doc.get_mut("questions").and_then(Value::as_array_mut) {
        for q in questions.iter_mut() {
            if let Some(list) = q["controls"].get_mut("nis2").and_then(Value::as_array_mut) {
                list.retain(|r| r != reference);
            }
        }
    }
    if doc.get("source") == Some(&json!("nis2"))
        && let Some(list) = doc.get_mut("mappings").and_then(Value::as_array_mut)
    {
        list.retain(|m| m["source"] != reference);
    }
}

#[tokio::test]
async fn two_instances_on_one_database_search_the_same_index() {
    let a_app = TestApp::spawn().await;
    let url = a_app.db.url.clone();
    let b_app =
        TestApp::spawn_with(move |raw| raw.database_url = Some(ruleiq_test_support::text(&url)))
            .await;
    let owner_a = owner(&a_app, "ann@example.co.uk", "Ann Ltd").await;
    let basic = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/oscal/basic-catalog.json"
    ))
    .unwrap();
    let res = import(&a_app, &owner_a, basic).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let imported: Value = res.json().await.unwrap();
    let slug = imported["slug"].as_str().unwrap().to_owned();
    let hits = |body: &Value| {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["framework_slug"] == slug.as_str())
            .count()
    };
    // The other instance finds what the first one indexed, with the same token.
    let (status, on_b) = get(&b_app, "/search?q=security&limit=50", &owner_a).await;
    assert_eq!(status, StatusCode::OK);
    assert!(hits(&on_b) > 0, "{on_b}");
    // A has read (and remembered) the catalogue's revision too.
    let (_, on_a) = get(&a_app, "/search?q=security&limit=50", &owner_a).await;
    assert!(hits(&on_a) > 0);
    let res = call(
        &b_app,
        Method::DELETE,
        &format!("/frameworks/{slug}"),
        &owner_a.token,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Gone on A as soon as A hears of it: at once on PostgreSQL (NOTIFY), within a
    // second on SQLite (one instance is the supported setup; this bounds a second).
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_millis(if ruleiq_test_support::backend() == "postgres" {
            500
        } else {
            1_500
        });
    loop {
        let (_, on_a) = get(&a_app, "/search?q=security&limit=50", &owner_a).await;
        let (_, listed) = get(&a_app, "/frameworks", &owner_a).await;
        let still_listed = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["slug"] == slug.as_str());
        if hits(&on_a) == 0 && !still_listed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deleted on B, still on A"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    b_app.stop().await;
    a_app.stop().await;
}
