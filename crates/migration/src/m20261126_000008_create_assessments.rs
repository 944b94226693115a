//! Assessments of a framework and their answers, one per question.

use sea_orm_migration::{prelude::*, schema::*};

use crate::one_of;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Assessments {
    Table,
    Id,
    OrganizationId,
    FrameworkId,
    Name,
    Status,
    CreatedBy,
    CompletedAt,
    Results,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Answers {
    Table,
    Id,
    OrganizationId,
    AssessmentId,
    QuestionId,
    Response,
    Notes,
    EvidenceIds,
    AnsweredBy,
    PrefilledFrom,
    AnsweredAt,
    CreatedAt,
    UpdatedAt,
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

#[derive(DeriveIden)]
enum Questions {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Assessments::Table)
                    .col(uuid(Assessments::Id).primary_key())
                    .col(uuid(Assessments::OrganizationId))
                    .col(uuid(Assessments::FrameworkId))
                    .col(string_len(Assessments::Name, 200))
                    .col(
                        string_len(Assessments::Status, 16)
                            .check(one_of(Assessments::Status, &["in_progress", "completed"])),
                    )
                    .col(uuid_null(Assessments::CreatedBy))
                    .col(timestamp_with_time_zone_null(Assessments::CompletedAt))
                    .col(json_null(Assessments::Results))
                    .col(timestamp_with_time_zone(Assessments::CreatedAt))
                    .col(timestamp_with_time_zone(Assessments::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Assessments::Table, Assessments::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Assessments::Table, Assessments::FrameworkId)
                            .to(Frameworks::Table, Frameworks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_assessments_org")
                    .table(Assessments::Table)
                    .col(Assessments::OrganizationId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Answers::Table)
                    .col(uuid(Answers::Id).primary_key())
                    .col(uuid(Answers::OrganizationId))
                    .col(uuid(Answers::AssessmentId))
                    .col(uuid(Answers::QuestionId))
                    .col(string_len(Answers::Response, 16).check(one_of(
                        Answers::Response,
                        &["yes", "partial", "no", "not_applicable", "unknown"],
                    )))
                    .col(text_null(Answers::Notes))
                    .col(json(Answers::EvidenceIds))
                    .col(uuid_null(Answers::AnsweredBy))
                    .col(uuid_null(Answers::PrefilledFrom))
                    .col(timestamp_with_time_zone(Answers::AnsweredAt))
                    .col(timestamp_with_time_zone(Answers::CreatedAt))
                    .col(timestamp_with_time_zone(Answers::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Answers::Table, Answers::AssessmentId)
                            .to(Assessments::Table, Assessments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Answers::Table, Answers::QuestionId)
                            .to(Questions::Table, Questions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_answers_assessment_question")
                    .table(Answers::Table)
                    .col(Answers::AssessmentId)
                    .col(Answers::QuestionId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_answers_org_question")
                    .table(Answers::Table)
                    .col(Answers::OrganizationId)
                    .col(Answers::QuestionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Answers::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Assessments::Table).to_owned())
            .await
    }
}
