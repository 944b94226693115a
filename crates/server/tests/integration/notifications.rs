//! Notifications end to end: each producer (the daily sweep's expiring evidence and
//! due and overdue tasks, approvals of policies and evidence, ready reports, the weekly
//! digest) through the real services and database, read back over the API; e-mail
//! following each member's preferences into the outbox; the bell and the pages
//! without JavaScript; and the bad input.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode, redirect::Policy};
use ruleiq_core::OrganizationId;
use ruleiq_db::{
    entities::{job_run, mail_outbox},
    sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder},
};
use ruleiq_test_support::TestApp;
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

use crate::{
    assessments::send,
    members::{Member, PASSWORD, call, join, owner},
    policies::generate,
};

/// A fresh server with its start-up notification jobs done: every server queues the
/// sweep (and on Mondays the digest) as it starts, and a test that sweeps itself must
/// not race that run.
pub(crate) async fn spawn() -> TestApp {
    let app = TestApp::spawn().await;
    let monday = chrono::Datelike::weekday(&Utc::now()) == chrono::Weekday::Mon;
    let kinds: &[&str] = if monday {
        &["notifications_sweep", "notifications_digest"]
    } else {
        &["notifications_sweep"]
    };
    for _ in 0..600 {
        let done = job_run::Entity::find()
            .filter(job_run::Column::Kind.is_in(kinds.iter().copied()))
            .filter(job_run::Column::Status.eq("succeeded"))
            .all(&app.components.db)
            .await
            .unwrap();
        if kinds.iter().all(|k| done.iter().any(|j| j.kind == *k)) {
            return app;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the start-up notification jobs never finished");
}

/// The caller's notices (first page of 100).
async fn notices(app: &TestApp, m: &Member) -> Value {
    let (status, page) = send(
        app,
        Method::GET,
        "/notifications?per_page=100",
        &m.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

fn of_kind<'a>(page: &'a Value, kind: &str) -> Vec<&'a Value> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == kind)
        .collect()
}

/// Every outbox message, oldest first: (recipients, subject, body).
async fn outbox(app: &TestApp) -> Vec<(Vec<String>, String, String)> {
    mail_outbox::Entity::find()
        .order_by_asc(mail_outbox::Column::Id)
        .all(&app.components.db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| {
            (
                serde_json::from_value(m.recipients).unwrap(),
                m.subject,
                m.body.unwrap_or_default(),
            )
        })
        .collect()
}

/// The notification e-mails to `email` (invitations also pass through the outbox).
async fn mail_to(app: &TestApp, email: &str) -> Vec<(String, String)> {
    outbox(app)
        .await
        .into_iter()
        .filter(|(to, s, _)| to.iter().any(|t| t.contains(email)) && s.starts_with("ruleIQ: "))
        .map(|(_, s, b)| (s, b))
        .collect()
}

async fn organisation_of(app: &TestApp, m: &Member) -> OrganizationId {
    let (_, me) = send(app, Method::GET, "/auth/me", &m.token, None).await;
    let id = me["organization"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{me}"));
    OrganizationId::from(Uuid::parse_str(id).unwrap())
}

fn uuid(m: &Member) -> Uuid {
    Uuid::parse_str(&m.id).unwrap()
}

async fn set_preferences(app: &TestApp, m: &Member, prefs: Value) -> Value {
    let (status, body) = send(
        app,
        Method::PUT,
        "/notifications/preferences",
        &m.token,
        Some(json!({ "preferences": prefs })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn expiring_evidence_is_told_to_its_author_at_30_and_7_days_once() {
    let app = spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let bob = join(&app, &ann, "bob@example.co.uk", "admin").await;
    let now = Utc::now();
    let create = |title: &str, days: i64| {
        json!({
            "title": title,
            "url": "https://intranet.example/cert",
            "evidence_type": "certificate",
            "expires_at": (now + Duration::days(days)).to_rfc3339(),
        })
    };
    let (status, soon) = send(
        &app,
        Method::POST,
        "/evidence",
        &ann.token,
        Some(create("Fire safety certificate", 5)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{soon}");
    let soon_id = soon["id"].as_str().unwrap().to_owned();
    // Within 30 days but not 7: one notice. Beyond 30: none.
    for (title, days) in [("Insurance schedule", 20), ("Lease", 90)] {
        let (status, body) = send(
            &app,
            Method::POST,
            "/evidence",
            &ann.token,
            Some(create(title, days)),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let n = &app.components.notifications;
    let first = n.sweep(Utc::now()).await.unwrap();
    assert_eq!(first.evidence_expiring.stored, 3, "{first:?}");
    assert_eq!(first.evidence_expiring.emailed, 3, "{first:?}");

    let page = notices(&app, &ann).await;
    let expiring = of_kind(&page, "evidence_expiring");
    assert_eq!(expiring.len(), 3, "{page}");
    let fire: Vec<_> = expiring
        .iter()
        .filter(|e| e["subject_id"] == soon_id.as_str())
        .collect();
    assert_eq!(fire.len(), 2, "30 and 7 days: {page}");
    let titles: Vec<&str> = fire.iter().map(|e| e["title"].as_str().unwrap()).collect();
    assert!(
        titles.iter().any(|t| t.contains("within 30 days")),
        "{titles:?}"
    );
    assert!(
        titles.iter().any(|t| t.contains("within 7 days")),
        "{titles:?}"
    );
    for e in &fire {
        assert_eq!(e["link"], format!("/evidence/{soon_id}"));
        assert_eq!(e["read"], false);
        assert!(e["body"].as_str().unwrap().contains("in 5 days"), "{e}");
        assert!(e["emailed_at"].is_string(), "{e}");
    }
    assert!(
        !expiring
            .iter()
            .any(|e| e["title"].as_str().unwrap().contains("Lease")),
        "{page}"
    );
    assert_eq!(page["unread"], 3);
    // The author heard of it; the admin, with nothing of theirs expiring, did not.
    assert_eq!(notices(&app, &bob).await["total"], 0);
    let mails = mail_to(&app, "ann@example.co.uk").await;
    assert_eq!(mails.len(), 3, "{mails:?}");
    assert!(
        mails
            .iter()
            .any(|(s, b)| s.contains("Fire safety certificate") && b.contains(&soon_id)),
        "{mails:?}"
    );

    // Again, twice: nothing new, in the app or by e-mail.
    for _ in 0..2 {
        let again = n.sweep(Utc::now()).await.unwrap();
        assert_eq!(again.evidence_expiring.stored, 0, "{again:?}");
        assert_eq!(again.evidence_expiring.duplicates, 3, "{again:?}");
    }
    assert_eq!(notices(&app, &ann).await["total"], 3);
    assert_eq!(mail_to(&app, "ann@example.co.uk").await.len(), 3);
}

/// A plan from an empty Cyber Essentials assessment; its tasks.
async fn plan_tasks(app: &TestApp, m: &Member) -> (String, Vec<Value>) {
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
    let (status, plan) = send(
        app,
        Method::POST,
        "/plans",
        &m.token,
        Some(json!({"assessment_id": id})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{plan}");
    let plan_id = plan["id"].as_str().unwrap().to_owned();
    let tasks = plan["tasks"].as_array().cloned().unwrap_or_else(|| {
        panic!("a plan lists its tasks: {plan}");
    });
    (plan_id, tasks)
}

#[tokio::test]
async fn due_and_overdue_tasks_reach_their_assignee_once_per_due_date() {
    let app = spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let cy = join(&app, &ann, "cy@example.co.uk", "contributor").await;
    let (plan_id, tasks) = plan_tasks(&app, &ann).await;
    assert!(tasks.len() >= 2, "{tasks:?}");
    let today = Utc::now().date_naive();
    let late = tasks[0]["id"].as_str().unwrap().to_owned();
    let due = tasks[1]["id"].as_str().unwrap().to_owned();
    for (task, date) in [
        (&late, today - chrono::Days::new(3)),
        (&due, today + chrono::Days::new(1)),
    ] {
        let (status, t) = send(
            &app,
            Method::PATCH,
            &format!("/plans/{plan_id}/tasks/{task}"),
            &ann.token,
            Some(json!({"assignee_id": cy.id, "due_date": date.to_string()})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{t}");
    }

    let n = &app.components.notifications;
    let r = n.sweep(Utc::now()).await.unwrap();
    assert_eq!(r.task_overdue.stored, 1, "{r:?}");
    assert_eq!(r.task_due.stored, 1, "{r:?}");
    // By default an overdue task is mailed and a task due is not.
    assert_eq!(r.task_overdue.emailed, 1, "{r:?}");
    assert_eq!(r.task_due.emailed, 0, "{r:?}");
    let page = notices(&app, &cy).await;
    let overdue = of_kind(&page, "task_overdue");
    assert_eq!(overdue.len(), 1, "{page}");
    assert_eq!(overdue[0]["subject_id"], late.as_str());
    assert_eq!(overdue[0]["link"], format!("/plans/{plan_id}"));
    assert!(
        overdue[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("Overdue: ")
    );
    let due_soon = of_kind(&page, "task_due");
    assert_eq!(due_soon.len(), 1, "{page}");
    assert!(
        due_soon[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("Due tomorrow: "),
        "{page}"
    );
    assert!(due_soon[0]["emailed_at"].is_null());
    let mails = mail_to(&app, "cy@example.co.uk").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].0.contains("Overdue"), "{mails:?}");
    // Unassigned tasks are nobody's notice.
    assert_eq!(notices(&app, &ann).await["total"], 0);

    // The next day's sweep does not repeat the overdue notice.
    let r = n.sweep(Utc::now() + Duration::days(1)).await.unwrap();
    assert_eq!(r.task_overdue.stored, 0, "once per task: {r:?}");
    // The task due tomorrow is now due today: same due date, so not told again; the
    // day after it is overdue: told once.
    assert_eq!(r.task_due.stored, 0, "{r:?}");
    let r = n.sweep(Utc::now() + Duration::days(2)).await.unwrap();
    assert_eq!(r.task_overdue.stored, 1, "{r:?}");
    // Done tasks are left alone, and moving a date re-arms.
    let (status, _) = send(
        &app,
        Method::PATCH,
        &format!("/plans/{plan_id}/tasks/{late}"),
        &ann.token,
        Some(json!({"status": "done"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(
        &app,
        Method::PATCH,
        &format!("/plans/{plan_id}/tasks/{due}"),
        &ann.token,
        Some(json!({"due_date": (today - chrono::Days::new(1)).to_string()})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let r = n.sweep(Utc::now()).await.unwrap();
    assert_eq!(r.task_overdue.stored, 1, "re-armed by the new date: {r:?}");
    assert_eq!(of_kind(&notices(&app, &cy).await, "task_overdue").len(), 3);
}

#[tokio::test]
async fn submissions_tell_approvers_and_decisions_tell_authors() {
    let app = spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let bob = join(&app, &ann, "bob@example.co.uk", "compliance_manager").await;
    let cy = join(&app, &ann, "cy@example.co.uk", "contributor").await;
    let vic = join(&app, &ann, "vic@example.co.uk", "viewer").await;

    // A policy: Ann writes and submits it; Bob may approve; Cy and Vic may not.
    let p = generate(&app, &ann, "access_control").await;
    let id = p["id"].as_str().unwrap().to_owned();
    let (status, body) = send(
        &app,
        Method::POST,
        &format!("/policies/{id}/submit"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let requested = of_kind(&notices(&app, &bob).await, "approval_requested")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(requested.len(), 1, "{requested:?}");
    assert_eq!(requested[0]["link"], format!("/policies/{id}"));
    assert_eq!(requested[0]["subject_id"], id.as_str());
    assert!(
        requested[0]["body"]
            .as_str()
            .unwrap()
            .contains("Owner submitted"),
        "{requested:?}"
    );
    for m in [&ann, &cy, &vic] {
        assert_eq!(
            notices(&app, m).await["total"],
            0,
            "only approvers are asked"
        );
    }
    assert_eq!(mail_to(&app, "bob@example.co.uk").await.len(), 1);

    let (status, body) = send(
        &app,
        Method::POST,
        &format!("/policies/{id}/approve"),
        &bob.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = notices(&app, &ann).await;
    let decided = of_kind(&page, "approval_decided");
    assert_eq!(decided.len(), 1, "{page}");
    assert!(
        decided[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("Approved: ")
    );
    assert!(
        decided[0]["body"]
            .as_str()
            .unwrap()
            .contains("New Member approved the policy"),
        "{page}"
    );
    // The approver is not told of their own decision.
    assert_eq!(
        of_kind(&notices(&app, &bob).await, "approval_decided").len(),
        0
    );

    // Returned from review to draft by an approver: the author hears; each new round
    // of review asks again; the author withdrawing it tells nobody.
    let p2 = generate(&app, &ann, "acceptable_use").await;
    let id2 = p2["id"].as_str().unwrap().to_owned();
    let to = |status: &'static str| json!({ "status": status });
    let path = format!("/policies/{id2}/status");
    let (status, body) = send(
        &app,
        Method::PATCH,
        &path,
        &ann.token,
        Some(to("in_review")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(&app, Method::PATCH, &path, &bob.token, Some(to("draft"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = notices(&app, &ann).await;
    let returned: Vec<_> = of_kind(&page, "approval_decided")
        .into_iter()
        .filter(|n| n["subject_id"] == id2.as_str())
        .collect();
    assert_eq!(returned.len(), 1, "{page}");
    assert!(
        returned[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("Returned to draft: "),
        "{page}"
    );
    let (status, _) = send(
        &app,
        Method::PATCH,
        &path,
        &ann.token,
        Some(to("in_review")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&app, Method::PATCH, &path, &ann.token, Some(to("draft"))).await;
    assert_eq!(status, StatusCode::OK);
    let asked = of_kind(&notices(&app, &bob).await, "approval_requested")
        .into_iter()
        .filter(|n| n["subject_id"] == id2.as_str())
        .count();
    assert_eq!(asked, 2, "one per round of review");
    assert_eq!(
        of_kind(&notices(&app, &ann).await, "approval_decided").len(),
        2
    );

    // Evidence: Cy submits; Ann and Bob may approve; Bob rejects with a reason.
    let (status, item) = send(
        &app,
        Method::POST,
        "/evidence",
        &cy.token,
        Some(json!({
            "title": "Firewall rule review",
            "url": "https://intranet.example/firewall",
            "evidence_type": "configuration",
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    let eid = item["id"].as_str().unwrap().to_owned();
    let (status, body) = send(
        &app,
        Method::POST,
        &format!("/evidence/{eid}/submit"),
        &cy.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for m in [&ann, &bob] {
        let asked = of_kind(&notices(&app, m).await, "approval_requested")
            .into_iter()
            .filter(|n| n["subject_id"] == eid.as_str())
            .count();
        assert_eq!(asked, 1);
    }
    assert_eq!(notices(&app, &cy).await["total"], 0, "not the submitter");
    assert_eq!(notices(&app, &vic).await["total"], 0, "not a viewer");
    let (status, body) = send(
        &app,
        Method::POST,
        &format!("/evidence/{eid}/reject"),
        &bob.token,
        Some(json!({"comment": "The review is a year old."})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = notices(&app, &cy).await;
    let decided = of_kind(&page, "approval_decided");
    assert_eq!(decided.len(), 1, "{page}");
    assert_eq!(decided[0]["link"], format!("/evidence/{eid}"));
    assert!(
        decided[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("Rejected: ")
    );
    assert!(
        decided[0]["body"]
            .as_str()
            .unwrap()
            .contains("The review is a year old."),
        "{page}"
    );
    let mails = mail_to(&app, "cy@example.co.uk").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].1.contains("The review is a year old."),
        "{mails:?}"
    );
}

#[tokio::test]
async fn email_goes_out_only_where_the_member_wants_it() {
    let app = spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let bob = join(&app, &ann, "bob@example.co.uk", "admin").await;
    let cy = join(&app, &ann, "cy@example.co.uk", "contributor").await;
    let dee = join(&app, &ann, "dee@example.co.uk", "viewer").await;
    let org = organisation_of(&app, &ann).await;

    // The defaults, before any choice.
    let (status, defaults) = send(
        &app,
        Method::GET,
        "/notifications/preferences",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let defaults = defaults.as_array().unwrap();
    assert_eq!(defaults.len(), 7, "{defaults:?}");
    for p in defaults {
        assert_eq!(p["in_app"], true, "{p}");
        assert_eq!(p["email"], p["kind"] != "task_due", "{p}");
    }

    // Ann: in the app only. Cy: e-mail only. Dee: neither. Bob: the defaults.
    let saved = set_preferences(
        &app,
        &ann,
        json!([{"kind": "report_ready", "in_app": true, "email": false}]),
    )
    .await;
    let rr = saved
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "report_ready")
        .unwrap();
    assert_eq!(rr["email"], false);
    set_preferences(
        &app,
        &cy,
        json!([{"kind": "report_ready", "in_app": false, "email": true}]),
    )
    .await;
    set_preferences(
        &app,
        &dee,
        json!([{"kind": "report_ready", "in_app": false, "email": false}]),
    )
    .await;

    let report = Uuid::now_v7();
    let everyone = [uuid(&ann), uuid(&bob), uuid(&cy), uuid(&dee)];
    let n = &app.components.notifications;
    let told = n
        .report_ready(org, report, "Executive summary", &everyone)
        .await
        .unwrap();
    assert_eq!(told.stored, 3, "{told:?}");
    assert_eq!(told.emailed, 2, "{told:?}");

    assert!(mail_to(&app, "ann@example.co.uk").await.is_empty());
    let bobs = mail_to(&app, "bob@example.co.uk").await;
    assert_eq!(bobs.len(), 1, "{bobs:?}");
    assert!(
        bobs[0].0.contains("Report ready: Executive summary"),
        "{bobs:?}"
    );
    assert!(
        bobs[0].1.contains(&format!("/reports/{report}")),
        "{bobs:?}"
    );
    assert!(
        bobs[0].1.contains("/notifications/preferences"),
        "says how to stop: {bobs:?}"
    );
    let outbox = outbox(&app).await;
    assert!(
        outbox
            .iter()
            .filter(|(_, s, _)| s.starts_with("ruleIQ: "))
            .all(|(to, _, _)| to.len() == 1 && !to[0].contains("ann@")),
        "one recipient per message: {outbox:?}"
    );
    assert_eq!(mail_to(&app, "cy@example.co.uk").await.len(), 1);
    assert!(mail_to(&app, "dee@example.co.uk").await.is_empty());

    let page = notices(&app, &ann).await;
    assert_eq!(page["unread"], 1);
    assert!(page["items"][0]["emailed_at"].is_null());
    // E-mail only: kept as read, so the bell does not count it.
    let page = notices(&app, &cy).await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["unread"], 0);
    assert_eq!(page["items"][0]["read"], true);
    assert_eq!(notices(&app, &dee).await["total"], 0);

    // Told once per report, however often it is called.
    let again = n
        .report_ready(org, report, "Executive summary", &everyone)
        .await
        .unwrap();
    assert_eq!(again.stored, 0, "{again:?}");
    assert_eq!(again.duplicates, 3, "{again:?}");
    // Nobody outside the organisation is told, even when named.
    let eve = owner(&app, "eve@example.org", "Eve Ltd").await;
    let other = n
        .report_ready(org, Uuid::now_v7(), "Gap analysis", &[uuid(&eve)])
        .await
        .unwrap();
    assert_eq!(other.stored, 0);
    assert_eq!(notices(&app, &eve).await["total"], 0);
}

#[tokio::test]
async fn the_weekly_digest_sums_up_the_week_once() {
    let app = spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let bob = join(&app, &ann, "bob@example.co.uk", "admin").await;
    let cy = join(&app, &ann, "cy@example.co.uk", "contributor").await;
    let org = organisation_of(&app, &ann).await;
    let n = &app.components.notifications;
    for title in ["Executive summary", "Gap analysis"] {
        n.report_ready(org, Uuid::now_v7(), title, &[uuid(&ann), uuid(&bob)])
            .await
            .unwrap();
    }
    // Bob does not want the digest; Cy has nothing to hear about.
    set_preferences(
        &app,
        &bob,
        json!([{"kind": "weekly_digest", "in_app": true, "email": false}]),
    )
    .await;
    let before = mail_to(&app, "ann@example.co.uk").await.len();

    let now = Utc::now();
    let r = n.digest(now).await.unwrap();
    assert_eq!(r.sent.stored, 1, "{r:?}");
    assert_eq!(r.sent.emailed, 1, "{r:?}");
    assert_eq!(r.skipped, 2, "{r:?}");
    let mails = mail_to(&app, "ann@example.co.uk").await;
    assert_eq!(mails.len(), before + 1);
    let (subject, body) = mails.last().unwrap();
    assert!(subject.contains("weekly summary"), "{subject}");
    assert!(body.contains("2 unread"), "{body}");
    assert!(body.contains("Report ready: Gap analysis"), "{body}");
    let page = notices(&app, &ann).await;
    let digest = of_kind(&page, "weekly_digest");
    assert_eq!(digest.len(), 1, "{page}");
    assert_eq!(digest[0]["link"], "/notifications");
    assert!(of_kind(&notices(&app, &bob).await, "weekly_digest").is_empty());
    assert_eq!(notices(&app, &cy).await["total"], 0);

    // The same week again: nothing. The next week: a new one.
    let again = n.digest(now + Duration::hours(1)).await.unwrap();
    assert_eq!(again.sent.stored, 0, "{again:?}");
    assert_eq!(again.sent.duplicates, 1, "{again:?}");
    let next = n.digest(now + Duration::days(7)).await.unwrap();
    assert_eq!(next.sent.stored, 1, "{next:?}");
}

async fn unread_of(app: &TestApp, m: &Member) -> u64 {
    let (status, body) = send(
        app,
        Method::GET,
        "/notifications/unread-count",
        &m.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["unread"].as_u64().unwrap()
}

#[tokio::test]
async fn notices_are_read_one_by_one_or_all_and_only_by_their_member() {
    let app = spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let bob = join(&app, &ann, "bob@example.co.uk", "viewer").await;
    let eve = owner(&app, "eve@example.org", "Eve Ltd").await;
    let org = organisation_of(&app, &ann).await;
    let n = &app.components.notifications;
    for i in 0..3 {
        n.report_ready(
            org,
            Uuid::now_v7(),
            &format!("Report {i}"),
            &[uuid(&ann), uuid(&bob)],
        )
        .await
        .unwrap();
    }
    assert_eq!(unread_of(&app, &ann).await, 3);

    // Paging, newest first, and the unread filter.
    let (status, p1) = send(
        &app,
        Method::GET,
        "/notifications?per_page=2&page=1",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{p1}");
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    assert_eq!(p1["total"], 3);
    assert_eq!(p1["page"], 1);
    assert_eq!(p1["per_page"], 2);
    assert!(
        p1["items"][0]["title"]
            .as_str()
            .unwrap()
            .contains("Report 2")
    );
    let (_, p2) = send(
        &app,
        Method::GET,
        "/notifications?per_page=2&page=2",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert!(
        p2["items"][0]["title"]
            .as_str()
            .unwrap()
            .contains("Report 0")
    );

    let first = p2["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, read) = send(
        &app,
        Method::POST,
        &format!("/notifications/{first}/read"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["read"], true);
    let read_at = read["read_at"].clone();
    assert!(read_at.is_string());
    // Again: harmless, and the first reading time stays.
    let (status, again) = send(
        &app,
        Method::POST,
        &format!("/notifications/{first}/read"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["read_at"], read_at);
    assert_eq!(unread_of(&app, &ann).await, 2);
    let (_, unread) = send(
        &app,
        Method::GET,
        "/notifications?unread=true",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(unread["total"], 2);
    assert!(
        unread["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["read"] == false && i["id"] != first.as_str())
    );

    // Another member's notice, another organisation's, or no id at all: 404.
    for (who, path) in [
        (&bob, format!("/notifications/{first}/read")),
        (&eve, format!("/notifications/{first}/read")),
        (&ann, format!("/notifications/{}/read", Uuid::now_v7())),
        (&ann, "/notifications/not-an-id/read".to_owned()),
    ] {
        let (status, body) = send(&app, Method::POST, &path, &who.token, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["status"], 404);
    }
    assert_eq!(unread_of(&app, &bob).await, 3, "Bob's own are untouched");

    let (status, all) = send(
        &app,
        Method::POST,
        "/notifications/read-all",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["updated"], 2);
    assert_eq!(unread_of(&app, &ann).await, 0);
    assert_eq!(unread_of(&app, &bob).await, 3);
    assert_eq!(unread_of(&app, &eve).await, 0);
    let (_, all) = send(
        &app,
        Method::POST,
        "/notifications/read-all",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(all["updated"], 0);
}

#[tokio::test]
async fn bad_requests_are_refused_with_problems() {
    let app = spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;

    // Not signed in.
    for (method, path) in [
        (Method::GET, "/notifications"),
        (Method::GET, "/notifications/unread-count"),
        (Method::POST, "/notifications/read-all"),
        (Method::GET, "/notifications/preferences"),
        (Method::PUT, "/notifications/preferences"),
    ] {
        let res = app
            .client
            .request(method.clone(), app.url(&format!("/api/v1{path}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let res = call(&app, Method::GET, "/notifications", "not-a-token", None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Paging out of range, and unknown parameters.
    for q in [
        "page=0",
        // An offset past what the database's integers hold (found by schemathesis).
        "page=9223372036854775808",
        "page=1000001",
        "per_page=0",
        "per_page=101",
        "page=x",
        "unread=maybe",
        "sort=old",
    ] {
        let (status, body) = send(
            &app,
            Method::GET,
            &format!("/notifications?{q}"),
            &ann.token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {body}");
    }

    // Preferences: an unknown kind, a missing channel, a kind twice, the wrong shape.
    for body in [
        json!({"preferences": [{"kind": "evidence_expired", "in_app": true, "email": true}]}),
        json!({"preferences": [{"kind": "task_due", "in_app": true}]}),
        json!({"preferences": [
            {"kind": "task_due", "in_app": true, "email": true},
            {"kind": "task_due", "in_app": false, "email": false}
        ]}),
        json!({"preferences": {"kind": "task_due"}}),
        json!([{"kind": "task_due", "in_app": true, "email": true}]),
        json!({"preferences": [{"kind": "task_due", "in_app": "yes", "email": true}]}),
    ] {
        let (status, problem) = send(
            &app,
            Method::PUT,
            "/notifications/preferences",
            &ann.token,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert_eq!(problem["status"], 422);
    }
    // Nothing of a refused request was saved.
    let (_, prefs) = send(
        &app,
        Method::GET,
        "/notifications/preferences",
        &ann.token,
        None,
    )
    .await;
    let task_due = prefs
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "task_due")
        .unwrap();
    assert_eq!(task_due["email"], false);

    // Not JSON at all, and not declared as JSON.
    let res = app
        .client
        .put(app.url("/api/v1/notifications/preferences"))
        .bearer_auth(&ann.token)
        .header("content-type", "application/json")
        .body("{\"preferences\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = app
        .client
        .put(app.url("/api/v1/notifications/preferences"))
        .bearer_auth(&ann.token)
        .body("preferences")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

// ---- The pages, without JavaScript ----

/// A browser without JavaScript: keeps cookies, does not follow redirects.
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

impl Browser {
    async fn signed_in(app: &TestApp, email: &str) -> Self {
        let mut b = Self {
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            cookies: HashMap::new(),
        };
        b.get("/sign-in").await;
        let done = b
            .submit("/sign-in", &[("email", email), ("password", PASSWORD)])
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
        b
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
        let status = res.status();
        let location = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        Page {
            status,
            location,
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

    async fn submit(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.cookies["ruleiq_csrf"].clone();
        let mut fields = vec![("csrf_token", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields).await
    }
}

#[tokio::test]
async fn the_bell_and_the_pages_work_without_javascript() {
    let app = spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let bob = join(&app, &ann, "bob@example.co.uk", "viewer").await;
    let org = organisation_of(&app, &ann).await;
    let n = &app.components.notifications;
    let mut ids = Vec::new();
    for title in ["Executive summary", "Gap <analysis>"] {
        let report = Uuid::now_v7();
        ids.push(report);
        n.report_ready(org, report, title, &[uuid(&ann), uuid(&bob)])
            .await
            .unwrap();
    }
    let mut b = Browser::signed_in(&app, "ann@example.co.uk").await;

    // The bell on any page, counted by the server.
    let dash = b.get("/dashboard").await;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(
        dash.html
            .contains(r#"aria-label="Notifications (2 unread)""#),
        "{}",
        dash.html
    );
    assert!(dash.html.contains(r#"href="/notifications""#));

    let list = b.get("/notifications").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.html.contains("Report ready: Executive summary"));
    // Titles are escaped.
    assert!(
        list.html.contains("Gap &#60;analysis&#62;"),
        "{}",
        list.html
    );
    assert!(!list.html.contains("Gap <analysis>"));
    assert!(
        list.html
            .contains(&format!(r#"href="/reports/{}""#, ids[0]))
    );
    assert!(list.html.contains(r#"action="/notifications/read-all""#));
    assert_eq!(list.html.matches("Mark read").count(), 2);
    assert!(list.html.contains(r#"href="/notifications/preferences""#));

    // A forged form changes nothing.
    let forged = b
        .post("/notifications/read-all", &[("csrf_token", "x")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        forged.html.contains("Your form had expired"),
        "{}",
        forged.html
    );

    // One read by its button, then all.
    let (_, page) = send(&app, Method::GET, "/notifications", &ann.token, None).await;
    let one = page["items"][0]["id"].as_str().unwrap().to_owned();
    let done = b
        .submit(&format!("/notifications/{one}/read"), &[("page", "1")])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert_eq!(done.location.as_deref(), Some("/notifications"));
    let list = b.get("/notifications").await;
    assert!(
        list.html
            .contains(r#"aria-label="Notifications (1 unread)""#)
    );
    assert!(
        list.html.contains("Marked “Report ready:"),
        "the flash: {}",
        list.html
    );
    // Someone else's notice is not found.
    let (_, bobs) = send(&app, Method::GET, "/notifications", &bob.token, None).await;
    let bobs_id = bobs["items"][0]["id"].as_str().unwrap().to_owned();
    let theirs = b
        .submit(&format!("/notifications/{bobs_id}/read"), &[])
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);

    let done = b.submit("/notifications/read-all", &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let list = b.get("/notifications").await;
    assert!(
        list.html
            .contains(r#"aria-label="Notifications (0 unread)""#)
    );
    assert!(
        list.html.contains("Marked 1 notification read."),
        "{}",
        list.html
    );
    assert!(!list.html.contains("Mark read"));
    assert!(!list.html.contains(r#"action="/notifications/read-all""#));
    let unread = b.get("/notifications?unread=true").await;
    assert!(unread.html.contains("Nothing unread."));
    let (_, counts) = send(
        &app,
        Method::GET,
        "/notifications/unread-count",
        &bob.token,
        None,
    )
    .await;
    assert_eq!(counts["unread"], 2, "Bob's stay unread");

    // Preferences: a box per kind per channel, saved by the form.
    let prefs = b.get("/notifications/preferences").await;
    assert_eq!(prefs.status, StatusCode::OK);
    assert_eq!(prefs.html.matches(r#"type="checkbox""#).count(), 14);
    assert!(prefs.html.contains(r#"name="task_due.email""#));
    assert!(prefs.html.contains(r#"<label for="weekly_digest-email""#));
    let saved = b
        .submit(
            "/notifications/preferences",
            &[("report_ready.in_app", "on"), ("weekly_digest.email", "on")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let (_, api) = send(
        &app,
        Method::GET,
        "/notifications/preferences",
        &ann.token,
        None,
    )
    .await;
    for p in api.as_array().unwrap() {
        let kind = p["kind"].as_str().unwrap();
        assert_eq!(p["in_app"], kind == "report_ready", "{p}");
        assert_eq!(p["email"], kind == "weekly_digest", "{p}");
    }
    let forged = b
        .post(
            "/notifications/preferences",
            &[("csrf_token", "x"), ("task_due.email", "on")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // Signed out: to the sign-in page.
    let mut stranger = Browser {
        client: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap(),
        base: app.base.clone(),
        cookies: HashMap::new(),
    };
    let away = stranger.get("/notifications").await;
    assert_eq!(away.status, StatusCode::SEE_OTHER);
    assert_eq!(away.location.as_deref(), Some("/sign-in"));
}
