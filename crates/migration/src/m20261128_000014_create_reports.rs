//! Reports: each generated document (its type, format, progress, where its file is
//! kept and until when), and the schedules that generate and mail them.
//!
//! A report's file lives in the blob store under `blob_key`; the row keeps its size
//! and SHA-256 so a download can be checked. `expires_at` is when the retention
//! sweep removes the file and marks the report `expired` (410 from then on).

use sea_orm_migration::{prelude::*, schema::*};

use crate::one_of;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Reports {
    Table,
    Id,
    OrganizationId,
    ReportType,
    Format,
    FrameworkId,
    Status,
    JobId,
    ScheduleId,
    RequestedBy,
    Progress,
    ProgressNote,
    FileName,
    BlobKey,
    SizeBytes,
    Sha256,
    Error,
    CreatedAt,
    StartedAt,
    FinishedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ReportSchedules {
    Table,
    Id,
    OrganizationId,
    ReportType,
    Format,
    FrameworkId,
    Cron,
    Timezone,
    Recipients,
    Enabled,
    CreatedBy,
    NextRunAt,
    LastRunAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

/// Kept in step with `ruleiq_services::reports::ReportType` and `Format`.
const TYPES: &[&str] = &[
    "executive_summary",
    "gap_analysis",
    "evidence_register",
    "statement_of_applicability",
    "audit_pack",
    "policy_pack",
];
const FORMATS: &[&str] = &["pdf", "docx", "xlsx", "csv", "zip", "json"];
const STATUSES: &[&str] = &["queued", "running", "ready", "failed", "expired"];

fn index(name: &str, table: impl IntoIden, cols: Vec<DynIden>) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in cols {
        i.col(c);
    }
    i.to_owned()
}

fn organisation(from: (impl IntoIden, impl IntoIden)) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(Organizations::Table, Organizations::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Reports as R;
        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .col(uuid(R::Id).primary_key())
                    .col(uuid(R::OrganizationId))
                    .col(string_len(R::ReportType, 32).check(one_of(R::ReportType, TYPES)))
                    .col(string_len(R::Format, 8).check(one_of(R::Format, FORMATS)))
                    .col(uuid_null(R::FrameworkId))
                    .col(string_len(R::Status, 16).check(one_of(R::Status, STATUSES)))
                    .col(uuid_null(R::JobId))
                    .col(uuid_null(R::ScheduleId))
                    .col(uuid_null(R::RequestedBy))
                    .col(integer(R::Progress))
                    .col(text_null(R::ProgressNote))
                    .col(text(R::FileName))
                    .col(text_null(R::BlobKey))
                    .col(big_integer_null(R::SizeBytes))
                    .col(string_len_null(R::Sha256, 64))
                    .col(text_null(R::Error))
                    .col(timestamp_with_time_zone(R::CreatedAt))
                    .col(timestamp_with_time_zone_null(R::StartedAt))
                    .col(timestamp_with_time_zone_null(R::FinishedAt))
                    .col(timestamp_with_time_zone_null(R::ExpiresAt))
                    .foreign_key(&mut organisation((R::Table, R::OrganizationId)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_reports_org_created",
                R::Table,
                vec![
                    R::OrganizationId.into_iden(),
                    R::CreatedAt.into_iden(),
                    R::Id.into_iden(),
                ],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_reports_status_expires",
                R::Table,
                vec![R::Status.into_iden(), R::ExpiresAt.into_iden()],
            ))
            .await?;

        use ReportSchedules as S;
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .col(uuid(S::Id).primary_key())
                    .col(uuid(S::OrganizationId))
                    .col(string_len(S::ReportType, 32).check(one_of(S::ReportType, TYPES)))
                    .col(string_len(S::Format, 8).check(one_of(S::Format, FORMATS)))
                    .col(uuid_null(S::FrameworkId))
                    .col(string_len(S::Cron, 128))
                    .col(string_len(S::Timezone, 64))
                    .col(json(S::Recipients))
                    .col(boolean(S::Enabled))
                    .col(uuid_null(S::CreatedBy))
                    .col(timestamp_with_time_zone(S::NextRunAt))
                    .col(timestamp_with_time_zone_null(S::LastRunAt))
                    .col(timestamp_with_time_zone(S::CreatedAt))
                    .foreign_key(&mut organisation((S::Table, S::OrganizationId)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_report_schedules_due",
                S::Table,
                vec![S::Enabled.into_iden(), S::NextRunAt.into_iden()],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_report_schedules_org",
                S::Table,
                vec![S::OrganizationId.into_iden(), S::CreatedAt.into_iden()],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ReportSchedules::Table.into_iden(),
            Reports::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
