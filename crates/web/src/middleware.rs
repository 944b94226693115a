//! The layers every request passes through, in the order [`crate::router`] stacks them.

use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;
use std::time::Instant;

use crate::{
    metrics::Metrics,
    problem::{PROBLEM_JSON, Problem},
};

/// The request id header.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-supplied request id we keep.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a caller's request id is safe to echo into logs and headers: short, and
/// only characters that cannot forge log lines or headers.
#[must_use]
pub fn is_sane_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Makes request ids: random (version 4) UUIDs drawn from the thread's CSPRNG, which
/// avoids a system call per request that the operating-system source would cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeRandomRequestId;

impl tower_http::request_id::MakeRequestId for MakeRandomRequestId {
    fn make_request_id<B>(
        &mut self,
        _: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let mut bytes = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let value = HeaderValue::from_str(&id.hyphenated().to_string()).ok()?;
        Some(tower_http::request_id::RequestId::new(value))
    }
}

/// Drops a caller's request id that is not sane, so the next layer makes a new one.
pub async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    if let Some(value) = req.headers().get(&X_REQUEST_ID)
        && !is_sane_request_id(value)
    {
        req.headers_mut().remove(&X_REQUEST_ID);
    }
    next.run(req).await
}

/// Refuses a NUL byte (`%00`) anywhere in the path or query string: it is never
/// meaningful there, and PostgreSQL refuses it in text, so it would reach a handler
/// only to fail as a 500 (schemathesis found `GET /evidence?q=%00`). A query gets 422,
/// a path 404 — no resource has such a name.
pub async fn refuse_nul(req: Request, next: Next) -> Response {
    let uri = req.uri();
    if uri.query().is_some_and(|q| q.contains("%00")) {
        let message = "must not contain a NUL character (%00)".to_owned();
        return Problem {
            errors: vec![crate::problem::FieldError {
                field: "query".into(),
                message: message.clone(),
            }],
            ..Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("The query string is not valid: {message}"),
            )
        }
        .into_response_with_status();
    }
    if uri.path().contains("%00") {
        return Problem::for_status(StatusCode::NOT_FOUND).into_response_with_status();
    }
    next.run(req).await
}

/// Records each request's count and latency, labelled by matched route (never the raw
/// path, which would give every id its own series) and status.
pub async fn record_metrics(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    metrics.record_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Largest problem body we will rewrite; anything bigger is passed through as is.
const MAX_PROBLEM_BODY: usize = 64 * 1024;

/// Makes every error response a problem document carrying the request id.
///
/// Handlers already answer with problems; this adds their `request_id`, and replaces the
/// bare bodies that the router (404, 405) and tower layers (413, timeouts) produce.
/// A JSON body that is not a problem is a deliberate answer (the health report at 503),
/// as is an HTML page (a form shown again with its error); both pass unchanged.
pub async fn problem_details(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let is_problem = content_type.starts_with(PROBLEM_JSON.as_bytes());
    // A deliberate JSON body (health's 503 report) is the answer itself: keep it.
    if !is_problem
        && (content_type.starts_with(b"application/json") || content_type.starts_with(b"text/html"))
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let mut problem = if is_problem {
        match http_body_util::Limited::new(body, MAX_PROBLEM_BODY)
            .collect()
            .await
        {
            Ok(collected) => serde_json::from_slice::<Problem>(&collected.to_bytes())
                .unwrap_or_else(|_| Problem::for_status(status)),
            Err(_) => Problem::for_status(status),
        }
    } else {
        Problem::for_status(status)
    };
    if problem.request_id.is_none() {
        problem.request_id = request_id;
    }
    remove_body_headers(&mut parts.headers);
    let mut rebuilt = problem.into_response();
    *rebuilt.status_mut() = status;
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE {
            rebuilt.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rebuilt
}

fn remove_body_headers(headers: &mut HeaderMap) {
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::CONTENT_ENCODING);
    headers.remove(header::TRANSFER_ENCODING);
}

/// Content-Security-Policy of the JSON API: it serves no active content.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
/// Content-Security-Policy of our pages: our own scripts and styles only.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Security headers on every response. A response that set its own policy keeps it.
pub async fn security_headers(State(hsts): State<bool>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let headers = response.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("strict-origin-when-cross-origin"));
    headers
        .entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(if is_html {
            PAGE_CSP
        } else {
            API_CSP
        }));
    if hsts {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static(
                "max-age=31536000; includeSubDomains",
            ));
    }
    response
}

/// The 500 answer to a panic inside a handler. The panic itself is logged; the client
/// sees only that something failed and the request id (added by [`problem_details`]).
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let message = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(non-text panic payload)");
    tracing::error!(panic = message, "handler panicked");
    Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
}

/// Body-size limits by route: JSON everywhere, except the routes that take files.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    /// `MAX_JSON_BODY_SIZE`.
    pub json: u64,
    /// `MAX_UPLOAD_SIZE` plus room for a multipart envelope, for the paths in
    /// `upload_paths` (a `*` segment matches any one segment).
    pub upload: u64,
    pub upload_paths: Vec<String>,
    /// `API_V1_PREFIX`: paths outside it are pages, answered in HTML.
    pub api_prefix: String,
}

/// Whether `path` fits `pattern`, where a `*` segment stands for any one segment.
fn path_matches(pattern: &str, path: &str) -> bool {
    let (mut a, mut b) = (pattern.split('/'), path.split('/'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) if p == "*" || p == s => {}
            _ => return false,
        }
    }
}

/// Refuses a request whose declared length is over its route's limit with 413,
/// before any of the body is read. A body without a declared length is bounded while
/// it is read: by `MAX_JSON_BODY_SIZE` in every extractor (`DefaultBodyLimit`), and by
/// `MAX_UPLOAD_SIZE` where an upload route reads the raw body itself.
pub async fn declared_body_limit(
    State(limits): State<std::sync::Arc<BodyLimits>>,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = if limits
        .upload_paths
        .iter()
        .any(|p| path_matches(p, req.uri().path()))
    {
        limits.upload
    } else {
        limits.json
    };
    if declared.is_some_and(|n| n > limit) {
        // A page's form gets a page back, not a JSON document.
        if !req.uri().path().starts_with(&limits.api_prefix) {
            let page = format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>File too large</title></head>\
                 <body><main><h1>That file is too large</h1><p>Files may be at most {} MB. \
                 <a href=\"javascript:history.back()\">Go back</a> and choose a smaller file.</p></main></body></html>",
                limits.upload.saturating_sub(crate::upload::MULTIPART_SLACK) / (1024 * 1024)
            );
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                page,
            )
                .into_response();
        }
        return Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE).into_response();
    }
    next.run(req).await
}
