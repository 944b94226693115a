//! The schema, as an ordered list of migrations.
//!
//! Invariants: every migration has a `down` that undoes exactly its `up`; tables use
//! only types both SQLite and PostgreSQL have (UUID, TEXT, INTEGER, timestamps), with
//! enumerations as TEXT under a CHECK constraint, so one code path serves both engines.

use sea_orm_migration::prelude::*;

mod m20261125_000001_create_roles;
mod m20261125_000002_create_job_runs;
mod m20261125_000003_create_identity;
mod m20261125_000004_create_invitations;
mod m20261125_000005_create_password_resets;
mod m20261126_000006_create_frameworks;
mod m20261126_000007_create_business_profiles;
mod m20261126_000008_create_assessments;
mod m20261126_000009_create_plans;
mod m20261126_000010_create_readiness_snapshots;
mod m20261126_000011_create_evidence;
mod m20261127_000012_create_policies;
mod m20261127_000013_create_ai;
mod m20261128_000014_create_reports;
mod m20261128_000015_create_mail_outbox;
mod m20261128_000016_create_notifications;
mod m20261129_000017_sequence_search_documents;
mod m20261129_000018_index_audit_changes;

pub use sea_orm_migration::MigratorTrait;

/// Every migration, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_roles::Migration),
            Box::new(m20261125_000002_create_job_runs::Migration),
            Box::new(m20261125_000003_create_identity::Migration),
            Box::new(m20261125_000004_create_invitations::Migration),
            Box::new(m20261125_000005_create_password_resets::Migration),
            Box::new(m20261126_000006_create_frameworks::Migration),
            Box::new(m20261126_000007_create_business_profiles::Migration),
            Box::new(m20261126_000008_create_assessments::Migration),
            Box::new(m20261126_000009_create_plans::Migration),
            Box::new(m20261126_000010_create_readiness_snapshots::Migration),
            Box::new(m20261126_000011_create_evidence::Migration),
            Box::new(m20261127_000012_create_policies::Migration),
            Box::new(m20261127_000013_create_ai::Migration),
            Box::new(m20261128_000014_create_reports::Migration),
            Box::new(m20261128_000015_create_mail_outbox::Migration),
            Box::new(m20261128_000016_create_notifications::Migration),
            Box::new(m20261129_000017_sequence_search_documents::Migration),
            Box::new(m20261129_000018_index_audit_changes::Migration),
        ]
    }
}

/// A CHECK constraint that `column` holds one of `values`.
pub(crate) fn one_of(column: impl IntoIden + 'static, values: &[&str]) -> SimpleExpr {
    Expr::col(column).is_in(values.iter().map(|v| (*v).to_owned()))
}
