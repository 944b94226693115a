//! Failing fast while the database is unreachable, and reopening by itself.
//!
//! When PostgreSQL restarts (or the SQLite file's disk goes away), every request that
//! needs the database would otherwise wait out the pool's acquire timeout and end in a
//! 500. Instead, the first server error is followed by a short ping: if the database
//! does not answer, that request becomes a 503 and the gate closes, so later requests
//! are answered 503 at once (with `Retry-After`) without touching the pool. A probe
//! pings in the background and opens the gate as soon as the database answers again;
//! nothing needs restarting. Health, metrics and the stylesheet stay reachable, so a
//! load balancer and an operator can see what is going on.

use crate::{problem::Problem, state::AppState};
use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Response},
};
use ruleiq_db::DatabaseConnection;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

/// How long a ping may take before the database counts as unreachable. A healthy
/// database answers in well under a millisecond; a busy one within this.
const PING_TIMEOUT: Duration = Duration::from_millis(750);

/// How often the probe pings while the gate is closed: the most a recovered database
/// waits to be used again.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// What clients are told to wait before trying again, in seconds.
const RETRY_AFTER_SECONDS: &str = "2";

const DETAIL: &str = "ruleIQ cannot reach its database just now. It reconnects by itself; try again in a few seconds.";

/// Whether the database is reachable, as last seen.
#[derive(Debug)]
pub struct DbGate {
    db: DatabaseConnection,
    closed: AtomicBool,
    probing: AtomicBool,
    turned_away: AtomicU64,
}

impl DbGate {
    /// An open gate over `db`.
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Arc<Self> {
        Arc::new(Self {
            db,
            closed: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            turned_away: AtomicU64::new(0),
        })
    }

    /// Whether requests are being turned away.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Requests answered 503 because the database was unreachable, since start-up.
    #[must_use]
    pub fn turned_away(&self) -> u64 {
        self.turned_away.load(Ordering::Relaxed)
    }

    async fn answers(&self) -> bool {
        matches!(
            tokio::time::timeout(PING_TIMEOUT, self.db.ping()).await,
            Ok(Ok(()))
        )
    }

    /// After a server error: closes the gate (and starts the probe) when the
    /// database does not answer; whether it was closed.
    async fn check(self: &Arc<Self>) -> bool {
        if self.answers().await {
            return false;
        }
        if !self.closed.swap(true, Ordering::AcqRel) {
            tracing::error!("the database is not answering; requests get 503 until it does");
        }
        if !self.probing.swap(true, Ordering::AcqRel) {
            let gate = Arc::clone(self);
            tokio::spawn(async move {
                let down = std::time::Instant::now();
                loop {
                    tokio::time::sleep(PROBE_EVERY).await;
                    if gate.answers().await {
                        break;
                    }
                }
                gate.closed.store(false, Ordering::Release);
                gate.probing.store(false, Ordering::Release);
                tracing::warn!(
                    after_ms = down.elapsed().as_millis() as u64,
                    "the database answers again; requests are served"
                );
            });
        }
        true
    }
}

/// Paths served while the gate is closed (or the server is at capacity): they say
/// how things stand, and cost next to nothing.
pub(crate) fn exempt(path: &str, api_prefix: &str) -> bool {
    path == "/metrics"
        || path.starts_with("/static/")
        || path
            .strip_prefix(api_prefix)
            .is_some_and(|rest| rest == "/health" || rest.starts_with("/health/"))
}

/// The middleware: turns requests away while the gate is closed, and closes it
/// when a server error came from an unreachable database.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let gate = &state.db_gate;
    let prefix = &state.settings.server.api_v1_prefix;
    let api = req.uri().path().starts_with(prefix.as_str());
    if exempt(req.uri().path(), prefix) {
        return next.run(req).await;
    }
    if gate.is_closed() {
        gate.turned_away.fetch_add(1, Ordering::Relaxed);
        return unavailable(api, DETAIL, RETRY_AFTER_SECONDS);
    }
    let response = next.run(req).await;
    if response.status().is_server_error()
        && response.status() != StatusCode::SERVICE_UNAVAILABLE
        && gate.check().await
    {
        // The error report (an inner layer) has seen the original failure; the
        // client is told the truth about it.
        let cause = response
            .extensions()
            .get::<crate::error_reports::ErrorCause>()
            .cloned();
        let mut turned = unavailable(api, DETAIL, RETRY_AFTER_SECONDS);
        if let Some(cause) = cause {
            turned.extensions_mut().insert(cause);
        }
        return turned;
    }
    response
}

/// A 503 saying `detail`, as a problem for the API and a page for a browser, with
/// `Retry-After` in seconds.
pub(crate) fn unavailable(api: bool, detail: &str, retry_after: &'static str) -> Response {
    let mut response = if api {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail).into_response_with_status()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Html(format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Unavailable — ruleIQ</title>\
                 <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main><h1>Back in a moment</h1>\
                 <p>{detail}</p></main></body></html>"
            )),
        )
            .into_response()
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(retry_after));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_metrics_and_the_stylesheet_stay_reachable() {
        assert!(exempt("/api/v1/health", "/api/v1"));
        assert!(exempt("/api/v1/health/ready", "/api/v1"));
        assert!(exempt("/metrics", "/api/v1"));
        assert!(exempt("/static/app.css", "/api/v1"));
        assert!(!exempt("/api/v1/frameworks", "/api/v1"));
        assert!(!exempt("/dashboard", "/api/v1"));
        assert!(!exempt("/api/v1/healthy", "/api/v1"));
    }
}
