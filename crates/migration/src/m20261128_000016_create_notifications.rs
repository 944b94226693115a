//! Notifications: what each member was told (in the app and, by the outbox, by
//! e-mail), and which kinds of notice each member wants on which channel.
//!
//! `dedupe_key` names the event a notice is about (`evidence_expiring:{id}:7:{date}`,
//! `weekly_digest:2026-W48`, …). It is unique per user, so a daily sweep that runs
//! twice, on two instances, or again after a crash, inserts nothing the second time and
//! sends no second e-mail: the e-mail goes out only with a row that was newly inserted.
//!
//! `notification_preferences` holds only the choices a member changed; a kind without a
//! row has the defaults written in code (`ruleiq_services::notifications::Kind`), so a
//! new kind needs no data migration.

use sea_orm_migration::{prelude::*, schema::*};

use crate::one_of;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    OrganizationId,
    UserId,
    Kind,
    Title,
    Body,
    Link,
    SubjectId,
    DedupeKey,
    ReadAt,
    EmailedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum NotificationPreferences {
    Table,
    UserId,
    OrganizationId,
    Kind,
    InApp,
    Email,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

/// Kept in step with `ruleiq_services::notifications::Kind`.
const KINDS: &[&str] = &[
    "evidence_expiring",
    "task_due",
    "task_overdue",
    "approval_requested",
    "approval_decided",
    "report_ready",
    "weekly_digest",
];

fn organisation(table: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(Organizations::Table, Organizations::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn user(table: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Notifications as N;
        manager
            .create_table(
                Table::create()
                    .table(N::Table)
                    .col(uuid(N::Id).primary_key())
                    .col(uuid(N::OrganizationId))
                    .col(uuid(N::UserId))
                    .col(string_len(N::Kind, 32).check(one_of(N::Kind, KINDS)))
                    .col(text(N::Title))
                    .col(text(N::Body))
                    // A path inside the web UI (`/evidence/{id}`), never a full URL: the
                    // e-mail prefixes the server's public address.
                    .col(text_null(N::Link))
                    // What the notice is about (an evidence item, task, policy or
                    // report); no foreign key, as it may name any of those tables.
                    .col(uuid_null(N::SubjectId))
                    .col(string_len(N::DedupeKey, 200))
                    .col(timestamp_with_time_zone_null(N::ReadAt))
                    .col(timestamp_with_time_zone_null(N::EmailedAt))
                    .col(timestamp_with_time_zone(N::CreatedAt))
                    .foreign_key(&mut organisation(N::Table, N::OrganizationId))
                    .foreign_key(&mut user(N::Table, N::UserId))
                    .to_owned(),
            )
            .await?;
        // One notice per event per person: the sweeps' ON CONFLICT DO NOTHING target.
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_user_dedupe")
                    .table(N::Table)
                    .col(N::UserId)
                    .col(N::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The bell and the list: a member's unread notices, newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_user_read_created")
                    .table(N::Table)
                    .col(N::UserId)
                    .col(N::ReadAt)
                    .col(N::CreatedAt)
                    .to_owned(),
            )
            .await?;

        use NotificationPreferences as P;
        manager
            .create_table(
                Table::create()
                    .table(P::Table)
                    .col(uuid(P::UserId))
                    .col(uuid(P::OrganizationId))
                    .col(string_len(P::Kind, 32).check(one_of(P::Kind, KINDS)))
                    .col(boolean(P::InApp))
                    .col(boolean(P::Email))
                    .col(timestamp_with_time_zone(P::UpdatedAt))
                    .primary_key(Index::create().col(P::UserId).col(P::Kind))
                    .foreign_key(&mut organisation(P::Table, P::OrganizationId))
                    .foreign_key(&mut user(P::Table, P::UserId))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            NotificationPreferences::Table.into_iden(),
            Notifications::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
