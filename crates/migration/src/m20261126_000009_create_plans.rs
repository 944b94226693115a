//! Implementation plans: an assessment's gaps turned into dated tasks, and the
//! effort estimate of each control that the scheduling reads.

use sea_orm_migration::{prelude::*, schema::*};

use crate::one_of;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Controls {
    Table,
    EffortHalfDays,
}

#[derive(DeriveIden)]
enum Plans {
    Table,
    Id,
    OrganizationId,
    AssessmentId,
    FrameworkId,
    Title,
    StartDate,
    TargetDate,
    ProjectedEndDate,
    TargetMet,
    ScheduleNote,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PlanTasks {
    Table,
    Id,
    OrganizationId,
    PlanId,
    ControlId,
    Ref,
    Title,
    Description,
    Priority,
    Response,
    Position,
    Status,
    AssigneeId,
    DueDate,
    EffortHalfDays,
    Notes,
    CompletedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Assessments {
    Table,
    Id,
    OrganizationId,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

const PRIORITIES: &[&str] = &["critical", "high", "medium", "low"];
const STATUSES: &[&str] = &["todo", "in_progress", "blocked", "done"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Half days as an integer: exact, and the same type on both engines.
        manager
            .alter_table(
                Table::alter()
                    .table(Controls::Table)
                    .add_column(integer_null(Controls::EffortHalfDays))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Plans::Table)
                    .col(uuid(Plans::Id).primary_key())
                    .col(uuid(Plans::OrganizationId))
                    .col(uuid(Plans::AssessmentId))
                    .col(uuid(Plans::FrameworkId))
                    .col(text(Plans::Title))
                    .col(date(Plans::StartDate))
                    .col(date_null(Plans::TargetDate))
                    .col(date(Plans::ProjectedEndDate))
                    .col(boolean(Plans::TargetMet))
                    .col(text_null(Plans::ScheduleNote))
                    .col(uuid_null(Plans::CreatedBy))
                    .col(timestamp_with_time_zone(Plans::CreatedAt))
                    .col(timestamp_with_time_zone(Plans::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Plans::Table, Plans::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Plans::Table, Plans::AssessmentId)
                            .to(Assessments::Table, Assessments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_plans_org")
                    .table(Plans::Table)
                    .col(Plans::OrganizationId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PlanTasks::Table)
                    .col(uuid(PlanTasks::Id).primary_key())
                    .col(uuid(PlanTasks::OrganizationId))
                    .col(uuid(PlanTasks::PlanId))
                    .col(uuid(PlanTasks::ControlId))
                    .col(text(PlanTasks::Ref))
                    .col(text(PlanTasks::Title))
                    .col(text(PlanTasks::Description))
                    .col(
                        string_len(PlanTasks::Priority, 16)
                            .check(one_of(PlanTasks::Priority, PRIORITIES)),
                    )
                    .col(string_len(PlanTasks::Response, 16))
                    .col(integer(PlanTasks::Position))
                    .col(
                        string_len(PlanTasks::Status, 16)
                            .check(one_of(PlanTasks::Status, STATUSES)),
                    )
                    .col(uuid_null(PlanTasks::AssigneeId))
                    .col(date(PlanTasks::DueDate))
                    .col(integer(PlanTasks::EffortHalfDays))
                    .col(text_null(PlanTasks::Notes))
                    .col(timestamp_with_time_zone_null(PlanTasks::CompletedAt))
                    .col(timestamp_with_time_zone(PlanTasks::CreatedAt))
                    .col(timestamp_with_time_zone(PlanTasks::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PlanTasks::Table, PlanTasks::PlanId)
                            .to(Plans::Table, Plans::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(PlanTasks::Table, PlanTasks::AssigneeId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_plan_tasks_plan")
                    .table(PlanTasks::Table)
                    .col(PlanTasks::PlanId)
                    .col(PlanTasks::Position)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_plan_tasks_org_due")
                    .table(PlanTasks::Table)
                    .col(PlanTasks::OrganizationId)
                    .col(PlanTasks::Status)
                    .col(PlanTasks::DueDate)
                    .to_owned(),
            )
            .await?;
        // The dashboard asks for the latest change on every read: an index seek.
        manager
            .create_index(
                Index::create()
                    .name("idx_plan_tasks_org_updated")
                    .table(PlanTasks::Table)
                    .col(PlanTasks::OrganizationId)
                    .col(PlanTasks::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_assessments_org_updated")
                    .table(Assessments::Table)
                    .col(Assessments::OrganizationId)
                    .col(Assessments::UpdatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_assessments_org_updated")
                    .table(Assessments::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(PlanTasks::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Plans::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Controls::Table)
                    .drop_column(Controls::EffortHalfDays)
                    .to_owned(),
            )
            .await
    }
}
