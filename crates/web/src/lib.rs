//! ruleIQ over HTTP.
//!
//! [`router`] builds the whole application: the JSON API under `API_V1_PREFIX`, its
//! OpenAPI document and browsable UI, `/metrics`, and the middleware every response
//! passes through (request ids, tracing, limits, CORS, security headers, and RFC 9457
//! problem documents for every error). Handlers are thin: extract, call one service
//! method, map to a response type.

pub mod api;
pub mod cache;
pub mod db_gate;
pub mod error_reports;
pub mod extract;
pub mod markdown;
pub mod metrics;
pub mod middleware;
pub mod problem;
pub mod ratelimit;
pub mod shed;
pub mod state;
mod ui;
pub mod upload;

pub use api::{openapi, router};
pub use problem::{ApiError, Problem};
pub use state::AppState;
