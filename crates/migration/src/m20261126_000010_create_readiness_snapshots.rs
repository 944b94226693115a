//! One readiness figure per organisation, framework and day, for trends.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReadinessSnapshots {
    Table,
    Id,
    OrganizationId,
    FrameworkId,
    Day,
    AssessmentScore,
    EvidenceCoverage,
    PolicyCoverage,
    ReadinessScore,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Frameworks {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ReadinessSnapshots::Table)
                    .col(uuid(ReadinessSnapshots::Id).primary_key())
                    .col(uuid(ReadinessSnapshots::OrganizationId))
                    .col(uuid(ReadinessSnapshots::FrameworkId))
                    .col(date(ReadinessSnapshots::Day))
                    .col(double(ReadinessSnapshots::AssessmentScore))
                    .col(double(ReadinessSnapshots::EvidenceCoverage))
                    .col(double(ReadinessSnapshots::PolicyCoverage))
                    .col(double(ReadinessSnapshots::ReadinessScore))
                    .col(timestamp_with_time_zone(ReadinessSnapshots::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                ReadinessSnapshots::Table,
                                ReadinessSnapshots::OrganizationId,
                            )
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ReadinessSnapshots::Table, ReadinessSnapshots::FrameworkId)
                            .to(Frameworks::Table, Frameworks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_readiness_snapshots_day")
                    .table(ReadinessSnapshots::Table)
                    .col(ReadinessSnapshots::OrganizationId)
                    .col(ReadinessSnapshots::FrameworkId)
                    .col(ReadinessSnapshots::Day)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The dashboard asks for the latest snapshot on every read: an index seek.
        manager
            .create_index(
                Index::create()
                    .name("idx_readiness_snapshots_org_created")
                    .table(ReadinessSnapshots::Table)
                    .col(ReadinessSnapshots::OrganizationId)
                    .col(ReadinessSnapshots::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ReadinessSnapshots::Table).to_owned())
            .await
    }
}
