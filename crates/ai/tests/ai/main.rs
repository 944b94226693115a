//! Integration tests: every remote provider against a mock of its real API
//! (wiremock), plus raw sockets for streams that break half-way.

// In tests a panic is the failure report; clippy's test exemption does not reach
// the helper functions of an integration-test binary.
#![allow(clippy::unwrap_used)]

mod cases;
mod fallback;
mod helpers;
mod providers;
mod streams;
