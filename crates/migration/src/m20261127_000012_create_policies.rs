//! Policies: the organisation's documents, every version of their text, and the
//! controls each one covers.
//!
//! The current version's text is kept on the policy as well as in its version row, so
//! that the library and a policy's page read one row. A policy written by a model
//! records which provider, model and prompt version wrote it; a person's edit clears
//! nothing, because the version rows keep each version's own provenance.

use sea_orm_migration::{prelude::*, schema::*};

use crate::one_of;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Policies {
    Table,
    Id,
    OrganizationId,
    PolicyType,
    Title,
    Status,
    Generation,
    GenerationError,
    Version,
    ContentMarkdown,
    Frameworks,
    TemplateVersion,
    GeneratedProvider,
    GeneratedModel,
    PromptVersion,
    CreatedBy,
    SubmittedBy,
    SubmittedAt,
    ApprovedBy,
    ApprovedAt,
    NextReviewAt,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum PolicyVersions {
    Table,
    Id,
    OrganizationId,
    PolicyId,
    Version,
    Title,
    ContentMarkdown,
    AuthorId,
    GeneratedProvider,
    GeneratedModel,
    PromptVersion,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PolicyControls {
    Table,
    PolicyId,
    ControlId,
    OrganizationId,
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

const STATUSES: &[&str] = &["draft", "in_review", "approved", "archived"];
const GENERATION: &[&str] = &["pending", "ready", "failed"];

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
        use Policies as P;
        manager
            .create_table(
                Table::create()
                    .table(P::Table)
                    .col(uuid(P::Id).primary_key())
                    .col(uuid(P::OrganizationId))
                    .col(string_len(P::PolicyType, 64))
                    .col(text(P::Title))
                    .col(string_len(P::Status, 16).check(one_of(P::Status, STATUSES)))
                    .col(string_len(P::Generation, 16).check(one_of(P::Generation, GENERATION)))
                    .col(text_null(P::GenerationError))
                    .col(integer(P::Version))
                    .col(text(P::ContentMarkdown))
                    .col(json(P::Frameworks))
                    .col(integer_null(P::TemplateVersion))
                    .col(string_len_null(P::GeneratedProvider, 32))
                    .col(text_null(P::GeneratedModel))
                    .col(string_len_null(P::PromptVersion, 32))
                    .col(uuid_null(P::CreatedBy))
                    .col(uuid_null(P::SubmittedBy))
                    .col(timestamp_with_time_zone_null(P::SubmittedAt))
                    .col(uuid_null(P::ApprovedBy))
                    .col(timestamp_with_time_zone_null(P::ApprovedAt))
                    .col(timestamp_with_time_zone_null(P::NextReviewAt))
                    .col(timestamp_with_time_zone(P::CreatedAt))
                    .col(timestamp_with_time_zone(P::UpdatedAt))
                    .col(timestamp_with_time_zone_null(P::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(P::Table, P::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_policies_org_created",
                vec![
                    P::OrganizationId.into_iden(),
                    P::CreatedAt.into_iden(),
                    P::Id.into_iden(),
                ],
            ),
            (
                "idx_policies_org_updated",
                vec![P::OrganizationId.into_iden(), P::UpdatedAt.into_iden()],
            ),
        ] {
            manager.create_index(index(name, P::Table, cols)).await?;
        }

        use PolicyVersions as V;
        manager
            .create_table(
                Table::create()
                    .table(V::Table)
                    .col(uuid(V::Id).primary_key())
                    .col(uuid(V::OrganizationId))
                    .col(uuid(V::PolicyId))
                    .col(integer(V::Version))
                    .col(text(V::Title))
                    .col(text(V::ContentMarkdown))
                    .col(uuid_null(V::AuthorId))
                    .col(string_len_null(V::GeneratedProvider, 32))
                    .col(text_null(V::GeneratedModel))
                    .col(string_len_null(V::PromptVersion, 32))
                    .col(timestamp_with_time_zone(V::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(V::Table, V::PolicyId)
                            .to(P::Table, P::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "idx_policy_versions_policy",
                    V::Table,
                    vec![V::PolicyId.into_iden(), V::Version.into_iden()],
                )
                .unique()
                .to_owned(),
            )
            .await?;

        use PolicyControls as L;
        manager
            .create_table(
                Table::create()
                    .table(L::Table)
                    .col(uuid(L::PolicyId))
                    .col(uuid(L::ControlId))
                    .col(uuid(L::OrganizationId))
                    .primary_key(Index::create().col(L::PolicyId).col(L::ControlId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(L::Table, L::PolicyId)
                            .to(P::Table, P::Id)
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
        // Control first, as for evidence links: readiness asks "which of these
        // controls does an approved policy cover".
        manager
            .create_index(index(
                "idx_policy_controls_control",
                L::Table,
                vec![L::ControlId.into_iden(), L::OrganizationId.into_iden()],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PolicyControls::Table.into_iden(),
            PolicyVersions::Table.into_iden(),
            Policies::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
