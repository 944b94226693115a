//! Queries, one module per domain. Each function takes any connection or transaction.

pub mod ai;
pub mod assessments;
pub mod audit;
pub mod chat;
pub mod evidence;
pub mod frameworks;
pub mod identity;
pub mod jobs;
pub mod mail;
pub mod notifications;
pub mod plans;
pub mod policies;
pub mod profiles;
pub mod readiness;
pub mod reports;
pub mod roles;
pub mod search;
