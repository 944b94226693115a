//! Evidence: items, their file versions, the controls they back, and the history of
//! their workflow.
//!
//! The current version's file facts are kept on the item as well as in its version
//! row, so that a list of fifty thousand items is one index range scan with no join.
//! Blobs themselves live in the object store, named by `sha256`; a version row is
//! written only after its blob is durable.

use sea_orm_migration::{prelude::*, schema::*};

use crate::one_of;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EvidenceItems {
    Table,
    Id,
    OrganizationId,
    Title,
    Description,
    EvidenceType,
    Kind,
    Url,
    Status,
    CurrentVersion,
    FileName,
    ContentType,
    SizeBytes,
    Sha256,
    EffectiveDate,
    ExpiresAt,
    Extraction,
    CreatedBy,
    SubmittedBy,
    SubmittedAt,
    DecidedBy,
    DecidedAt,
    DecisionComment,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum EvidenceVersions {
    Table,
    Id,
    OrganizationId,
    EvidenceId,
    Version,
    FileName,
    ContentType,
    SizeBytes,
    Sha256,
    UploadedBy,
    UploadedAt,
    Extraction,
    ExtractionError,
    ExtractedText,
}

#[derive(DeriveIden)]
enum EvidenceControls {
    Table,
    EvidenceId,
    ControlId,
    OrganizationId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum EvidenceEvents {
    Table,
    Id,
    OrganizationId,
    EvidenceId,
    Action,
    FromStatus,
    ToStatus,
    ActorId,
    Comment,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Controls {
    Table,
    Id,
}

const TYPES: &[&str] = &[
    "policy",
    "procedure",
    "log",
    "certificate",
    "configuration",
    "screenshot",
    "report",
    "training_record",
    "other",
];
const STATUSES: &[&str] = &["draft", "submitted", "approved", "rejected", "expired"];
const EXTRACTION: &[&str] = &["pending", "done", "failed", "not_applicable"];

fn index(name: &str, table: impl IntoIden, cols: Vec<DynIden>) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in cols {
        i.col(c);
    }
    i.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use EvidenceItems as E;
        manager
            .create_table(
                Table::create()
                    .table(E::Table)
                    .col(uuid(E::Id).primary_key())
                    .col(uuid(E::OrganizationId))
                    .col(text(E::Title))
                    .col(text_null(E::Description))
                    .col(string_len(E::EvidenceType, 32).check(one_of(E::EvidenceType, TYPES)))
                    .col(string_len(E::Kind, 8).check(one_of(E::Kind, &["file", "link"])))
                    .col(text_null(E::Url))
                    .col(string_len(E::Status, 16).check(one_of(E::Status, STATUSES)))
                    .col(integer(E::CurrentVersion))
                    .col(text_null(E::FileName))
                    .col(text_null(E::ContentType))
                    .col(big_integer_null(E::SizeBytes))
                    .col(string_len_null(E::Sha256, 64))
                    .col(date_null(E::EffectiveDate))
                    .col(timestamp_with_time_zone_null(E::ExpiresAt))
                    .col(string_len(E::Extraction, 16).check(one_of(E::Extraction, EXTRACTION)))
                    .col(uuid_null(E::CreatedBy))
                    .col(uuid_null(E::SubmittedBy))
                    .col(timestamp_with_time_zone_null(E::SubmittedAt))
                    .col(uuid_null(E::DecidedBy))
                    .col(timestamp_with_time_zone_null(E::DecidedAt))
                    .col(text_null(E::DecisionComment))
                    .col(timestamp_with_time_zone(E::CreatedAt))
                    .col(timestamp_with_time_zone(E::UpdatedAt))
                    .col(timestamp_with_time_zone_null(E::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(E::Table, E::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The list: newest first within an organisation, by keyset.
        for (name, cols) in [
            (
                "idx_evidence_org_created",
                vec![
                    E::OrganizationId.into_iden(),
                    E::CreatedAt.into_iden(),
                    E::Id.into_iden(),
                ],
            ),
            (
                "idx_evidence_org_status",
                vec![
                    E::OrganizationId.into_iden(),
                    E::Status.into_iden(),
                    E::CreatedAt.into_iden(),
                ],
            ),
            (
                "idx_evidence_org_expires",
                vec![E::OrganizationId.into_iden(), E::ExpiresAt.into_iden()],
            ),
            // The dashboard's "has anything changed" probe.
            (
                "idx_evidence_org_updated",
                vec![E::OrganizationId.into_iden(), E::UpdatedAt.into_iden()],
            ),
        ] {
            manager.create_index(index(name, E::Table, cols)).await?;
        }

        use EvidenceVersions as V;
        manager
            .create_table(
                Table::create()
                    .table(V::Table)
                    .col(uuid(V::Id).primary_key())
                    .col(uuid(V::OrganizationId))
                    .col(uuid(V::EvidenceId))
                    .col(integer(V::Version))
                    .col(text(V::FileName))
                    .col(text(V::ContentType))
                    .col(big_integer(V::SizeBytes))
                    .col(string_len(V::Sha256, 64))
                    .col(uuid_null(V::UploadedBy))
                    .col(timestamp_with_time_zone(V::UploadedAt))
                    .col(string_len(V::Extraction, 16).check(one_of(V::Extraction, EXTRACTION)))
                    .col(text_null(V::ExtractionError))
                    .col(text_null(V::ExtractedText))
                    .foreign_key(
                        ForeignKey::create()
                            .from(V::Table, V::EvidenceId)
                            .to(E::Table, E::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "idx_evidence_versions_item",
                    V::Table,
                    vec![V::EvidenceId.into_iden(), V::Version.into_iden()],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        // The orphan sweep and the verification command look blobs up by hash.
        manager
            .create_index(index(
                "idx_evidence_versions_sha",
                V::Table,
                vec![V::Sha256.into_iden()],
            ))
            .await?;

        use EvidenceControls as L;
        manager
            .create_table(
                Table::create()
                    .table(L::Table)
                    .col(uuid(L::EvidenceId))
                    .col(uuid(L::ControlId))
                    .col(uuid(L::OrganizationId))
                    .col(timestamp_with_time_zone(L::CreatedAt))
                    .primary_key(Index::create().col(L::EvidenceId).col(L::ControlId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(L::Table, L::EvidenceId)
                            .to(E::Table, E::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(L::Table, L::ControlId)
                            .to(Controls::Table, Controls::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Control first, not organisation: led by the organisation, SQLite (with no
        // statistics yet) prefers this index to the primary key even for "the links of
        // these items", and reads every link the organisation has.
        manager
            .create_index(index(
                "idx_evidence_controls_control",
                L::Table,
                vec![L::ControlId.into_iden(), L::OrganizationId.into_iden()],
            ))
            .await?;

        use EvidenceEvents as H;
        manager
            .create_table(
                Table::create()
                    .table(H::Table)
                    .col(uuid(H::Id).primary_key())
                    .col(uuid(H::OrganizationId))
                    .col(uuid(H::EvidenceId))
                    .col(string_len(H::Action, 32))
                    .col(string_len_null(H::FromStatus, 16))
                    .col(string_len_null(H::ToStatus, 16))
                    .col(uuid_null(H::ActorId))
                    .col(text_null(H::Comment))
                    .col(timestamp_with_time_zone(H::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(H::Table, H::EvidenceId)
                            .to(E::Table, E::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_evidence_events_item",
                H::Table,
                vec![H::EvidenceId.into_iden(), H::CreatedAt.into_iden()],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            EvidenceEvents::Table.into_iden(),
            EvidenceControls::Table.into_iden(),
            EvidenceVersions::Table.into_iden(),
            EvidenceItems::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
