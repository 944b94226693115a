//! Reports panics and 5xx answers of the routes to Sentry, when `SENTRY_DSN` is set.
//! What an event may contain is decided in [`ruleiq_services::error_reports`].

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use ruleiq_services::error_reports::{
    ErrorEvent, ErrorKind, ErrorReporter, REQUEST, ReporterIdentity, RequestFacts,
    install_panic_hook,
};

use crate::middleware::X_REQUEST_ID;

/// Why a request failed, attached to a 5xx response by the code that chose the status,
/// so that the report says more than "500".
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

/// Serves the request with its facts in [`REQUEST`], so that a panic inside it is
/// reported with its route and request id, and reports a 5xx answer it returns.
pub async fn report_server_errors(
    State(reporter): State<ErrorReporter>,
    req: Request,
    next: Next,
) -> Response {
    let facts = RequestFacts {
        method: req.method().to_string(),
        route: req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned()),
        request_id: req
            .headers()
            .get(&X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let response = REQUEST
        .scope((reporter.clone(), facts.clone()), next.run(req))
        .await;
    let status = response.status();
    if status.is_server_error() {
        let message = response
            .extensions()
            .get::<ErrorCause>()
            .map_or_else(|| format!("answered {status}"), |cause| cause.0.clone());
        reporter.report(ErrorEvent {
            kind: ErrorKind::ServerError,
            message,
            location: None,
            request: Some(facts),
            status: Some(status.as_u16()),
        });
    }
    response
}

/// The reporter for this application's settings, started on the current runtime, with
/// the panic hook installed; `None` without `SENTRY_DSN`.
#[must_use]
pub fn start_reporter(settings: &ruleiq_config::Settings) -> Option<ErrorReporter> {
    let dsn = settings.monitoring.sentry_dsn.clone()?;
    let reporter = ErrorReporter::start(
        dsn,
        ReporterIdentity {
            release: format!("ruleiq@{}", crate::state::VERSION),
            environment: settings.environment.to_string(),
        },
    )?;
    // Panics outside any request (a job, a background task) go to the first
    // application's reporter; inside a request, to the serving application's.
    install_panic_hook(Some(reporter.clone()));
    Some(reporter)
}

#[cfg(test)]
mod tests {
    use axum::{
        Router,
        body::{Body, Bytes},
        http::{HeaderMap, Request as HttpRequest, StatusCode},
        middleware::from_fn_with_state,
        routing::{get, post},
    };
    use serde_json::Value;
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };
    use tower::ServiceExt;

    use super::*;
    use crate::{api::with_middleware, metrics::Metrics, problem::ApiError};

    #[allow(clippy::panic)]
    async fn explode() -> &'static str {
        panic!("the widget table is upside down")
    }

    async fn fail() -> Result<&'static str, ApiError> {
        Err(ApiError::Internal(
            "database said no for ann@example.co.uk with token=abc".into(),
        ))
    }

    async fn missing() -> Result<&'static str, ApiError> {
        Err(ApiError::NotFound("no such widget".into()))
    }

    type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

    /// A local Sentry: keeps every envelope posted to project 7.
    async fn local_sentry() -> (std::net::SocketAddr, Received) {
        let received: Received = Arc::default();
        let keep = received.clone();
        let sink = Router::new().route(
            "/api/7/envelope/",
            post(move |headers: HeaderMap, body: Bytes| {
                let keep = keep.clone();
                async move {
                    keep.lock().unwrap().push((headers, body));
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, sink).await });
        (addr, received)
    }

    /// The event of the envelope whose request id is `id`, once it has arrived.
    async fn event_for(received: &Received, id: &str) -> (HeaderMap, Value) {
        for _ in 0..200 {
            let found = received.lock().unwrap().iter().find_map(|(headers, body)| {
                let text = std::str::from_utf8(body).ok()?;
                let event: Value = serde_json::from_str(text.lines().nth(2)?).ok()?;
                (event["tags"]["request_id"] == id).then(|| (headers.clone(), event))
            });
            if let Some(found) = found {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no report for request {id}");
    }

    #[tokio::test]
    async fn a_panic_and_an_internal_error_are_reported_once_each_with_route_and_request_id() {
        let (addr, received) = local_sentry().await;
        let mut raw = ruleiq_config::RawSettings::default();
        raw.sentry_dsn = Some(ruleiq_config::raw::Text(format!("http://k3y@{addr}/7")));
        let settings = ruleiq_config::Settings::from_raw(raw).unwrap();
        let reporter = start_reporter(&settings).expect("a reporter for a DSN");
        let routes = Router::new()
            .route("/widgets/{id}/explode", get(explode))
            .route("/fail", get(fail))
            .route("/missing", get(missing))
            .layer(from_fn_with_state(reporter, report_server_errors));
        let app = with_middleware(routes, &settings, Metrics::new());

        let mut ids = Vec::new();
        for (uri, status) in [
            ("/widgets/42/explode", StatusCode::INTERNAL_SERVER_ERROR),
            ("/fail", StatusCode::INTERNAL_SERVER_ERROR),
            ("/missing", StatusCode::NOT_FOUND),
        ] {
            let res = app
                .clone()
                .oneshot(HttpRequest::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), status, "{uri}");
            ids.push(res.headers()[&X_REQUEST_ID].to_str().unwrap().to_owned());
        }

        let (headers, panic) = event_for(&received, &ids[0]).await;
        let auth = headers["x-sentry-auth"].to_str().unwrap();
        assert!(auth.contains("sentry_key=k3y"), "{auth}");
        assert_eq!(
            headers["content-type"], "application/x-sentry-envelope",
            "{headers:?}"
        );
        assert_eq!(panic["level"], "fatal");
        assert_eq!(panic["exception"]["values"][0]["type"], "panic");
        let value = panic["exception"]["values"][0]["value"].as_str().unwrap();
        assert!(value.contains("the widget table is upside down"), "{value}");
        assert!(
            value.contains("error_reports.rs:"),
            "where it panicked: {value}"
        );
        assert_eq!(panic["tags"]["route"], "/widgets/{id}/explode");
        assert_eq!(
            panic["release"],
            format!("ruleiq@{}", crate::state::VERSION)
        );

        let (_, internal) = event_for(&received, &ids[1]).await;
        assert_eq!(internal["exception"]["values"][0]["type"], "server_error");
        let value = internal["exception"]["values"][0]["value"]
            .as_str()
            .unwrap();
        assert_eq!(
            value,
            "database said no for [redacted] with token=[redacted]"
        );

        // Each once; and the 404 not at all.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let all = received.lock().unwrap().clone();
        let count = |id: &str| {
            all.iter()
                .filter(|(_, b)| std::str::from_utf8(b).unwrap().contains(id))
                .count()
        };
        assert_eq!(count(&ids[0]), 1);
        assert_eq!(count(&ids[1]), 1);
        assert_eq!(count(&ids[2]), 0);
    }
}
