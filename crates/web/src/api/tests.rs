//! The middleware stack and error mapping, exercised through test routes that do what
//! real handlers can do wrong: panic, stall, receive bad JSON.

use axum::{
    Router,
    body::Body,
    http::{Method, Request, StatusCode, header},
    routing::{get, post},
};
use http_body_util::BodyExt;
use ruleiq_config::{RawSettings, Settings};
use serde::Deserialize;
use std::time::Duration;
use tower::ServiceExt;

use super::with_middleware;
use crate::{metrics::Metrics, problem::ApiJson};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Widget {
    name: String,
    size: u32,
    colour: Colour,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Colour {
    Red,
    Blue,
}

async fn create(ApiJson(w): ApiJson<Widget>) -> String {
    w.name
}

#[allow(clippy::panic)]
async fn explode() -> &'static str {
    panic!("boom")
}

async fn stall() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

fn settings(configure: impl FnOnce(&mut RawSettings)) -> Settings {
    let mut raw = RawSettings::default();
    raw.max_json_body_size = 1024;
    raw.request_timeout_seconds = 1;
    raw.allowed_origins = ruleiq_config::raw::List(vec!["https://app.example".into()]);
    configure(&mut raw);
    Settings::from_raw(raw).unwrap()
}

fn app_with(s: &Settings) -> (Router, Metrics) {
    let metrics = Metrics::new();
    let routes = Router::new()
        .route("/widgets", post(create))
        .route("/explode", get(explode))
        .route("/stall", get(stall));
    (with_middleware(routes, s, metrics.clone()), metrics)
}

fn app() -> Router {
    app_with(&settings(|_| {})).0
}

async fn send(
    app: Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

fn post_json(body: &str) -> Request<Body> {
    Request::post("/widgets")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn assert_problem(
    status: StatusCode,
    headers: &axum::http::HeaderMap,
    body: &serde_json::Value,
    expect: StatusCode,
    slug: &str,
) {
    assert_eq!(status, expect, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["type"], format!("https://ruleiq.dev/problems/{slug}"));
    assert_eq!(body["status"], expect.as_u16());
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()));
    let id = headers["x-request-id"].to_str().unwrap();
    assert_eq!(body["request_id"], id, "the problem quotes the request id");
}

#[tokio::test]
async fn well_formed_json_reaches_the_handler() {
    let res = app()
        .oneshot(post_json(r#"{"name":"w","size":3,"colour":"red"}"#))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400() {
    let (s, h, b) = send(app(), post_json("{not json")).await;
    assert_problem(s, &h, &b, StatusCode::BAD_REQUEST, "bad-request");
}

#[tokio::test]
async fn wrong_types_missing_fields_and_unknown_enum_values_are_422() {
    for body in [
        r#"{"name":"w","size":"three","colour":"red"}"#,
        r#"{"name":"w","colour":"red"}"#,
        r#"{"name":"w","size":3,"colour":"mauve"}"#,
        r#"{"name":"w","size":-1,"colour":"red"}"#,
        r#"[1,2,3]"#,
    ] {
        let (s, h, b) = send(app(), post_json(body)).await;
        assert_problem(s, &h, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation");
        assert!(
            b["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "field errors for {body}: {b}"
        );
    }
}

#[tokio::test]
async fn a_missing_json_content_type_is_415() {
    let req = Request::post("/widgets")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(r#"{"name":"w","size":3,"colour":"red"}"#))
        .unwrap();
    let (s, h, b) = send(app(), req).await;
    assert_problem(
        s,
        &h,
        &b,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
}

#[tokio::test]
async fn an_oversized_body_is_413_with_or_without_a_length() {
    let big = format!(
        r#"{{"name":"{}","size":3,"colour":"red"}}"#,
        "x".repeat(4096)
    );
    let (s, h, b) = send(app(), post_json(&big)).await;
    assert_problem(
        s,
        &h,
        &b,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
    );

    // Streamed without Content-Length: the limit still applies while reading.
    let stream = chunked(big.into_bytes());
    let req = Request::post("/widgets")
        .header(header::CONTENT_TYPE, "application/json")
        .body(stream)
        .unwrap();
    let (s, h, b) = send(app(), req).await;
    assert_problem(
        s,
        &h,
        &b,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
    );
}

fn chunked(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(512).map(|c| Ok(c.to_vec())).collect();
    Body::from_stream(futures::stream::iter(chunks))
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_problem_without_the_panic_text() {
    let (s, h, b) = send(app(), Request::get("/explode").body(Body::empty()).unwrap()).await;
    assert_problem(s, &h, &b, StatusCode::INTERNAL_SERVER_ERROR, "internal");
    assert!(
        !b.to_string().contains("boom"),
        "internals are not leaked: {b}"
    );
}

#[tokio::test]
async fn a_stalled_request_times_out_as_a_503_problem() {
    let (s, h, b) = send(app(), Request::get("/stall").body(Body::empty()).unwrap()).await;
    assert_problem(s, &h, &b, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems() {
    let (s, h, b) = send(app(), Request::get("/nowhere").body(Body::empty()).unwrap()).await;
    assert_problem(s, &h, &b, StatusCode::NOT_FOUND, "not-found");
    let (s, h, b) = send(
        app(),
        Request::delete("/widgets").body(Body::empty()).unwrap(),
    )
    .await;
    assert_problem(
        s,
        &h,
        &b,
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
    );
    assert!(h.contains_key(header::ALLOW), "405 says what is allowed");
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_an_insane_one_replaced() {
    let req = Request::get("/nowhere")
        .header("x-request-id", "trace-abc_123.4:5")
        .body(Body::empty())
        .unwrap();
    let (_, h, b) = send(app(), req).await;
    assert_eq!(h["x-request-id"], "trace-abc_123.4:5");
    assert_eq!(b["request_id"], "trace-abc_123.4:5");

    for bad in ["has space", &"x".repeat(200), "semi;colon"] {
        let req = Request::get("/nowhere")
            .header("x-request-id", bad)
            .body(Body::empty())
            .unwrap();
        let (_, h, _) = send(app(), req).await;
        let id = h["x-request-id"].to_str().unwrap();
        assert_ne!(id, bad);
        assert!(
            uuid::Uuid::parse_str(id).is_ok(),
            "a fresh id replaces `{bad}`"
        );
    }
}

#[tokio::test]
async fn security_headers_are_on_every_response_and_hsts_only_in_production() {
    let (_, h, _) = send(app(), Request::get("/nowhere").body(Body::empty()).unwrap()).await;
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h.contains_key("referrer-policy"));
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(!h.contains_key("strict-transport-security"));

    let prod = settings(|raw| {
        raw.environment = ruleiq_config::raw::Text("production".into());
        raw.jwt_secret_key = Some(ruleiq_config::raw::Text("j".repeat(40)));
        raw.secret_key = Some(ruleiq_config::raw::Text("s".repeat(40)));
    });
    let (app, _) = app_with(&prod);
    let (_, h, _) = send(app, Request::get("/nowhere").body(Body::empty()).unwrap()).await;
    assert!(
        h["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
}

#[tokio::test]
async fn cors_answers_allowed_origins_only() {
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/widgets")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(Body::empty())
            .unwrap()
    };
    let res = app()
        .oneshot(preflight("https://app.example"))
        .await
        .unwrap();
    assert_eq!(
        res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    assert_eq!(
        res.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS],
        "true"
    );
    let res = app()
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    assert!(
        !res.headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
}

#[tokio::test]
async fn requests_are_counted_by_matched_route_not_raw_path() {
    let (app, metrics) = app_with(&settings(|_| {}));
    app.clone()
        .oneshot(post_json(r#"{"name":"w","size":3,"colour":"red"}"#))
        .await
        .unwrap();
    app.oneshot(Request::get("/nowhere/123").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = metrics.render();
    assert!(
        text.contains(r#"http_requests_total{method="POST",route="/widgets",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    assert!(
        !text.contains("/nowhere/123"),
        "raw paths never become labels"
    );
    assert!(text.contains("http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn requests_enter_the_performance_window_unless_it_is_turned_off() {
    let (app, metrics) = app_with(&settings(|_| {}));
    for _ in 0..3 {
        app.clone()
            .oneshot(post_json(r#"{"name":"w","size":3,"colour":"red"}"#))
            .await
            .unwrap();
    }
    app.oneshot(Request::get("/explode").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let report = metrics.performance().unwrap().report();
    assert_eq!(report.total_requests, 4);
    let widgets = report
        .routes
        .iter()
        .find(|r| r.route == "/widgets")
        .unwrap();
    assert_eq!((widgets.method.as_str(), widgets.count), ("POST", 3));
    let explode = report
        .routes
        .iter()
        .find(|r| r.route == "/explode")
        .unwrap();
    assert_eq!(explode.error_rate, 1.0, "a panic answers 500");

    let off = Metrics::new().with_performance(false);
    let routes = Router::new().route("/explode", get(explode_ok));
    let app = with_middleware(routes, &settings(|_| {}), off.clone());
    app.oneshot(Request::get("/explode").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(off.performance().is_none());
    assert!(off.render().contains("http_requests_total"));
}

async fn explode_ok() -> &'static str {
    "fine"
}
