//! The framework library: frameworks, their headings (domains), controls, the shared
//! question bank, typed cross-framework mappings, the search index, and a record of
//! which content revision was last loaded.
//!
//! Library rows have no `organization_id`; a framework an organisation imports from
//! OSCAL carries its organisation's. `scope` is `library` or that organisation's id,
//! so one unique index keeps slugs unique per scope on both engines (a NULL in a
//! unique index would not).

use sea_orm_migration::{prelude::*, schema::*};

use crate::one_of;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Frameworks {
    Table,
    Id,
    OrganizationId,
    Scope,
    Slug,
    Name,
    Version,
    Publisher,
    Jurisdiction,
    Url,
    Description,
    Source,
    ContentVersion,
    ContentHash,
    SourceUuid,
    Oscal,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FrameworkDomains {
    Table,
    Id,
    FrameworkId,
    Ref,
    Name,
    ParentRef,
    Position,
    Oscal,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Controls {
    Table,
    Id,
    FrameworkId,
    Ref,
    ParentRef,
    DomainRef,
    Title,
    Description,
    Guidance,
    Criticality,
    EvidenceExamples,
    Oscal,
    Position,
    RetiredAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Questions {
    Table,
    Id,
    Key,
    OrganizationId,
    Text,
    Help,
    Shared,
    Position,
    RetiredAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum QuestionControls {
    Table,
    QuestionId,
    ControlId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ControlMappings {
    Table,
    Id,
    SourceControlId,
    TargetControlId,
    Relation,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SearchDocuments {
    Table,
    Id,
    OrganizationId,
    Kind,
    SubjectId,
    FrameworkSlug,
    Title,
    Body,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ContentImports {
    Table,
    Name,
    Hash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

const CRITICALITIES: &[&str] = &["low", "medium", "high", "critical"];
const RELATIONS: &[&str] = &["equal", "subset", "superset", "intersect"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Frameworks::Table)
                    .col(uuid(Frameworks::Id).primary_key())
                    .col(uuid_null(Frameworks::OrganizationId))
                    .col(string_len(Frameworks::Scope, 36))
                    .col(string_len(Frameworks::Slug, 120))
                    .col(string_len(Frameworks::Name, 300))
                    .col(string_len(Frameworks::Version, 120))
                    .col(string_len(Frameworks::Publisher, 300))
                    .col(string_len(Frameworks::Jurisdiction, 120))
                    .col(text_null(Frameworks::Url))
                    .col(text(Frameworks::Description))
                    .col(
                        string_len(Frameworks::Source, 16)
                            .check(one_of(Frameworks::Source, &["library", "oscal"])),
                    )
                    .col(integer(Frameworks::ContentVersion))
                    .col(string_len(Frameworks::ContentHash, 64))
                    .col(string_len_null(Frameworks::SourceUuid, 64))
                    .col(json_null(Frameworks::Oscal))
                    .col(timestamp_with_time_zone(Frameworks::CreatedAt))
                    .col(timestamp_with_time_zone(Frameworks::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Frameworks::Table, Frameworks::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_frameworks_scope_slug")
                    .table(Frameworks::Table)
                    .col(Frameworks::Scope)
                    .col(Frameworks::Slug)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FrameworkDomains::Table)
                    .col(uuid(FrameworkDomains::Id).primary_key())
                    .col(uuid(FrameworkDomains::FrameworkId))
                    .col(string_len(FrameworkDomains::Ref, 120))
                    .col(text(FrameworkDomains::Name))
                    .col(string_len_null(FrameworkDomains::ParentRef, 120))
                    .col(integer(FrameworkDomains::Position))
                    .col(json_null(FrameworkDomains::Oscal))
                    .col(timestamp_with_time_zone(FrameworkDomains::CreatedAt))
                    .col(timestamp_with_time_zone(FrameworkDomains::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(FrameworkDomains::Table, FrameworkDomains::FrameworkId)
                            .to(Frameworks::Table, Frameworks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_framework_domains_ref")
                    .table(FrameworkDomains::Table)
                    .col(FrameworkDomains::FrameworkId)
                    .col(FrameworkDomains::Ref)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Controls::Table)
                    .col(uuid(Controls::Id).primary_key())
                    .col(uuid(Controls::FrameworkId))
                    .col(string_len(Controls::Ref, 120))
                    .col(string_len_null(Controls::ParentRef, 120))
                    .col(string_len_null(Controls::DomainRef, 120))
                    .col(text(Controls::Title))
                    .col(text(Controls::Description))
                    .col(text(Controls::Guidance))
                    .col(
                        string_len(Controls::Criticality, 16)
                            .check(one_of(Controls::Criticality, CRITICALITIES)),
                    )
                    .col(json(Controls::EvidenceExamples))
                    .col(json_null(Controls::Oscal))
                    .col(integer(Controls::Position))
                    .col(timestamp_with_time_zone_null(Controls::RetiredAt))
                    .col(timestamp_with_time_zone(Controls::CreatedAt))
                    .col(timestamp_with_time_zone(Controls::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Controls::Table, Controls::FrameworkId)
                            .to(Frameworks::Table, Frameworks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_controls_framework_ref")
                    .table(Controls::Table)
                    .col(Controls::FrameworkId)
                    .col(Controls::Ref)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_controls_framework_position")
                    .table(Controls::Table)
                    .col(Controls::FrameworkId)
                    .col(Controls::Position)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Questions::Table)
                    .col(uuid(Questions::Id).primary_key())
                    .col(string_len_uniq(Questions::Key, 300))
                    .col(uuid_null(Questions::OrganizationId))
                    .col(text(Questions::Text))
                    .col(text_null(Questions::Help))
                    .col(boolean(Questions::Shared))
                    .col(integer(Questions::Position))
                    .col(timestamp_with_time_zone_null(Questions::RetiredAt))
                    .col(timestamp_with_time_zone(Questions::CreatedAt))
                    .col(timestamp_with_time_zone(Questions::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Questions::Table, Questions::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(QuestionControls::Table)
                    .col(uuid(QuestionControls::QuestionId))
                    .col(uuid(QuestionControls::ControlId))
                    .col(timestamp_with_time_zone(QuestionControls::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(QuestionControls::QuestionId)
                            .col(QuestionControls::ControlId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(QuestionControls::Table, QuestionControls::QuestionId)
                            .to(Questions::Table, Questions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(QuestionControls::Table, QuestionControls::ControlId)
                            .to(Controls::Table, Controls::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_question_controls_control")
                    .table(QuestionControls::Table)
                    .col(QuestionControls::ControlId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ControlMappings::Table)
                    .col(uuid(ControlMappings::Id).primary_key())
                    .col(uuid(ControlMappings::SourceControlId))
                    .col(uuid(ControlMappings::TargetControlId))
                    .col(
                        string_len(ControlMappings::Relation, 16)
                            .check(one_of(ControlMappings::Relation, RELATIONS)),
                    )
                    .col(timestamp_with_time_zone(ControlMappings::CreatedAt))
                    .col(timestamp_with_time_zone(ControlMappings::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ControlMappings::Table, ControlMappings::SourceControlId)
                            .to(Controls::Table, Controls::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ControlMappings::Table, ControlMappings::TargetControlId)
                            .to(Controls::Table, Controls::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_control_mappings_pair")
                    .table(ControlMappings::Table)
                    .col(ControlMappings::SourceControlId)
                    .col(ControlMappings::TargetControlId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_control_mappings_target")
                    .table(ControlMappings::Table)
                    .col(ControlMappings::TargetControlId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SearchDocuments::Table)
                    .col(uuid(SearchDocuments::Id).primary_key())
                    .col(uuid_null(SearchDocuments::OrganizationId))
                    .col(string_len(SearchDocuments::Kind, 16).check(one_of(
                        SearchDocuments::Kind,
                        &["control", "evidence", "policy"],
                    )))
                    .col(uuid(SearchDocuments::SubjectId))
                    .col(string_len_null(SearchDocuments::FrameworkSlug, 120))
                    .col(text(SearchDocuments::Title))
                    .col(text(SearchDocuments::Body))
                    .col(timestamp_with_time_zone(SearchDocuments::CreatedAt))
                    .col(timestamp_with_time_zone(SearchDocuments::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SearchDocuments::Table, SearchDocuments::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_search_documents_subject")
                    .table(SearchDocuments::Table)
                    .col(SearchDocuments::Kind)
                    .col(SearchDocuments::SubjectId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ContentImports::Table)
                    .col(string_len(ContentImports::Name, 64).primary_key())
                    .col(string_len(ContentImports::Hash, 64))
                    .col(timestamp_with_time_zone(ContentImports::CreatedAt))
                    .col(timestamp_with_time_zone(ContentImports::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ContentImports::Table.into_iden(),
            SearchDocuments::Table.into_iden(),
            ControlMappings::Table.into_iden(),
            QuestionControls::Table.into_iden(),
            Questions::Table.into_iden(),
            Controls::Table.into_iden(),
            FrameworkDomains::Table.into_iden(),
            Frameworks::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
