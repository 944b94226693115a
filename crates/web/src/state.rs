//! The one state object every handler receives.

use ruleiq_config::Settings;
use ruleiq_db::DatabaseConnection;
use ruleiq_services::{jobs::Jobs, monitoring::Monitor};
use std::{sync::Arc, time::Instant};

use crate::metrics::Metrics;

/// Everything a handler may need, cheap to clone. No globals: two applications in one
/// process (as in tests) have two states.
#[derive(Clone, Debug)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub jobs: Jobs,
    pub monitor: Monitor,
    pub metrics: Metrics,
    pub started_at: Instant,
}

/// This build's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
