//! OpenTelemetry export: with `--features otel` and an OTLP endpoint set, each
//! request's span reaches the endpoint over OTLP/HTTP (protobuf) with the service's
//! name; without the feature, the server says the variable does nothing.

use crate::cli::Served;
use ruleiq_test_support::TestDatabase;
#[cfg(feature = "otel")]
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

#[cfg(feature = "otel")]
fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[cfg(feature = "otel")]
#[tokio::test]
async fn request_spans_reach_the_otlp_endpoint() {
    let collector = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&collector)
        .await;
    let db = TestDatabase::new().await;
    let endpoint = collector.uri();
    let served = Served::start(
        &db,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "ruleiq-otel-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let res = reqwest::get(served.url("/api/v1/frameworks"))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Stopping flushes what is still batched.
    let (ok, stderr) = served.terminate().await;
    assert!(ok, "{stderr}");
    let exports: Vec<_> = collector
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/v1/traces")
        .collect();
    assert!(!exports.is_empty(), "no spans were exported: {stderr}");
    for export in &exports {
        assert_eq!(
            export
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/x-protobuf")
        );
    }
    let body: Vec<u8> = exports.iter().flat_map(|r| r.body.clone()).collect();
    assert!(contains(&body, "ruleiq-otel-test"), "the service name");
    assert!(contains(&body, "/api/v1/frameworks"), "the request's path");
    assert!(contains(&body, "request"), "the request span");
}

#[cfg(not(feature = "otel"))]
#[tokio::test]
async fn without_the_feature_an_otlp_endpoint_is_named_as_doing_nothing() {
    let db = TestDatabase::new().await;
    let served = Served::start(
        &db,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")],
    )
    .await;
    let (ok, stderr) = served.terminate().await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("build with `--features otel` to send spans"),
        "{stderr}"
    );
}
