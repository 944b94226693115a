//! SeaORM entities, one module per table.

pub mod answer;
pub mod assessment;
pub mod audit_chain_head;
pub mod audit_entry;
pub mod business_profile;
pub mod content_import;
pub mod control;
pub mod control_mapping;
pub mod framework;
pub mod framework_domain;
pub mod invitation;
pub mod job_run;
pub mod membership;
pub mod organization;
pub mod password_reset;
pub mod plan;
pub mod plan_task;
pub mod question;
pub mod question_control;
pub mod readiness_snapshot;
pub mod refresh_token;
pub mod role;
pub mod search_document;
pub mod session;
pub mod user;
