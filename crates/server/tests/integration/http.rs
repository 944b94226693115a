use reqwest::StatusCode;
use ruleiq_test_support::TestApp;
use serde_json::Value;

async fn assert_problem(res: reqwest::Response, status: StatusCode, slug: &str) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], format!("https://ruleiq.dev/problems/{slug}"));
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["request_id"], id);
    body
}

#[tokio::test]
async fn every_error_from_the_real_server_is_a_problem_document() {
    let app = TestApp::spawn().await;
    assert_problem(
        app.get("/api/v1/does-not-exist").await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    let res = app
        .client
        .delete(app.url("/api/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET,HEAD");
    assert_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed").await;
    // Over MAX_JSON_BODY_SIZE (2 MiB by default).
    let res = app
        .client
        .post(app.url("/api/v1/health"))
        .header("content-type", "application/json")
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
    app.stop().await;
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/api/v1/health/live"))
        .header("x-request-id", "lb-1234")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "lb-1234");
    let res = app
        .client
        .get(app.url("/api/v1/health/live"))
        .header("x-request-id", "x".repeat(500))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["x-request-id"].len(),
        36,
        "replaced by a UUID"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.get("/api/v1/health/live").await;
    }
    app.get("/api/v1/nowhere").await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#"http_requests_total{method="GET",route="/api/v1/health/live",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404""#));
    assert!(text.contains("# TYPE http_request_duration_seconds histogram"));
}

#[tokio::test]
async fn the_openapi_document_and_its_browsable_ui_are_served_offline() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/health",
        "/api/v1/health/live",
        "/api/v1/health/ready",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} documented");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());

    let ui = app.get("/api/docs/").await;
    assert_eq!(ui.status(), StatusCode::OK);
    let html = ui.text().await.unwrap();
    assert!(html.contains("swagger-ui"));
    // The UI's assets are served by this binary, not fetched from a CDN.
    let bundle = app.get("/api/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status(), StatusCode::OK);
    assert!(!html.contains("https://"), "no external assets");
}

#[tokio::test]
async fn the_landing_page_is_html_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    let res = app.get("/").await;
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("<main id=\"main\""));
}

#[tokio::test]
async fn responses_are_compressed_when_asked() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn graceful_shutdown_finishes_and_frees_the_port() {
    let app = TestApp::spawn().await;
    let addr = app.addr;
    app.stop().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens after shutdown"
    );
}

/// A NUL byte in a query string, a path or a JSON string is refused with a 4xx on
/// every engine (PostgreSQL refuses it in text, which made a 500; found by
/// schemathesis and in review).
#[tokio::test]
async fn a_nul_byte_in_a_query_a_path_or_a_json_string_is_refused() {
    let app = ruleiq_test_support::TestApp::spawn().await;
    let ann = crate::members::owner(&app, "ann@example.co.uk", "Quokka Widgets Ltd").await;
    for path in [
        "/evidence?q=%3A%08%07%00",
        "/search?q=a%00b",
        "/policies?status=%00",
    ] {
        let res = crate::members::call(&app, reqwest::Method::GET, path, &ann.token, None).await;
        assert_eq!(
            res.status(),
            reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            "{path}"
        );
    }
    // In a path it names nothing; and pages are covered as well as the API.
    let path = crate::members::call(
        &app,
        reqwest::Method::GET,
        "/frameworks/a%00b",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(path.status(), reqwest::StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/frameworks?q=%00").await.status(),
        reqwest::StatusCode::UNPROCESSABLE_ENTITY
    );
    // Nor in a JSON string, which PostgreSQL would refuse as text.
    let body = crate::members::call(
        &app,
        reqwest::Method::POST,
        "/chat/conversations",
        &ann.token,
        Some(serde_json::json!({"title": "a\u{0}b"})),
    )
    .await;
    assert_eq!(body.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let fine = crate::members::call(
        &app,
        reqwest::Method::GET,
        "/evidence?q=backup",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(fine.status(), reqwest::StatusCode::OK);
}

/// The figure `name` reads in the `/metrics` text.
async fn gauge(app: &TestApp, name: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

/// The gauge `name` once it reads `want`, waiting up to two seconds for it.
async fn gauge_settles(app: &TestApp, name: &str, want: f64) -> f64 {
    for _ in 0..100 {
        if gauge(app, name).await == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    gauge(app, name).await
}

#[tokio::test]
async fn past_its_capacity_the_server_sheds_with_503_and_recovers() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn_with(|raw| raw.max_concurrent_requests = Some(1)).await;
    assert_eq!(gauge(&app, "ruleiq_requests_limit").await, 1.0);
    // One request in hand: its headers promise a body that has not all come yet, so
    // its handler is still reading it.
    let mut held = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let body = br#"{"email":"a@example.co.uk","password":"not this one"}"#;
    held.write_all(
        format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    held.write_all(&body[..5]).await.unwrap();
    assert_eq!(
        gauge_settles(&app, "ruleiq_requests_in_flight", 1.0).await,
        1.0
    );

    // Another is turned away at once, API and page alike, saying when to come back…
    let res = app.get("/api/v1/frameworks").await;
    assert_eq!(res.headers()["retry-after"], "1");
    let problem = assert_problem(res, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("try again"),
        "{problem}"
    );
    let page = app.get("/sign-in").await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.text().await.unwrap().contains("Back in a moment"));
    // …while health and metrics still answer.
    assert_eq!(app.get("/api/v1/health").await.status(), StatusCode::OK);
    assert_eq!(gauge(&app, "ruleiq_requests_shed_total").await, 2.0);

    // The request in hand finishes as usual, and the next is served.
    held.write_all(&body[5..]).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0_u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        use tokio::io::AsyncReadExt;
        let n = held.read(&mut buf).await.unwrap();
        assert!(n > 0, "the held request was answered");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 401"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(
        gauge_settles(&app, "ruleiq_requests_in_flight", 0.0).await,
        0.0
    );
    assert_eq!(app.get("/sign-in").await.status(), StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/frameworks").await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}
