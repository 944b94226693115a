//! The ruleIQ process: wiring, start-up and shutdown.
//!
//! `main` only parses the command line and calls in here. [`startup::Application`]
//! builds the whole server from [`ruleiq_config::Settings`] — database, migrations,
//! seed data, job queue, embedded worker, HTTP listener — so tests run the very same
//! thing on port 0.

pub mod check;
pub mod cli;
pub mod startup;
pub mod telemetry;
