//! Assessments over HTTP: questions in order, answers saved one at a time, shared
//! answers pre-filled across frameworks, scoring on completion; and the bad input.

use reqwest::{Method, StatusCode};
use ruleiq_test_support::TestApp;
use serde_json::{Value, json};

use crate::members::{call, join, owner};

/// One API call as (status, JSON body, or null).
pub(crate) async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let res = call(app, method, path, token, body).await;
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn answer_prefill_complete_and_score() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let (status, ce) = send(
        &app,
        Method::POST,
        "/assessments",
        &a.token,
        Some(json!({"framework_id": "cyber-essentials"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ce}");
    assert_eq!(ce["status"], "in_progress");
    assert_eq!(ce["framework"]["slug"], "cyber-essentials");
    assert_eq!(ce["progress"]["answered"], 0);
    let ce_id = ce["id"].as_str().unwrap().to_owned();
    let (_, qs) = send(
        &app,
        Method::GET,
        &format!("/assessments/{ce_id}/questions"),
        &a.token,
        None,
    )
    .await;
    let items = qs["items"].as_array().unwrap().clone();
    assert_eq!(
        items.len() as i64,
        ce["progress"]["total"].as_i64().unwrap()
    );
    assert_eq!(items[0]["control_refs"][0], "SCOPE.1", "published order");
    assert!(items.iter().all(|q| q["answer"].is_null()));

    // One answer at a time; progress follows.
    let first = items[0]["id"].as_str().unwrap();
    let (status, saved) = send(
        &app,
        Method::PUT,
        &format!("/assessments/{ce_id}/answers/{first}"),
        &a.token,
        Some(json!({"response": "partial", "notes": "Laptops only"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["response"], "partial");
    let (status, saved) = send(
        &app,
        Method::PUT,
        &format!("/assessments/{ce_id}/answers/{first}"),
        &a.token,
        Some(json!({"response": "yes"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(saved["response"], "yes");
    let (_, now) = send(
        &app,
        Method::GET,
        &format!("/assessments/{ce_id}"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(now["progress"]["answered"], 1);

    // A shared question (MFA, say) answered here is pre-filled in an ISO assessment.
    let (_, iso_questions) = {
        let (_, iso) = send(
            &app,
            Method::POST,
            "/assessments",
            &a.token,
            Some(json!({"framework_id": "iso27001-2022", "name": "ISO readiness"})),
        )
        .await;
        let id = iso["id"].as_str().unwrap().to_owned();
        let q = send(
            &app,
            Method::GET,
            &format!("/assessments/{id}/questions"),
            &a.token,
            None,
        )
        .await;
        (id, q)
    };
    let iso_ids: Vec<&str> = iso_questions.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap())
        .collect();
    let shared = items
        .iter()
        .find(|q| iso_ids.contains(&q["id"].as_str().unwrap()))
        .expect("CE and ISO share questions");
    let shared_id = shared["id"].as_str().unwrap();
    let (status, _) = send(
        &app,
        Method::PUT,
        &format!("/assessments/{ce_id}/answers/{shared_id}"),
        &a.token,
        Some(json!({"response": "no"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, iso2) = send(
        &app,
        Method::POST,
        "/assessments",
        &a.token,
        Some(json!({"framework_id": "iso27001-2022"})),
    )
    .await;
    let iso2_id = iso2["id"].as_str().unwrap().to_owned();
    assert!(iso2["progress"]["answered"].as_i64().unwrap() >= 1);
    let (_, q2) = send(
        &app,
        Method::GET,
        &format!("/assessments/{iso2_id}/questions"),
        &a.token,
        None,
    )
    .await;
    let prefilled = q2["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["id"] == shared_id)
        .unwrap();
    assert_eq!(prefilled["answer"]["response"], "no");
    assert_eq!(prefilled["answer"]["prefilled_from"], ce_id.as_str());

    // Answer everything in CE "yes" and complete: 100, ready, no gaps.
    for q in &items {
        let id = q["id"].as_str().unwrap();
        let (status, _) = send(
            &app,
            Method::PUT,
            &format!("/assessments/{ce_id}/answers/{id}"),
            &a.token,
            Some(json!({"response": "yes"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, results) = send(
        &app,
        Method::POST,
        &format!("/assessments/{ce_id}/complete"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(results["score"], 100.0);
    assert_eq!(results["band"], "ready");
    assert!(results["gaps"].as_array().unwrap().is_empty());
    assert!(results["completed_at"].is_string());
    assert_eq!(results["by_domain"].as_array().unwrap().len(), 6);
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/assessments/{ce_id}/complete"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = send(
        &app,
        Method::PUT,
        &format!("/assessments/{ce_id}/answers/{first}"),
        &a.token,
        Some(json!({"response": "no"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a completed assessment takes no answers"
    );

    // The pre-filled ISO assessment, completed as it stands: unanswered count as
    // unknown, so it has gaps, most severe first, with recommendations.
    let (_, iso_results) = send(
        &app,
        Method::POST,
        &format!("/assessments/{iso2_id}/complete"),
        &a.token,
        None,
    )
    .await;
    let gaps = iso_results["gaps"].as_array().unwrap();
    assert!(iso_results["score"].as_f64().unwrap() < 10.0);
    assert_eq!(gaps[0]["severity"], "critical");
    assert!(
        gaps.iter()
            .all(|g| !g["recommendation"].as_str().unwrap().is_empty())
    );
    let (_, listed) = send(&app, Method::GET, "/assessments", &a.token, None).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);

    // Readiness: half the assessment score until evidence and policies exist.
    let (status, readiness) = send(&app, Method::GET, "/compliance/status", &a.token, None).await;
    assert_eq!(status, StatusCode::OK);
    let frameworks = readiness["frameworks"].as_array().unwrap();
    assert_eq!(frameworks.len(), 2, "{readiness}");
    let ce_status = frameworks
        .iter()
        .find(|f| f["framework"]["slug"] == "cyber-essentials")
        .unwrap();
    assert_eq!(ce_status["assessment_score"], 100.0);
    assert_eq!(ce_status["readiness_score"], 50.0);
    assert_eq!(ce_status["band"], "developing");
    assert_eq!(ce_status["evidence_coverage"], 0.0);
    app.stop().await;
}

#[tokio::test]
async fn the_original_systems_responses_path_saves_answers() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let (_, st) = send(&app, Method::GET, "/compliance/status", &a.token, None).await;
    assert_eq!(st["overall_score"], 0.0);
    let (_, nis2) = send(
        &app,
        Method::POST,
        "/assessments",
        &a.token,
        Some(json!({"framework_id": "nis2"})),
    )
    .await;
    let id = nis2["id"].as_str().unwrap().to_owned();
    let (_, qs) = send(
        &app,
        Method::GET,
        &format!("/assessments/{id}/questions"),
        &a.token,
        None,
    )
    .await;
    let q: Vec<String> = qs["items"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|q| q["id"].as_str().unwrap().to_owned())
        .collect();
    let path = format!("/assessments/{id}/responses");
    let (status, one) = send(
        &app,
        Method::POST,
        &path,
        &a.token,
        Some(json!({"question_id": q[0], "answer": "yes"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["items"][0]["response"], "yes");
    let (status, many) = send(
        &app,
        Method::POST,
        &path,
        &a.token,
        Some(json!({"answers": [
            {"question_id": q[1], "response": "no", "notes": "not yet"},
            {"question_id": q[2], "response": "partial"}
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(many["items"].as_array().unwrap().len(), 2);
    let (_, now) = send(
        &app,
        Method::GET,
        &format!("/assessments/{id}"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(now["progress"]["answered"], 3);
    for body in [
        json!({"question_id": q[0]}),
        json!({"answers": []}),
        json!({"question_id": q[0], "response": "maybe"}),
    ] {
        let (status, _) = send(&app, Method::POST, &path, &a.token, Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_answers_and_other_organisations_are_refused() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let b = owner(&app, "bob@example.co.uk", "Bob Ltd").await;
    let (_, ce) = send(
        &app,
        Method::POST,
        "/assessments",
        &a.token,
        Some(json!({"framework_id": "cyber-essentials"})),
    )
    .await;
    let id = ce["id"].as_str().unwrap().to_owned();
    let (_, qs) = send(
        &app,
        Method::GET,
        &format!("/assessments/{id}/questions"),
        &a.token,
        None,
    )
    .await;
    let q = qs["items"][0]["id"].as_str().unwrap().to_owned();
    let answer = |body: Value| {
        let (app, token, id, q) = (&app, a.token.clone(), id.clone(), q.clone());
        async move {
            send(
                app,
                Method::PUT,
                &format!("/assessments/{id}/answers/{q}"),
                &token,
                Some(body),
            )
            .await
        }
    };
    for body in [
        json!({"response": "maybe"}),
        json!({"response": "yes", "notes": "x".repeat(5_001)}),
        json!({"response": "yes", "evidence_ids": ["0190d6a4-0000-7000-8000-000000000000"]}),
        json!({"response": "yes", "surprise": 1}),
        json!({}),
    ] {
        let (status, problem) = answer(body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
    }
    // A question of another framework (a NIS2-only one) is not in this assessment.
    let (_, nis2) = send(
        &app,
        Method::POST,
        "/assessments",
        &a.token,
        Some(json!({"framework_id": "nis2"})),
    )
    .await;
    let (_, nq) = send(
        &app,
        Method::GET,
        &format!("/assessments/{}/questions", nis2["id"].as_str().unwrap()),
        &a.token,
        None,
    )
    .await;
    let ce_ids: Vec<&str> = qs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap())
        .collect();
    let foreign = nq["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| !ce_ids.contains(&q["id"].as_str().unwrap()))
        .unwrap();
    let (status, _) = send(
        &app,
        Method::PUT,
        &format!(
            "/assessments/{id}/answers/{}",
            foreign["id"].as_str().unwrap()
        ),
        &a.token,
        Some(json!({"response": "yes"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &app,
        Method::PUT,
        &format!("/assessments/{id}/answers/not-a-uuid"),
        &a.token,
        Some(json!({"response": "yes"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Another organisation sees and changes nothing.
    for (method, path, body) in [
        (Method::GET, format!("/assessments/{id}"), None),
        (Method::GET, format!("/assessments/{id}/questions"), None),
        (Method::GET, format!("/assessments/{id}/results"), None),
        (
            Method::PUT,
            format!("/assessments/{id}/answers/{q}"),
            Some(json!({"response": "no"})),
        ),
        (Method::POST, format!("/assessments/{id}/complete"), None),
    ] {
        let (status, _) = send(&app, method.clone(), &path, &b.token, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (_, listed) = send(&app, Method::GET, "/assessments", &b.token, None).await;
    assert!(listed["items"].as_array().unwrap().is_empty());
    let (_, still) = send(
        &app,
        Method::GET,
        &format!("/assessments/{id}"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(still["status"], "in_progress");
    // Unknown framework, bad name, and a viewer cannot start or answer.
    let (status, _) = send(
        &app,
        Method::POST,
        "/assessments",
        &a.token,
        Some(json!({"framework_id": "nope"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &app,
        Method::POST,
        "/assessments",
        &a.token,
        Some(json!({"framework_id": "nis2", "name": " "})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let viewer = join(&app, &a, "vic@example.co.uk", "viewer").await;
    let (status, _) = send(
        &app,
        Method::POST,
        "/assessments",
        &viewer.token,
        Some(json!({"framework_id": "nis2"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(
        &app,
        Method::GET,
        &format!("/assessments/{id}/results"),
        &viewer.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "viewers read results as they stand");
    app.stop().await;
}
