//! A sequence number on every search document, so a server instance holding a scope's
//! documents in memory can read only those indexed since, instead of all of them.
//!
//! Indexing a scope takes the next number of that scope's revision row while holding
//! the row, so numbers are given in commit order: once a revision with number `n` is
//! visible, so is every document numbered up to `n`. Rows written before this
//! migration keep 0, which every reader has already seen whole. The numbers are
//! derived data: rolling this migration back loses them, and numbering goes on from
//! the number kept in the scope's revision, so no reader misses a later round.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SearchDocuments {
    Table,
    OrganizationId,
    Seq,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SearchDocuments::Table)
                    .add_column(big_integer(SearchDocuments::Seq).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_search_documents_org_seq")
                    .table(SearchDocuments::Table)
                    .col(SearchDocuments::OrganizationId)
                    .col(SearchDocuments::Seq)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_search_documents_org_seq")
                    .table(SearchDocuments::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SearchDocuments::Table)
                    .drop_column(SearchDocuments::Seq)
                    .to_owned(),
            )
            .await
    }
}
