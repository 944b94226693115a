//! SeaORM entities, one module per table.

pub mod job_run;
pub mod role;
