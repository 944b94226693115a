//! Request budgets, in memory and shared through a real Redis.

use reqwest::StatusCode;
use ruleiq_config::raw::{Flag, RawSettings};
use ruleiq_test_support::{TestApp, text};
use serde_json::{Value, json};
use std::time::Duration;

async fn failed_login(app: &TestApp) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "nobody@example.co.uk", "password": "whatever whatever"}))
        .send()
        .await
        .unwrap()
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

fn auth_limit(n: u32) -> impl FnOnce(&mut RawSettings) {
    move |raw| raw.auth_rate_limit_per_minute = n
}

#[tokio::test]
async fn the_auth_budget_counts_down_then_answers_429_with_retry_after() {
    let app = TestApp::spawn_with(auth_limit(3)).await;
    for remaining in ["2", "1", "0"] {
        let res = failed_login(&app).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&res, "x-ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(
            header(&res, "x-ratelimit-remaining").as_deref(),
            Some(remaining)
        );
        let reset: u64 = header(&res, "x-ratelimit-reset").unwrap().parse().unwrap();
        assert!((1..=60).contains(&reset));
    }
    let res = failed_login(&app).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = header(&res, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "https://ruleiq.dev/problems/rate-limited");
    assert!(body["request_id"].is_string());

    // Health is never limited, and carries no budget headers.
    for _ in 0..20 {
        let res = app.get("/api/v1/health/live").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(header(&res, "x-ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn the_general_budget_is_per_account() {
    let app = TestApp::spawn_with(|raw| raw.rate_limit_per_minute = 2).await;
    let mut tokens = Vec::new();
    for email in ["ada@example.co.uk", "bea@example.co.uk"] {
        let res = app
            .client
            .post(app.url("/api/v1/auth/register"))
            .json(&json!({"email": email, "password": "otter lantern quarry velvet", "full_name": "A", "organization_name": "Org"}))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
    }
    let me = |token: &str| {
        app.client
            .get(app.url("/api/v1/auth/me"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(me(&tokens[0]).await.unwrap().status(), StatusCode::OK);
    assert_eq!(me(&tokens[0]).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        me(&tokens[0]).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let other = me(&tokens[1]).await.unwrap();
    assert_eq!(
        other.status(),
        StatusCode::OK,
        "another account has its own budget"
    );
    assert_eq!(
        header(&other, "x-ratelimit-remaining").as_deref(),
        Some("1")
    );
}

#[tokio::test]
async fn limits_can_be_turned_off() {
    let app = TestApp::spawn_with(|raw| {
        raw.auth_rate_limit_per_minute = 1;
        raw.rate_limit_enabled = Flag(false);
    })
    .await;
    for _ in 0..5 {
        let res = failed_login(&app).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(header(&res, "x-ratelimit-limit").is_none());
    }
}

pub(crate) fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

#[tokio::test]
async fn two_servers_on_one_redis_share_one_budget() {
    let queue = format!("shared-{}", uuid::Uuid::new_v4().simple());
    let configure = |queue: String| {
        move |raw: &mut RawSettings| {
            raw.redis_url = Some(text(&redis_url()));
            raw.job_queue_name = text(&queue);
            raw.auth_rate_limit_per_minute = 4;
        }
    };
    let one = TestApp::spawn_with(configure(queue.clone())).await;
    let two = TestApp::spawn_with(configure(queue)).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &one } else { &two };
        statuses.push(failed_login(app).await.status().as_u16());
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 429, 429],
        "one budget across both"
    );
    let health: Value = one.get("/api/v1/health").await.json().await.unwrap();
    assert_eq!(health["checks"]["redis"]["status"], "healthy");
    assert_eq!(health["checks"]["redis"]["rate_limits"], "redis");
}

/// A Redis server of the test's own, so it can be stopped.
struct OwnRedis {
    child: std::process::Child,
    port: u16,
}

impl OwnRedis {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self { child, port };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn when_redis_goes_away_limits_continue_in_memory_and_health_says_so() {
    let mut redis = OwnRedis::start().await;
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let app = TestApp::spawn_with(move |raw| {
        raw.redis_url = Some(text(&url));
        raw.auth_rate_limit_per_minute = 3;
        raw.embedded_worker = Flag(false);
    })
    .await;
    let res = failed_login(&app).await;
    assert_eq!(header(&res, "x-ratelimit-remaining").as_deref(), Some("2"));

    redis.stop();
    for expected in ["2", "1", "0"] {
        let res = failed_login(&app).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "still serving");
        assert_eq!(
            header(&res, "x-ratelimit-remaining").as_deref(),
            Some(expected),
            "counted in memory"
        );
    }
    assert_eq!(
        failed_login(&app).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let res = app.get("/api/v1/health").await;
    assert_eq!(res.status(), StatusCode::OK);
    let health: Value = res.json().await.unwrap();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["checks"]["redis"]["status"], "degraded");
    assert_eq!(health["checks"]["redis"]["rate_limits"], "memory");
    assert!(health["checks"]["redis"]["error"].is_string());
}

async fn failed_login_from(app: &TestApp, forwarded: &str) -> StatusCode {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({"email": "nobody@example.co.uk", "password": "whatever whatever"}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    // Untrusted: X-Forwarded-For is ignored, every request is the peer's.
    let app = TestApp::spawn_with(auth_limit(1)).await;
    assert_eq!(
        failed_login_from(&app, "203.0.113.1").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        failed_login_from(&app, "203.0.113.2").await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Trusted loopback proxy: each client behind it has its own budget, and the nearest
    // untrusted hop is the client even when it spoofs an earlier one.
    let app = TestApp::spawn_with(|raw| {
        raw.auth_rate_limit_per_minute = 1;
        raw.trusted_proxies =
            ruleiq_config::raw::List(vec!["127.0.0.1".into(), "10.0.0.0/8".into()]);
    })
    .await;
    assert_eq!(
        failed_login_from(&app, "203.0.113.1").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        failed_login_from(&app, "203.0.113.2").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        failed_login_from(&app, "198.51.100.9, 203.0.113.1, 10.1.1.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        failed_login_from(&app, "203.0.113.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
