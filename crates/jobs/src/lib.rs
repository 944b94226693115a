//! Background work.
//!
//! [`queue::ApalisQueue`] is the [`ruleiq_services::jobs::JobQueue`] over apalis storage:
//! the application database (SQLite or PostgreSQL) by default, Redis when `REDIS_URL`
//! is set. [`worker::run`] consumes it until shutdown. [`kinds`] lists every job kind
//! and its handler.

pub mod kinds;
pub mod queue;
pub mod worker;

pub use queue::ApalisQueue;
