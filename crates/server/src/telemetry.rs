//! Logging: JSON lines in production (for log shippers), readable text elsewhere.
//! Both go to standard error, so a command's output on standard output stays clean.
//! `LOG_LEVEL` sets the level; `RUST_LOG`, when set, overrides it with full directives.

use ruleiq_config::Settings;
use std::io::IsTerminal;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber. Call once, from `main`.
pub fn init(settings: &Settings) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        // Our crates at the chosen level; chatty dependencies one notch quieter.
        let level = &settings.log_level;
        EnvFilter::new(format!(
            "{level},sqlx=warn,sea_orm=warn,sea_orm_migration=warn,apalis=warn,apalis_core=warn,apalis_sqlite=warn,apalis_postgres=warn,apalis_redis=warn,hyper=warn,h2=warn"
        ))
    });
    let registry = tracing_subscriber::registry().with(filter);
    let result = if settings.environment.is_production() {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .with_target(false)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
    // A second init (tests calling into the CLI) keeps the first subscriber.
    let _ = result;
}
