//! A partial index over the audit entries that record a change to what an
//! organisation's readiness summary shows.
//!
//! The dashboard keeps its summary against a version that includes the newest such
//! entry. Security and membership events (sign-ins above all) are most of the log and
//! change nothing the summary shows, so they are left out of the version; this index
//! lets `MAX(seq)` over the rest stay one index probe however many sign-ins came since.
//! The predicate is the one `ruleiq_db::repositories::readiness::SUMMARY_EVENTS`
//! queries with, word for word: both engines use a partial index only for a query
//! whose condition matches it.

use sea_orm_migration::{prelude::*, sea_orm::TransactionTrait};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Kept in step with `ruleiq_db::repositories::readiness::SUMMARY_EVENTS`.
const CREATE: &str = "CREATE INDEX idx_audit_log_org_summary_seq ON audit_log (organization_id, seq) \
     WHERE event NOT LIKE 'auth.%' AND event NOT LIKE 'member.%' \
     AND event NOT LIKE 'invitation.%' AND event NOT LIKE 'user.%' AND event NOT LIKE 'report%'";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One connection, whose view of the schema is read afresh first: a pooled
        // SQLite connection checks `CREATE INDEX` against the schema it last loaded,
        // so after this migration was rolled back through another connection of the
        // same pool it would still see the index and refuse to make it again.
        let txn = manager.get_connection().begin().await?;
        txn.execute_unprepared("SELECT COUNT(*) FROM audit_log")
            .await?;
        txn.execute_unprepared(CREATE).await?;
        txn.commit().await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_audit_log_org_summary_seq")
                    .table(Alias::new("audit_log"))
                    .to_owned(),
            )
            .await
    }
}
