//! Evidence: the files an auditor checks. This first part is where their bytes live.

pub mod store;
