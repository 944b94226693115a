//! The e-mail outbox: every message the server sends, and the attachments of those not
//! yet delivered.
//!
//! A message is written here first and delivered from here, so a mail server that is
//! down, slow or refusing costs a retry, never a lost message, and an administrator can
//! see what was sent, what is waiting and why something failed. Attachment bytes live in
//! their own table so that listing the outbox never reads them; the outbox row carries
//! their names, types and sizes as JSON.

use sea_orm_migration::{prelude::*, schema::*};

use crate::one_of;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    Id,
    OrganizationId,
    Recipients,
    Subject,
    Body,
    HtmlBody,
    Attachments,
    Status,
    Attempts,
    MaxAttempts,
    LastError,
    NextAttemptAt,
    SentAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MailOutboxAttachments {
    Table,
    Id,
    MessageId,
    Position,
    Filename,
    ContentType,
    SizeBytes,
    Content,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use MailOutbox as M;
        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .col(uuid(M::Id).primary_key())
                    // Null for mail that belongs to no organisation, such as a password
                    // reset: only the server's operator reads those.
                    .col(uuid_null(M::OrganizationId))
                    .col(json(M::Recipients))
                    .col(text(M::Subject))
                    // Null once delivered: the outbox is not an archive, and a delivered
                    // reset or invitation link must not stay readable in the database.
                    .col(text_null(M::Body))
                    .col(text_null(M::HtmlBody))
                    .col(json(M::Attachments))
                    .col(
                        string_len(M::Status, 16)
                            .check(one_of(M::Status, &["queued", "sent", "failed", "logged"])),
                    )
                    .col(integer(M::Attempts).default(0))
                    .col(integer(M::MaxAttempts))
                    .col(text_null(M::LastError))
                    .col(timestamp_with_time_zone_null(M::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(M::SentAt))
                    .col(timestamp_with_time_zone(M::CreatedAt))
                    .col(timestamp_with_time_zone(M::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(M::Table, M::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The sender's question: which queued messages are due?
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_outbox_status_due")
                    .table(M::Table)
                    .col(M::Status)
                    .col(M::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        // An organisation's outbox, newest first (ids are time-ordered UUID v7).
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_outbox_org_id")
                    .table(M::Table)
                    .col(M::OrganizationId)
                    .col(M::Id)
                    .to_owned(),
            )
            .await?;

        use MailOutboxAttachments as A;
        manager
            .create_table(
                Table::create()
                    .table(A::Table)
                    .col(uuid(A::Id).primary_key())
                    .col(uuid(A::MessageId))
                    .col(integer(A::Position))
                    .col(text(A::Filename))
                    .col(text(A::ContentType))
                    .col(big_integer(A::SizeBytes))
                    .col(blob(A::Content))
                    .col(timestamp_with_time_zone(A::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(A::Table, A::MessageId)
                            .to(M::Table, M::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_outbox_attachments_message")
                    .table(A::Table)
                    .col(A::MessageId)
                    .col(A::Position)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            MailOutboxAttachments::Table.into_iden(),
            MailOutbox::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
