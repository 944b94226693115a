//! The status record of every background job.
//!
//! The queue itself (apalis's storage) carries the work; this table is what users and
//! operators read: one row per job, whatever queue backend moved it. It is not named
//! `jobs` because apalis's SQLite storage owns a `Jobs` table and SQLite table names
//! are case-insensitive.

use sea_orm_migration::{prelude::*, schema::*};

use crate::one_of;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum JobRuns {
    Table,
    Id,
    OrganizationId,
    Kind,
    Status,
    Payload,
    Result,
    Error,
    Attempts,
    MaxAttempts,
    NextAttemptAt,
    StartedAt,
    FinishedAt,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(JobRuns::Table)
                    .col(uuid(JobRuns::Id).primary_key())
                    .col(uuid_null(JobRuns::OrganizationId))
                    .col(string_len(JobRuns::Kind, 64))
                    .col(string_len(JobRuns::Status, 16).check(one_of(
                        JobRuns::Status,
                        &["queued", "running", "succeeded", "failed", "cancelled"],
                    )))
                    .col(json(JobRuns::Payload))
                    .col(json_null(JobRuns::Result))
                    .col(text_null(JobRuns::Error))
                    .col(integer(JobRuns::Attempts).default(0))
                    .col(integer(JobRuns::MaxAttempts))
                    .col(timestamp_with_time_zone_null(JobRuns::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(JobRuns::StartedAt))
                    .col(timestamp_with_time_zone_null(JobRuns::FinishedAt))
                    .col(timestamp_with_time_zone(JobRuns::CreatedAt))
                    .col(timestamp_with_time_zone(JobRuns::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_job_runs_status_created")
                    .table(JobRuns::Table)
                    .col(JobRuns::Status)
                    .col(JobRuns::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_job_runs_org_created")
                    .table(JobRuns::Table)
                    .col(JobRuns::OrganizationId)
                    .col(JobRuns::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(JobRuns::Table).to_owned())
            .await
    }
}
