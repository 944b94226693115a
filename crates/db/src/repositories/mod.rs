//! Queries, one module per domain. Each function takes any connection or transaction.

pub mod jobs;
pub mod roles;
