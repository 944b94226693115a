//! Plans and the dashboard over HTTP: gaps become tasks ordered and dated by
//! priority with the content's effort, targets are honoured or said to be missed,
//! tasks change under audit; the dashboard and the daily snapshot read it all back.

use reqwest::{Method, StatusCode};
use ruleiq_test_support::TestApp;
use serde_json::{Value, json};

use crate::{
    assessments::send,
    members::{Member, call, join, owner},
};

/// A completed Cyber Essentials assessment: the first question `yes`, the second
/// `partial`, the rest unanswered (so `unknown`). Returns its id and results.
async fn completed(app: &TestApp, m: &Member) -> (String, Value) {
    let (status, a) = send(
        app,
        Method::POST,
        "/assessments",
        &m.token,
        Some(json!({"framework_id": "cyber-essentials"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let id = a["id"].as_str().unwrap().to_owned();
    let (_, qs) = send(
        app,
        Method::GET,
        &format!("/assessments/{id}/questions"),
        &m.token,
        None,
    )
    .await;
    for (i, response) in ["yes", "partial"].iter().enumerate() {
        let q = qs["items"][i]["id"].as_str().unwrap();
        let (status, _) = send(
            app,
            Method::PUT,
            &format!("/assessments/{id}/answers/{q}"),
            &m.token,
            Some(json!({ "response": response })),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, results) = send(
        app,
        Method::POST,
        &format!("/assessments/{id}/complete"),
        &m.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    (id, results)
}

fn rank(priority: &str) -> u8 {
    match priority {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        "low" => 3,
        other => panic!("unknown priority {other}"),
    }
}

#[tokio::test]
async fn gaps_become_a_dated_plan_whose_tasks_change_under_audit() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let colleague = join(&app, &a, "cat@example.co.uk", "compliance_manager").await;
    let (id, results) = completed(&app, &a).await;
    let gaps = results["gaps"].as_array().unwrap();
    assert!(gaps.len() > 30, "most of CE is unanswered: {}", gaps.len());

    // 2026-11-30 is a Monday.
    let (status, plan) = send(
        &app,
        Method::POST,
        "/plans",
        &a.token,
        Some(json!({"assessment_id": id, "start_date": "2026-11-30"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{plan}");
    assert_eq!(plan["framework"]["slug"], "cyber-essentials");
    assert_eq!(plan["status"], "active");
    assert_eq!(plan["target_met"], true);
    let tasks = plan["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), gaps.len(), "one task per gap");
    // Ordered by priority, dated in order, never before the start or on a weekend.
    for pair in tasks.windows(2) {
        let (x, y) = (&pair[0], &pair[1]);
        assert!(rank(x["priority"].as_str().unwrap()) <= rank(y["priority"].as_str().unwrap()));
        assert!(x["due_date"].as_str().unwrap() <= y["due_date"].as_str().unwrap());
    }
    assert!(tasks[0]["due_date"].as_str().unwrap() >= "2026-11-30");
    for t in tasks {
        let day =
            chrono::NaiveDate::parse_from_str(t["due_date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
        assert!(
            chrono::Datelike::weekday(&day).num_days_from_monday() < 5,
            "{t}"
        );
        assert_eq!(t["status"], "todo");
        assert!(t["assignee_id"].is_null());
        assert!(!t["description"].as_str().unwrap().is_empty());
    }
    // Effort comes from the content: not one figure for every control, and halved for
    // the control answered `partial`.
    let efforts: std::collections::BTreeSet<String> =
        tasks.iter().map(|t| t["effort_days"].to_string()).collect();
    assert!(efforts.len() > 2, "{efforts:?}");
    let total: f64 = tasks
        .iter()
        .map(|t| t["effort_days"].as_f64().unwrap())
        .sum();
    assert_eq!(
        plan["projected_end_date"],
        tasks.last().unwrap()["due_date"]
    );
    assert!(
        plan["schedule_note"]
            .as_str()
            .unwrap()
            .contains(&format!("{total} person-days")),
        "{plan}"
    );

    // A target too close to meet is said plainly, and the plan is still made.
    let (status, tight) = send(
        &app,
        Method::POST,
        "/plans",
        &a.token,
        Some(json!({"assessment_id": id, "start_date": "2026-11-30", "target_date": "2026-12-02"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(tight["target_met"], false);
    assert!(
        tight["schedule_note"]
            .as_str()
            .unwrap()
            .contains("cannot be met")
    );
    // A generous one is met, at one person's pace.
    let (_, easy) = send(
        &app,
        Method::POST,
        "/plans",
        &a.token,
        Some(json!({"assessment_id": id, "start_date": "2026-11-30", "target_date": "2028-12-31"})),
    )
    .await;
    assert_eq!(easy["target_met"], true);
    assert_eq!(easy["projected_end_date"], plan["projected_end_date"]);

    // Read before any task changes, so the list below is read after one was kept.
    let (_, before) = send(&app, Method::GET, "/plans", &a.token, None).await;
    let listed = before["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == plan["id"])
        .unwrap();
    assert_eq!(listed["progress"]["done"], 0);

    // Change a task: assign, reschedule, note, mark done.
    let plan_id = plan["id"].as_str().unwrap();
    let task_id = tasks[0]["id"].as_str().unwrap();
    let path = format!("/plans/{plan_id}/tasks/{task_id}");
    let (status, t) = send(
        &app,
        Method::PATCH,
        &path,
        &a.token,
        Some(json!({"assignee_id": colleague.id, "due_date": "2027-01-15", "notes": "Book the firewall review"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["assignee_id"], colleague.id.as_str());
    assert_eq!(t["due_date"], "2027-01-15");
    assert_eq!(t["notes"], "Book the firewall review");
    let (_, t) = send(
        &app,
        Method::PATCH,
        &path,
        &colleague.token,
        Some(json!({"status": "done"})),
    )
    .await;
    assert_eq!(t["status"], "done");
    assert!(t["completed_at"].is_string());
    let (_, t) = send(
        &app,
        Method::PATCH,
        &path,
        &a.token,
        Some(json!({"assignee_id": null, "notes": null})),
    )
    .await;
    assert!(t["assignee_id"].is_null() && t["notes"].is_null());
    assert_eq!(t["status"], "done", "absent fields stay as they were");

    // Read back: the list counts progress; the original system's path answers the same.
    let (_, list) = send(&app, Method::GET, "/plans", &a.token, None).await;
    let listed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == plan["id"])
        .unwrap();
    assert_eq!(listed["progress"]["done"], 1);
    assert_eq!(listed["progress"]["total"], tasks.len());
    let (status, compat) = send(
        &app,
        Method::GET,
        &format!("/implementation/plans/{plan_id}"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, direct) = send(
        &app,
        Method::GET,
        &format!("/plans/{plan_id}"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(compat, direct);
    let (_, compat_list) = send(&app, Method::GET, "/implementation/plans", &a.token, None).await;
    assert_eq!(compat_list, list);

    // Every change is in the audit trail, with what changed.
    let (_, audit) = send(&app, Method::GET, "/audit-log?limit=50", &a.token, None).await;
    let events: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{audit}"))
        .iter()
        .filter(|e| e["event"] == "plan_task.updated")
        .collect();
    assert_eq!(events.len(), 3, "{audit}");
    assert!(
        events
            .iter()
            .any(|e| e["details"]["changed"]["status"] == json!(["todo", "done"]))
    );
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "plan.created")
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_plans_and_task_changes_are_refused() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let b = owner(&app, "bob@example.co.uk", "Bob Ltd").await;
    let viewer = join(&app, &a, "vic@example.co.uk", "viewer").await;
    let (id, _) = completed(&app, &a).await;

    // An assessment still in progress has no results to plan from.
    let (_, open) = send(
        &app,
        Method::POST,
        "/assessments",
        &a.token,
        Some(json!({"framework_id": "nis2"})),
    )
    .await;
    let (status, p) = send(
        &app,
        Method::POST,
        "/plans",
        &a.token,
        Some(json!({"assessment_id": open["id"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{p}");
    // Another organisation's assessment does not exist for Bob.
    let (status, _) = send(
        &app,
        Method::POST,
        "/plans",
        &b.token,
        Some(json!({"assessment_id": id})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Malformed and out-of-range input.
    for body in [
        json!({"assessment_id": id, "target_date": "2026-11-01", "start_date": "2026-12-01"}),
        json!({"assessment_id": id, "start_date": "2026-13-01"}),
        json!({"assessment_id": id, "start_date": "1999-01-01"}),
        json!({"assessment_id": id, "target_date": "9999-12-31"}),
        json!({"assessment_id": "not-a-uuid"}),
        json!({"assessment_id": id, "surprise": true}),
        json!({}),
    ] {
        let (status, problem) =
            send(&app, Method::POST, "/plans", &a.token, Some(body.clone())).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
    }
    // A viewer may read but not plan.
    let (status, _) = send(
        &app,
        Method::POST,
        "/plans",
        &viewer.token,
        Some(json!({"assessment_id": id})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (_, plan) = send(
        &app,
        Method::POST,
        "/plans",
        &a.token,
        Some(json!({"assessment_id": id})),
    )
    .await;
    let plan_id = plan["id"].as_str().unwrap().to_owned();
    let task_id = plan["tasks"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/plans/{plan_id}/tasks/{task_id}");
    let (status, _) = send(
        &app,
        Method::GET,
        &format!("/plans/{plan_id}"),
        &viewer.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "viewers read plans");
    for body in [
        json!({"status": "finished"}),
        json!({"assignee_id": b.id}),
        json!({"due_date": "tomorrow"}),
        json!({"notes": "x".repeat(5_001)}),
        json!({"priority": "low"}),
        json!({}),
    ] {
        let (status, problem) =
            send(&app, Method::PATCH, &path, &a.token, Some(body.clone())).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
    }
    let (status, _) = send(
        &app,
        Method::PATCH,
        &path,
        &viewer.token,
        Some(json!({"status": "done"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Bob cannot see or touch Ann's plan, by any id.
    for path in [
        format!("/plans/{plan_id}"),
        format!("/implementation/plans/{plan_id}"),
        "/plans/nope".to_owned(),
    ] {
        let (status, _) = send(&app, Method::GET, &path, &b.token, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = send(
        &app,
        Method::PATCH,
        &path,
        &b.token,
        Some(json!({"status": "done"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &app,
        Method::PATCH,
        &format!("/plans/{plan_id}/tasks/{plan_id}"),
        &a.token,
        Some(json!({"status": "done"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a task id that is not a task of the plan"
    );
    let (_, bob_plans) = send(&app, Method::GET, "/plans", &b.token, None).await;
    assert_eq!(bob_plans["items"], json!([]));
    // Nothing was changed by any refused request.
    let (_, after) = send(
        &app,
        Method::GET,
        &format!("/plans/{plan_id}"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(after["tasks"][0], plan["tasks"][0]);
    app.stop().await;
}

#[tokio::test]
async fn the_dashboard_reads_readiness_gaps_tasks_and_activity() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let b = owner(&app, "bob@example.co.uk", "Bob Ltd").await;
    let viewer = join(&app, &a, "vic@example.co.uk", "viewer").await;

    let (_, empty) = send(&app, Method::GET, "/dashboard", &a.token, None).await;
    assert_eq!(empty["overall_score"], 0.0);
    assert_eq!(empty["frameworks"], json!([]));
    assert_eq!(empty["open_gaps"]["total"], 0);

    let (id, results) = completed(&app, &a).await;
    // Started in January, so the first tasks are overdue by now.
    let (_, plan) = send(
        &app,
        Method::POST,
        "/plans",
        &a.token,
        Some(json!({"assessment_id": id, "start_date": "2026-01-05"})),
    )
    .await;
    let first = &plan["tasks"][0];
    send(
        &app,
        Method::PATCH,
        &format!(
            "/plans/{}/tasks/{}",
            plan["id"].as_str().unwrap(),
            first["id"].as_str().unwrap()
        ),
        &a.token,
        Some(json!({"status": "done"})),
    )
    .await;

    let (status, d) = send(&app, Method::GET, "/dashboard", &a.token, None).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let gaps = results["gaps"].as_array().unwrap();
    assert_eq!(
        d["open_gaps"]["total"],
        gaps.len() - 1,
        "the done task closes its gap"
    );
    let by_severity: u64 = ["critical", "high", "medium", "low"]
        .iter()
        .map(|s| d["open_gaps"][s].as_u64().unwrap())
        .sum();
    assert_eq!(by_severity, gaps.len() as u64 - 1);
    let f = &d["frameworks"][0];
    assert_eq!(f["framework"]["slug"], "cyber-essentials");
    // Readiness = 0.5 × score while evidence and policies are absent.
    let score = results["score"].as_f64().unwrap();
    assert!((f["readiness_score"].as_f64().unwrap() - (score * 5.0).round() / 10.0).abs() < 0.051);
    let trend = f["trend"].as_array().unwrap();
    assert_eq!(trend.last().unwrap()["day"], d["today"]);
    assert_eq!(
        trend.last().unwrap()["readiness_score"],
        f["readiness_score"]
    );
    // Overdue: open tasks due before today, soonest first; the done one is not among them.
    let overdue = d["overdue_tasks"]["items"].as_array().unwrap();
    assert!(d["overdue_tasks"]["count"].as_u64().unwrap() > 10);
    assert_eq!(overdue.len(), 10, "the first ten are listed");
    assert!(
        overdue
            .iter()
            .all(|t| t["status"] != "done" && t["due_date"].as_str() < d["today"].as_str())
    );
    assert!(overdue.iter().all(|t| t["id"] != first["id"]));
    // No evidence yet.
    assert_eq!(d["evidence_expiring_30d"], 0);
    assert_eq!(d["pending_approvals"], 0);
    // No AI used yet this month: nothing spent.
    assert_eq!(d["ai_spend_this_month_usd"], 0.0);
    // The owner sees the activity; a viewer (no audit access) sees the rest only.
    let events = d["recent_activity"].as_array().unwrap();
    assert_eq!(events[0]["event"], "plan_task.updated");
    let (status, v) = send(&app, Method::GET, "/dashboard", &viewer.token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["recent_activity"].is_null());
    assert_eq!(v["open_gaps"], d["open_gaps"]);
    // Nothing of Ann's reaches Bob.
    let (_, other) = send(&app, Method::GET, "/dashboard", &b.token, None).await;
    assert_eq!(other["frameworks"], json!([]));
    assert_eq!(other["overdue_tasks"]["count"], 0);
    // The dashboard is kept between reads, but a change made anywhere, here through a
    // service of its own as another instance would, shows at once.
    let second = &plan["tasks"][1];
    let elsewhere = ruleiq_services::plans::Plans::new(
        app.components.db.clone(),
        app.components.identity().unwrap().audit().clone(),
        app.components.clock.clone(),
    );
    let (_, me) = send(&app, Method::GET, "/auth/me", &a.token, None).await;
    let org: uuid::Uuid = me["organization"]["id"].as_str().unwrap().parse().unwrap();
    elsewhere
        .update_task(
            ruleiq_core::OrganizationId::from(org),
            ruleiq_core::UserId::from(uuid::Uuid::parse_str(&a.id).unwrap()),
            uuid::Uuid::parse_str(plan["id"].as_str().unwrap()).unwrap(),
            uuid::Uuid::parse_str(second["id"].as_str().unwrap()).unwrap(),
            ruleiq_services::plans::TaskChange {
                status: Some(ruleiq_services::plans::TaskStatus::Done),
                ..Default::default()
            },
            &ruleiq_services::audit::ClientInfo::default(),
        )
        .await
        .unwrap();
    let (_, after) = send(&app, Method::GET, "/dashboard", &a.token, None).await;
    assert_eq!(after["open_gaps"]["total"], gaps.len() - 2);
    // /compliance/status agrees with the dashboard.
    let (_, status_body) = send(&app, Method::GET, "/compliance/status", &a.token, None).await;
    assert_eq!(status_body["overall_score"], d["overall_score"]);
    let res = call(&app, Method::GET, "/dashboard", "not-a-token", None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn the_daily_snapshot_job_records_readiness_once_a_day() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let dashboard = ruleiq_services::dashboard::Dashboard::new(
        app.components.db.clone(),
        app.components.clock.clone(),
    );
    assert!(
        !dashboard.snapshot_due().await.unwrap(),
        "nothing assessed yet"
    );
    completed(&app, &a).await;
    assert!(dashboard.snapshot_due().await.unwrap());

    // Through the queue to the embedded worker, as the daily schedule sends it.
    let job = app
        .components
        .jobs
        .enqueue(ruleiq_jobs::kinds::READINESS_SNAPSHOT, json!({}), None, 3)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        let s = app.components.jobs.get(job).await.unwrap().unwrap();
        if matches!(s.status.as_str(), "succeeded" | "failed") {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "{s:?}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    assert_eq!(status.status, "succeeded", "{status:?}");
    let result = status.result.unwrap();
    assert_eq!(result["organizations"], 1);
    assert_eq!(result["frameworks"], 1);
    assert!(!dashboard.snapshot_due().await.unwrap());
    // A second run the same day replaces rather than duplicates.
    let again = dashboard.snapshot().await.unwrap();
    assert_eq!(again.frameworks, 1);
    use ruleiq_db::sea_orm::{EntityTrait, PaginatorTrait};
    let rows = ruleiq_db::entities::readiness_snapshot::Entity::find()
        .count(&app.components.db)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_gap_closed_in_an_older_round_is_open_again_when_found_again() {
    let app = TestApp::spawn().await;
    let a = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let (first, _) = completed(&app, &a).await;
    // The original system's path makes the plan.
    let (status, plan) = send(
        &app,
        Method::POST,
        "/implementation/plans",
        &a.token,
        Some(json!({ "assessment_id": first })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{plan}");
    let task = &plan["tasks"][0];
    let path = format!(
        "/plans/{}/tasks/{}",
        plan["id"].as_str().unwrap(),
        task["id"].as_str().unwrap()
    );
    send(
        &app,
        Method::PATCH,
        &path,
        &a.token,
        Some(json!({"status": "done"})),
    )
    .await;
    let (_, d) = send(&app, Method::GET, "/dashboard", &a.token, None).await;
    let closed = d["open_gaps"]["total"].as_u64().unwrap();

    // A second round answers the same (shared answers are pre-filled), so the control
    // is a gap again: the old plan's done task does not hide it.
    let (_, second) = completed(&app, &a).await;
    let (_, d) = send(&app, Method::GET, "/dashboard", &a.token, None).await;
    assert_eq!(
        d["open_gaps"]["total"].as_u64().unwrap(),
        second["gaps"].as_array().unwrap().len() as u64
    );
    assert_eq!(d["open_gaps"]["total"].as_u64().unwrap(), closed + 1);

    // Two people changing different fields from the same read both keep their change.
    use ruleiq_db::{entities::plan_task, repositories::plans as repo, sea_orm::EntityTrait};
    let id: uuid::Uuid = task["id"].as_str().unwrap().parse().unwrap();
    let read = plan_task::Entity::find_by_id(id)
        .one(&app.components.db)
        .await
        .unwrap()
        .unwrap();
    send(
        &app,
        Method::PATCH,
        &path,
        &a.token,
        Some(json!({"status": "blocked"})),
    )
    .await;
    let mut stale = read.clone();
    stale.notes = Some("Waiting for the supplier".into());
    repo::update_task(&app.components.db, &read, stale)
        .await
        .unwrap();
    let (_, now) = send(
        &app,
        Method::GET,
        &format!("/plans/{}", plan["id"].as_str().unwrap()),
        &a.token,
        None,
    )
    .await;
    assert_eq!(now["tasks"][0]["status"], "blocked", "{}", now["tasks"][0]);
    assert_eq!(now["tasks"][0]["notes"], "Waiting for the supplier");

    // Plans page through with a cursor.
    for _ in 0..2 {
        send(
            &app,
            Method::POST,
            "/plans",
            &a.token,
            Some(json!({ "assessment_id": first })),
        )
        .await;
    }
    let (_, page) = send(&app, Method::GET, "/plans?limit=2", &a.token, None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = send(
        &app,
        Method::GET,
        &format!("/plans?limit=2&cursor={cursor}"),
        &a.token,
        None,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    assert_ne!(rest["items"][0]["id"], page["items"][0]["id"]);
    for bad in [
        "/plans?limit=0",
        "/plans?limit=201",
        "/plans?cursor=nope",
        "/implementation/plans?limit=x",
    ] {
        let (status, _) = send(&app, Method::GET, bad, &a.token, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    app.stop().await;
}
