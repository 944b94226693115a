//! SeaORM entities, one module per table.

pub mod audit_chain_head;
pub mod audit_entry;
pub mod invitation;
pub mod job_run;
pub mod membership;
pub mod organization;
pub mod password_reset;
pub mod refresh_token;
pub mod role;
pub mod session;
pub mod user;
