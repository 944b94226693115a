//! ruleIQ's integration tests: the real application on port 0 over a fresh database
//! per test — SQLite, or PostgreSQL with `TEST_DATABASE=postgres` — and the real
//! `ruleiq` binary for the command line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod assessments;
mod assistant;
mod backup;
mod browser;
mod cli;
mod db_outage;
mod deploy;
mod error_reports;
mod evidence;
mod frameworks;
mod health;
mod http;
mod identity;
mod instances;
mod jobs;
mod mail;
mod members;
mod migrations;
mod monitoring;
mod notifications;
mod otel;
mod plans;
mod policies;
mod pool;
mod query_counts;
mod ratelimit;
mod recovery;
mod reports;
mod search;
mod ui;
mod ui_evidence;
mod ui_journey;
mod ui_policies;
mod ui_reports;
