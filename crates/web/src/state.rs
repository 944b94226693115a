//! The one state object every handler receives.

use ruleiq_config::Settings;
use ruleiq_db::DatabaseConnection;
use ruleiq_services::{
    audit::Audit, frameworks::Catalog, identity::Identity, jobs::Jobs, monitoring::Monitor,
    monitoring::queries::QueryLog, profiles::Profiles, ratelimit::RateLimiter, search::SearchIndex,
};
use std::{ops::Deref, sync::Arc, time::Instant};

use crate::metrics::Metrics;

/// Everything a handler may need. No globals: two applications in one process (as in
/// tests) have two states.
#[derive(Debug)]
pub struct AppParts {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    /// Turns requests away at once while the database is unreachable.
    pub db_gate: Arc<crate::db_gate::DbGate>,
    /// Answers 503 at once past `MAX_CONCURRENT_REQUESTS` requests in hand.
    pub shedder: Arc<crate::shed::Shedder>,
    pub jobs: Jobs,
    pub monitor: Monitor,
    pub identity: Identity,
    pub audit: Audit,
    pub catalog: Catalog,
    /// Rendered catalogue answers, checked against the catalogue's revision.
    pub responses: crate::cache::ResponseCache,
    pub profiles: Profiles,
    pub assessments: ruleiq_services::assessments::Assessments,
    pub plans: ruleiq_services::plans::Plans,
    pub dashboard: ruleiq_services::dashboard::Dashboard,
    pub evidence: ruleiq_services::evidence::Evidence,
    pub policies: ruleiq_services::policies::Policies,
    pub chat: ruleiq_services::chat::Chat,
    pub reports: ruleiq_services::reports::Reports,
    /// Outgoing e-mail, for the administrators' outbox.
    pub outbox: ruleiq_services::mail::Outbox,
    pub notifications: ruleiq_services::notifications::Notifications,
    pub ai: ruleiq_services::ai::AiService,
    pub search: Arc<dyn SearchIndex>,
    pub limiter: Arc<dyn RateLimiter>,
    pub metrics: Metrics,
    /// Timings of the database's statements and the slowest recent ones, fed by the
    /// connection's metric callback when `ENABLE_DATABASE_MONITORING` is on.
    pub queries: Arc<QueryLog>,
    pub started_at: Instant,
}

/// The shared state: one pointer, so the clone axum makes for every request is a
/// single atomic increment however many parts the state grows.
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    /// Shares `parts` between handlers.
    #[must_use]
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// This build's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
