//! Several instances on one database and one Redis, as the container deployments run
//! them: two `ruleiq serve` processes (each with its embedded worker) and a separate
//! `ruleiq worker`, all real processes. A session made on one is valid on the other
//! and ends on both; the rate limits are one budget; every job runs exactly once
//! although three workers take from the queue; and what one instance writes, the other
//! finds in search. (One run per schedule tick across processes is
//! `reports::schedules_are_checked_listed_deleted_and_each_tick_runs_once_across_processes`.)

use reqwest::{Client, Method, StatusCode};
use ruleiq_test_support::TestDatabase;
use serde_json::{Value, json};
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{cli::Served, members::PASSWORD, ratelimit::redis_url};

async fn call(
    client: &Client,
    served: &Served,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client.request(method, served.url(&format!("/api/v1{path}")));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A `ruleiq worker` child process, killed when dropped.
struct Worker(std::process::Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn two_servers_and_a_worker_share_sessions_limits_jobs_and_search() {
    let db = TestDatabase::new().await;
    let queue = format!("instances-{}", uuid::Uuid::new_v4().simple());
    let redis = redis_url();
    let env = [
        ("REDIS_URL", redis.as_str()),
        ("JOB_QUEUE_NAME", queue.as_str()),
        ("AUTH_RATE_LIMIT_PER_MINUTE", "4"),
        ("RATE_LIMIT_PER_MINUTE", "100000"),
        ("LOG_LEVEL", "warn"),
    ];
    // The first migrates and seeds; the second finds the schema current.
    let a = Served::start(&db, &env).await;
    let b = Served::start(&db, &env).await;
    let mut worker = Command::new(env!("CARGO_BIN_EXE_ruleiq"));
    worker
        .arg("worker")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("DATA_DIR", db.dir.path().join("data"))
        .current_dir(db.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        worker.env(k, v);
    }
    let _worker = Worker(worker.spawn().unwrap());
    let client = Client::new();

    // A session made on one instance is valid on the other.
    let (status, registered) = call(
        &client,
        &a,
        Method::POST,
        "/auth/register",
        None,
        Some(json!({"email": "ann@example.co.uk", "password": PASSWORD,
                    "full_name": "Ann", "organization_name": "Ann Ltd"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let token = registered["access_token"].as_str().unwrap().to_owned();
    let (status, me) = call(&client, &b, Method::GET, "/auth/me", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "ann@example.co.uk");

    // Every job exactly once: twelve reports asked of both instances, taken by three
    // workers (two embedded, one separate) from one queue.
    let mut reports = Vec::new();
    for i in 0..12 {
        let on = if i % 2 == 0 { &a } else { &b };
        let (status, accepted) = call(
            &client,
            on,
            Method::POST,
            "/reports",
            Some(&token),
            Some(json!({"report_type": "executive_summary", "format": "json"})),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        reports.push((
            accepted["report_id"].as_str().unwrap().to_owned(),
            accepted["job_id"].as_str().unwrap().to_owned(),
        ));
    }
    // And a policy, whose generation is a job too, for search below.
    let (status, policy) = call(
        &client,
        &b,
        Method::POST,
        "/policies/generate",
        Some(&token),
        Some(json!({"policy_type": "backup"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{policy}");
    let policy_id = policy["policy_id"].as_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(90);
    for (report, job) in &reports {
        loop {
            let (_, r) = call(
                &client,
                &b,
                Method::GET,
                &format!("/reports/{report}"),
                Some(&token),
                None,
            )
            .await;
            if r["status"] == "ready" {
                break;
            }
            assert!(r["status"] != "failed", "{r}");
            assert!(
                Instant::now() < deadline,
                "report {report} never ready: {r}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (status, j) = call(
            &client,
            &a,
            Method::GET,
            &format!("/jobs/{job}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{j}");
        assert_eq!(j["status"], "succeeded", "{j}");
        assert_eq!(j["attempts"], 1, "started once, by one worker: {j}");
    }

    // What one instance wrote, the other finds.
    loop {
        let (_, p) = call(
            &client,
            &a,
            Method::GET,
            &format!("/policies/{policy_id}"),
            Some(&token),
            None,
        )
        .await;
        if p["generation"] != "pending" {
            break;
        }
        assert!(Instant::now() < deadline, "policy never generated: {p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, found) = call(
        &client,
        &a,
        Method::GET,
        "/search?q=backup&kind=policy",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert!(
        found["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|hit| hit.to_string().contains(&policy_id)),
        "the policy made through one instance is found through the other: {found}"
    );

    // One login budget across both instances.
    let mut statuses = Vec::new();
    for i in 0..6 {
        let on = if i % 2 == 0 { &a } else { &b };
        let (status, _) = call(
            &client,
            on,
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": "ann@example.co.uk", "password": "wrong password here"})),
        )
        .await;
        statuses.push(status.as_u16());
    }
    // Four a minute from this address: the registration on `a` spent one.
    assert_eq!(
        statuses,
        [401, 401, 401, 429, 429, 429],
        "one budget across both"
    );

    // Signing out on one instance ends the session on the other.
    let (status, _) = call(
        &client,
        &b,
        Method::POST,
        "/auth/logout",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let ended = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = call(&client, &a, Method::GET, "/auth/me", Some(&token), None).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            Instant::now() < ended,
            "the session lived on at the other instance"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for served in [a, b] {
        let (clean, log) = served.terminate().await;
        assert!(clean, "{log}");
    }
}
