//! Shedding load the server cannot keep up with.
//!
//! Past its capacity a server that accepts every request only makes each one slower:
//! ten times the clients meant ten times the latency for everybody, and requests that
//! waited out their timeout. Instead at most `MAX_CONCURRENT_REQUESTS` are handled at
//! once, and a request beyond them is answered 503 with `Retry-After` at once, costing
//! microseconds; those admitted keep their usual speed. A permit is held until the
//! handler has its response (a streamed body then flows without one). Health, metrics
//! and the stylesheet are never shed, so a load balancer and an operator can still
//! see what is happening.

use crate::state::AppState;
use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};
use tokio::sync::Semaphore;

const DETAIL: &str =
    "ruleIQ is handling as many requests as it can just now; try again in a moment.";

/// How many requests are in hand, and how many were turned away.
#[derive(Debug)]
pub struct Shedder {
    permits: Arc<Semaphore>,
    limit: usize,
    shed: AtomicU64,
}

impl Shedder {
    /// Admits at most `limit` requests at once.
    #[must_use]
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            shed: AtomicU64::new(0),
        })
    }

    /// The most requests handled at once.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Requests being handled now.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.limit - self.permits.available_permits()
    }

    /// Requests answered 503 because the server was at capacity, since start-up.
    #[must_use]
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }
}

/// The middleware: admits a request while there is room, and sheds it otherwise.
pub async fn admit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let prefix = &state.settings.server.api_v1_prefix;
    if crate::db_gate::exempt(req.uri().path(), prefix) {
        return next.run(req).await;
    }
    let shedder = &state.shedder;
    match Arc::clone(&shedder.permits).try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(req).await;
            drop(permit);
            response
        }
        Err(_) => {
            shedder.shed.fetch_add(1, Ordering::Relaxed);
            let api = req.uri().path().starts_with(prefix.as_str());
            crate::db_gate::unavailable(api, DETAIL, "1")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_counts_the_permits_taken() {
        let shedder = Shedder::new(2);
        assert_eq!(shedder.in_flight(), 0);
        let one = Arc::clone(&shedder.permits).try_acquire_owned().unwrap();
        let two = Arc::clone(&shedder.permits).try_acquire_owned().unwrap();
        assert_eq!(shedder.in_flight(), 2);
        assert!(Arc::clone(&shedder.permits).try_acquire_owned().is_err());
        drop((one, two));
        assert_eq!(shedder.in_flight(), 0);
    }
}
