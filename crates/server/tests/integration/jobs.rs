use ruleiq_core::JobId;
use ruleiq_jobs::kinds::CANARY;
use ruleiq_services::jobs::{JobError, JobStatus};
use ruleiq_test_support::{TestApp, text};
use serde_json::json;
use std::time::Duration;

/// Waits until the job reaches a final state.
async fn finished(app: &TestApp, id: JobId) -> JobStatus {
    // Generous: a loaded CI machine runs many apps at once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let job = app
            .components
            .jobs
            .get(id)
            .await
            .unwrap()
            .expect("recorded");
        if matches!(job.status.as_str(), "succeeded" | "failed" | "cancelled") {
            return job;
        }
        assert!(tokio::time::Instant::now() < deadline, "job still {job:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn canary(app: &TestApp, fail_attempts: u32, max_attempts: i32) -> JobId {
    app.components
        .jobs
        .enqueue(
            CANARY,
            json!({"message": "hello", "fail_attempts": fail_attempts}),
            None,
            max_attempts,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_canary_travels_through_the_queue_to_the_embedded_worker() {
    let app = TestApp::spawn().await;
    let id = canary(&app, 0, 3).await;
    let job = finished(&app, id).await;
    assert_eq!(job.status, "succeeded", "{job:?}");
    assert_eq!(job.attempts, 1);
    assert_eq!(job.result.as_ref().unwrap()["echo"], "hello");
    assert!(job.started_at.is_some() && job.finished_at.is_some());
    assert!(job.error.is_none());
    app.stop().await;
}

#[tokio::test]
async fn a_failing_job_is_retried_with_backoff_then_succeeds() {
    let app = TestApp::spawn().await;
    let id = canary(&app, 1, 3).await;
    let job = finished(&app, id).await;
    assert_eq!(job.status, "succeeded", "{job:?}");
    assert_eq!(job.attempts, 2);
    let waited = job.finished_at.unwrap() - job.created_at;
    assert!(
        waited >= chrono::Duration::milliseconds(1900),
        "the retry waited for its backoff ({waited})"
    );
}

#[tokio::test]
async fn a_job_that_fails_its_last_attempt_is_dead_with_its_error() {
    let app = TestApp::spawn().await;
    let id = canary(&app, 10, 2).await;
    let job = finished(&app, id).await;
    assert_eq!(job.status, "failed");
    assert_eq!(job.attempts, 2);
    assert_eq!(job.max_attempts, 2);
    assert!(job.error.unwrap().contains("attempt 2"));
    // It stays dead: nothing picks it up again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = app.components.jobs.get(id).await.unwrap().unwrap();
    assert_eq!(again.status, "failed");
    assert_eq!(again.attempts, 2);
    let counts = app.components.jobs.counts().await.unwrap();
    assert_eq!(counts.failed, 1);
}

#[tokio::test]
async fn an_unknown_kind_is_refused_before_anything_is_recorded() {
    let app = TestApp::spawn().await;
    let err = app
        .components
        .jobs
        .enqueue("no-such-kind", json!({}), None, 3)
        .await
        .unwrap_err();
    assert!(matches!(err, JobError::UnknownKind(_)), "{err}");
    // Nothing recorded of that kind. (Counting every job would also count the upkeep
    // jobs the server queues at start, which may not have run yet on a busy machine.)
    use ruleiq_db::{
        entities::job_run,
        sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter},
    };
    let recorded = job_run::Entity::find()
        .filter(job_run::Column::Kind.eq("no-such-kind"))
        .count(&app.components.db)
        .await
        .unwrap();
    assert_eq!(recorded, 0);
}

#[tokio::test]
async fn a_separate_worker_runs_what_the_api_instance_queued() {
    let app =
        TestApp::spawn_with(|raw| raw.embedded_worker = ruleiq_config::raw::Flag(false)).await;
    let id = canary(&app, 0, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = app.components.jobs.get(id).await.unwrap().unwrap();
    assert_eq!(
        waiting.status, "queued",
        "no worker runs inside this server"
    );

    let token = tokio_util::sync::CancellationToken::new();
    let worker = app
        .components
        .spawn_worker("separate".into(), token.clone());
    let job = finished(&app, id).await;
    assert_eq!(job.status, "succeeded");
    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the worker stops on shutdown")
        .unwrap();
}

#[tokio::test]
async fn with_redis_url_set_jobs_travel_through_redis() {
    let redis =
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let app = TestApp::spawn_with(|raw| raw.redis_url = Some(text(&redis))).await;
    assert_eq!(app.components.queue_backend(), "redis");
    let health: serde_json::Value = app.get("/api/v1/health").await.json().await.unwrap();
    assert_eq!(health["checks"]["jobs"]["backend"], "redis");
    let id = canary(&app, 1, 3).await;
    let job = finished(&app, id).await;
    assert_eq!(job.status, "succeeded", "{job:?}");
    assert_eq!(job.attempts, 2, "the retry went through Redis too");
}

#[tokio::test]
async fn members_read_their_organisations_jobs_over_http() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "ada@example.co.uk", "password": "otter lantern quarry velvet", "full_name": "Ada", "organization_name": "Engines"}))
        .send()
        .await
        .unwrap();
    let reg: serde_json::Value = res.json().await.unwrap();
    let token = reg["access_token"].as_str().unwrap();
    let org: uuid::Uuid = reg["organization"]["id"].as_str().unwrap().parse().unwrap();
    let mine = app
        .components
        .jobs
        .enqueue(CANARY, json!({"message": "mine"}), Some(org), 3)
        .await
        .unwrap();
    let system = canary(&app, 0, 3).await;
    finished(&app, mine).await;
    let get = |path: String| {
        app.client
            .get(app.url(&format!("/api/v1{path}")))
            .bearer_auth(token)
            .send()
    };

    let job: serde_json::Value = get(format!("/jobs/{mine}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["result"]["echo"], "mine");
    assert_eq!(
        get(format!("/jobs/{system}")).await.unwrap().status(),
        404,
        "system jobs belong to no organisation"
    );
    assert_eq!(get("/jobs/not-a-uuid".into()).await.unwrap().status(), 404);
    let page: serde_json::Value = get("/jobs?status=succeeded".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], mine.to_string());
    for bad in ["status=exploded", "limit=0", "cursor=nope", "limit=x"] {
        assert_eq!(
            get(format!("/jobs?{bad}")).await.unwrap().status(),
            422,
            "{bad}"
        );
    }
    assert_eq!(
        app.client
            .get(app.url("/api/v1/jobs"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn a_dead_job_is_retried_and_a_queued_one_cancelled_by_an_admin_of_its_organisation_only() {
    use crate::{assessments::send, members::owner};
    use reqwest::{Method, StatusCode};
    let app = TestApp::spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let eve = owner(&app, "eve@example.co.uk", "Eve Ltd").await;
    let (_, org) = send(&app, Method::GET, "/organization", &ann.token, None).await;
    let org_id = uuid::Uuid::parse_str(org["id"].as_str().unwrap()).unwrap();
    // Fails its only attempt: dead.
    let id = app
        .components
        .jobs
        .enqueue(
            CANARY,
            json!({"message": "again", "fail_attempts": 1}),
            Some(org_id),
            1,
        )
        .await
        .unwrap();
    assert_eq!(finished(&app, id).await.status, "failed");
    // Another organisation cannot see or touch it; a finished job cannot be cancelled.
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/jobs/{id}/retry"),
        &eve.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, problem) = send(
        &app,
        Method::POST,
        &format!("/jobs/{id}/cancel"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, again) = send(
        &app,
        Method::POST,
        &format!("/jobs/{id}/retry"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "queued");
    assert_eq!(again["attempts"], 0);
    // The retry ran: with its attempts counted afresh from 1, the canary fails its
    // first attempt again and the job is dead once more, with one attempt recorded.
    let job = finished(&app, id).await;
    assert_eq!(
        (job.status.as_str(), job.attempts),
        ("failed", 1),
        "{job:?}"
    );
    let (status, problem) = send(
        &app,
        Method::POST,
        &format!("/jobs/{id}/retry"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a dead job can be retried again: {problem}"
    );
    for bad in ["not-a-job", "00000000-0000-0000-0000-000000000000"] {
        let (status, _) = send(
            &app,
            Method::POST,
            &format!("/jobs/{bad}/retry"),
            &ann.token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    app.stop().await;

    // Without a worker a job stays queued and can be cancelled; then it never runs.
    let app =
        TestApp::spawn_with(|raw| raw.embedded_worker = ruleiq_config::raw::Flag(false)).await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let (_, org) = send(&app, Method::GET, "/organization", &ann.token, None).await;
    let org_id = uuid::Uuid::parse_str(org["id"].as_str().unwrap()).unwrap();
    let id = app
        .components
        .jobs
        .enqueue(CANARY, json!({}), Some(org_id), 3)
        .await
        .unwrap();
    let (status, job) = send(
        &app,
        Method::POST,
        &format!("/jobs/{id}/cancel"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["status"], "cancelled");
    let err = app.components.jobs.cancel(None, id).await.unwrap_err();
    assert!(matches!(err, JobError::Conflict(_)), "{err}");
    app.stop().await;
}

/// A worker killed mid-job leaves its record `running`. The queue delivers the task
/// again once the worker has missed its heartbeats; that delivery takes over a record
/// that has not been refreshed for `ORPHANED_AFTER`, and only such a record: a job a
/// live worker is refreshing is never run twice.
#[tokio::test]
async fn a_job_left_running_by_a_dead_worker_runs_again_and_a_live_one_does_not() {
    use ruleiq_db::{
        entities::job_run,
        sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr},
    };
    use ruleiq_services::jobs::{JobEnvelope, ORPHANED_AFTER};
    let app =
        TestApp::spawn_with(|raw| raw.embedded_worker = ruleiq_config::raw::Flag(false)).await;
    let payload = json!({"message": "again", "fail_attempts": 0});
    let mut ids = Vec::new();
    for silent_for in [ORPHANED_AFTER * 3, Duration::from_secs(1)] {
        let id = app
            .components
            .jobs
            .enqueue(CANARY, payload.clone(), None, 3)
            .await
            .unwrap();
        // As a worker that started it and then stopped refreshing it leaves it.
        let then = chrono::Utc::now() - chrono::Duration::from_std(silent_for).unwrap();
        job_run::Entity::update_many()
            .col_expr(job_run::Column::Status, Expr::value("running"))
            .col_expr(job_run::Column::Attempts, Expr::value(1))
            .col_expr(job_run::Column::UpdatedAt, Expr::value(then))
            .filter(job_run::Column::Id.eq(id.as_uuid()))
            .exec(&app.components.db)
            .await
            .unwrap();
        app.components
            .jobs
            .execute(JobEnvelope {
                job_id: id,
                kind: CANARY.into(),
                payload: payload.clone(),
            })
            .await
            .unwrap();
        ids.push(id);
    }
    let orphan = app.components.jobs.get(ids[0]).await.unwrap().unwrap();
    assert_eq!(orphan.status, "succeeded", "{orphan:?}");
    assert_eq!(
        orphan.attempts, 2,
        "a second attempt, after the dead worker's"
    );
    let live = app.components.jobs.get(ids[1]).await.unwrap().unwrap();
    assert_eq!(live.status, "running", "{live:?}");
    assert_eq!(live.attempts, 1, "a refreshed record is left to its worker");
    app.stop().await;
}
