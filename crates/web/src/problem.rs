//! Errors at the edge: RFC 9457 problem documents.
//!
//! Every error response of the API is `application/problem+json` with a `type` URI
//! under `https://ruleiq.dev/problems/`, a `title`, the `status`, a `detail` a person
//! can act on, and the `request_id` to quote to an operator. Handlers return
//! [`ApiError`]; everything else that can go wrong before a handler runs (unknown
//! route, wrong method, oversized or malformed body, timeout, panic) is turned into
//! the same shape by [`crate::middleware::problem_details`]. Internal causes are
//! logged, never sent.

use axum::{
    Json,
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use utoipa::ToSchema;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The base of every problem `type`.
pub const PROBLEM_BASE: &str = "https://ruleiq.dev/problems/";

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// The field, as a dotted path into the request body.
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// `https://ruleiq.dev/problems/<slug>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request's `X-Request-ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    /// A problem for `status` with the slug and title that status carries.
    #[must_use]
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        let (slug, title) = slug_and_title(status);
        Self {
            kind: format!("{PROBLEM_BASE}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            request_id: None,
            errors: Vec::new(),
        }
    }

    /// The default problem for a bare error status from a layer or the router.
    #[must_use]
    pub fn for_status(status: StatusCode) -> Self {
        let detail = match status {
            StatusCode::NOT_FOUND => "No resource exists at this path.",
            StatusCode::METHOD_NOT_ALLOWED => {
                "This path does not accept that method; the Allow header lists those it does."
            }
            StatusCode::PAYLOAD_TOO_LARGE => "The request body is larger than this server accepts.",
            StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => {
                "The server could not answer in time; try again shortly."
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "The request body's media type is not accepted here."
            }
            StatusCode::INTERNAL_SERVER_ERROR => {
                "Something went wrong on our side; quote the request id when reporting it."
            }
            _ => status
                .canonical_reason()
                .unwrap_or("The request could not be handled."),
        };
        Self::new(status, detail)
    }

    /// The response carrying this problem.
    #[must_use]
    pub fn into_response_with_status(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.into_response_with_status()
    }
}

/// The slug and title of each status the API uses (API.md's list), and a derived
/// pair for any other.
fn slug_and_title(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("bad-request", "Bad request"),
        401 => ("unauthorized", "Unauthorized"),
        403 => ("forbidden", "Forbidden"),
        404 => ("not-found", "Not found"),
        405 => ("method-not-allowed", "Method not allowed"),
        408 => ("timeout", "Request timeout"),
        409 => ("conflict", "Conflict"),
        410 => ("gone", "Gone"),
        413 => ("payload-too-large", "Payload too large"),
        415 => ("unsupported-media-type", "Unsupported media type"),
        422 => ("validation", "Validation failed"),
        423 => ("account-locked", "Account locked"),
        429 => ("rate-limited", "Too many requests"),
        503 => ("unavailable", "Service unavailable"),
        500..=599 => ("internal", "Internal server error"),
        _ => ("bad-request", "Bad request"),
    }
}

/// The error type every handler returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    Validation {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Locked(String),
    /// Existed, but has been removed for good (an expired report's file).
    #[error("{0}")]
    Gone(String),
    /// A failure on our side. The message is logged, the client sees a generic detail.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A 500 from any error, logged with its cause.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Locked(_) => StatusCode::LOCKED,
            Self::Gone(_) => StatusCode::GONE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // The cause goes to the log and to the error report, never to the client.
        let cause = status
            .is_server_error()
            .then(|| crate::error_reports::ErrorCause(self.to_string()));
        let problem = match self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Problem::for_status(status)
            }
            Self::Validation { detail, errors } => Problem {
                errors,
                ..Problem::new(status, detail)
            },
            other => Problem::new(status, other.to_string()),
        };
        let mut response = problem.into_response();
        if let Some(cause) = cause {
            response.extensions_mut().insert(cause);
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => {
                let text = e.body_text();
                // serde's message after axum's prefix names the field and the problem.
                let message = text
                    .split_once(": ")
                    .map_or(text.as_str(), |(_, rest)| rest)
                    .to_owned();
                let field = message
                    .split_once(": ")
                    .map(|(path, _)| path.to_owned())
                    .filter(|p| !p.contains(' '))
                    .unwrap_or_else(|| "body".to_owned());
                Self::Validation {
                    detail: format!(
                        "The request body does not match the expected shape: {message}"
                    ),
                    errors: vec![FieldError { field, message }],
                }
            }
            JsonRejection::JsonSyntaxError(e) => Self::BadRequest(format!(
                "The request body is not valid JSON: {}",
                e.body_text()
            )),
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType(
                "Send the body as JSON with `Content-Type: application/json`.".into(),
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge("The request body is larger than this server accepts.".into())
            }
            other => Self::BadRequest(other.body_text()),
        }
    }
}

/// `Json<T>` whose rejections are problem documents: 400 for a body that is not JSON,
/// 415 for a missing JSON content type, 413 for an oversized body, 422 for JSON of the
/// wrong shape (missing field, wrong type, unknown enum value).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The body is read first to look for an escaped NUL (`\u0000`): valid JSON, but
        // PostgreSQL refuses NUL in text, so a string carrying one would fail deep in a
        // handler as a 500. Then axum's own extractor checks the type and parses.
        let (parts, body) = req.into_parts();
        // The body limit travels in the extensions.
        let mut reading = Request::new(body);
        *reading.extensions_mut() = parts.extensions.clone();
        let bytes = axum::body::Bytes::from_request(reading, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Self::Rejection::PayloadTooLarge(
                        "The request body is larger than this server accepts.".into(),
                    )
                } else {
                    Self::Rejection::BadRequest(e.body_text())
                }
            })?;
        if has_escaped_nul(&bytes) {
            let message = "strings must not contain a NUL character (\\u0000)".to_owned();
            return Err(ApiError::Validation {
                detail: format!("The request body is not valid: {message}"),
                errors: vec![FieldError {
                    field: "body".into(),
                    message,
                }],
            });
        }
        let rebuilt = Request::from_parts(parts, axum::body::Body::from(bytes));
        let Json(value) = Json::<T>::from_request(rebuilt, state).await?;
        Ok(Self(value))
    }
}

/// Whether JSON text holds a `\u0000` escape (one whose backslash is not itself
/// escaped), the only way JSON can carry a NUL.
fn has_escaped_nul(json: &[u8]) -> bool {
    json.windows(6).enumerate().any(|(i, w)| {
        w == b"\\u0000" && json[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
    })
}

/// `Query<T>` whose rejection is a 422 problem naming the parameter problem, as for a
/// mistyped JSON field.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state)
                .await
                .map_err(|e| {
                    let text = e.body_text();
                    let message = text
                        .split_once(": ")
                        .map_or(text.as_str(), |(_, rest)| rest)
                        .to_owned();
                    ApiError::Validation {
                        detail: format!("The query string is not valid: {message}"),
                        errors: vec![FieldError {
                            field: "query".into(),
                            message,
                        }],
                    }
                })?;
        Ok(Self(value))
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

impl From<ruleiq_services::identity::IdentityError> for ApiError {
    fn from(e: ruleiq_services::identity::IdentityError) -> Self {
        use ruleiq_services::identity::IdentityError as E;
        match e {
            E::Invalid { field, message } => Self::Validation {
                detail: format!("{field}: {message}"),
                errors: vec![FieldError {
                    field: field.to_owned(),
                    message,
                }],
            },
            E::EmailTaken => Self::Conflict(e.to_string()),
            E::NotFound(_) => Self::NotFound(e.to_string()),
            E::NotAllowed(message) => Self::Forbidden(message),
            E::Conflict(message) => Self::Conflict(message),
            E::BadCredentials | E::InvalidToken | E::RefreshReused | E::Deactivated => {
                Self::Unauthorized(e.to_string())
            }
            E::Locked { .. } => Self::Locked(e.to_string()),
            E::Database(db) => Self::internal(db),
            E::Internal(message) => Self::Internal(message),
        }
    }
}

impl From<ruleiq_services::identity::Forbidden> for ApiError {
    fn from(e: ruleiq_services::identity::Forbidden) -> Self {
        Self::Forbidden(e.to_string())
    }
}

impl From<ruleiq_db::DbErr> for ApiError {
    fn from(e: ruleiq_db::DbErr) -> Self {
        Self::internal(e)
    }
}

#[cfg(test)]
mod nul_tests {
    use super::has_escaped_nul;

    #[test]
    fn an_escaped_nul_is_found_and_an_escaped_backslash_is_not_one() {
        assert!(has_escaped_nul(br#"{"title": "a\u0000b"}"#));
        assert!(has_escaped_nul(br#"{"title": "a\\\u0000b"}"#));
        assert!(!has_escaped_nul(br#"{"title": "a\\u0000b"}"#));
        assert!(!has_escaped_nul(br#"{"title": "a\u0001b"}"#));
    }
}
