//! Business rules, one module per domain. Handlers call one method here; these call
//! repositories in `ruleiq-db` and enqueue work through the [`jobs::JobQueue`] trait.

pub mod ai;
pub mod assessments;
pub mod audit;
pub mod backup;
pub mod cache;
pub mod chat;
pub mod dashboard;
pub mod demo;
pub mod error_reports;
pub mod evidence;
pub mod frameworks;
pub mod identity;
pub mod jobs;
pub mod mail;
pub mod monitoring;
pub mod notifications;
pub mod paging;
pub mod plans;
pub mod policies;
pub mod profiles;
pub mod ratelimit;
pub mod reports;
pub mod search;
pub mod seed;
