//! The assistant's conversations and messages, the ledger of every model call, and
//! each organisation's AI budget.
//!
//! Money is stored as whole nano-dollars (10⁻⁹ USD) in a 64-bit integer: both engines
//! sum integers exactly, and a price of $0.15 per million tokens is 150 nano-dollars a
//! token, so no call's cost is ever rounded before it is added up.

use sea_orm_migration::{prelude::*, schema::*};

use crate::one_of;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AiUsage {
    Table,
    Id,
    OrganizationId,
    UserId,
    Feature,
    Provider,
    Model,
    InputTokens,
    OutputTokens,
    CostNanos,
    LatencyMs,
    CacheHit,
    Error,
    Day,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AiBudgets {
    Table,
    OrganizationId,
    DailyLimitNanos,
    MonthlyLimitNanos,
    WarningThresholdPercent,
    HardLimit,
    UpdatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ChatConversations {
    Table,
    Id,
    OrganizationId,
    UserId,
    Title,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ChatMessages {
    Table,
    Id,
    OrganizationId,
    ConversationId,
    Role,
    Content,
    Citations,
    Notices,
    Status,
    Provider,
    Model,
    InputTokens,
    OutputTokens,
    CostNanos,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

const FEATURES: &[&str] = &["assistant", "assessment_help", "policy_generation"];
const PROVIDERS: &[&str] = &["openai", "anthropic", "gemini", "ollama", "offline"];

fn index(name: &str, table: impl IntoIden, cols: Vec<DynIden>) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in cols {
        i.col(c);
    }
    i.to_owned()
}

fn organisation(from: (impl IntoIden, impl IntoIden)) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(Organizations::Table, Organizations::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use AiUsage as U;
        manager
            .create_table(
                Table::create()
                    .table(U::Table)
                    .col(uuid(U::Id).primary_key())
                    .col(uuid(U::OrganizationId))
                    .col(uuid_null(U::UserId))
                    .col(string_len(U::Feature, 32).check(one_of(U::Feature, FEATURES)))
                    .col(string_len(U::Provider, 16).check(one_of(U::Provider, PROVIDERS)))
                    .col(text(U::Model))
                    .col(big_integer(U::InputTokens))
                    .col(big_integer(U::OutputTokens))
                    .col(big_integer(U::CostNanos))
                    .col(big_integer(U::LatencyMs))
                    .col(boolean(U::CacheHit))
                    .col(text_null(U::Error))
                    // The UTC day as YYYY-MM-DD: one grouping key both engines index
                    // and compare alike.
                    .col(string_len(U::Day, 10))
                    .col(timestamp_with_time_zone(U::CreatedAt))
                    .foreign_key(&mut organisation((U::Table, U::OrganizationId)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_ai_usage_org_day",
                U::Table,
                vec![U::OrganizationId.into_iden(), U::Day.into_iden()],
            ))
            .await?;

        use AiBudgets as B;
        manager
            .create_table(
                Table::create()
                    .table(B::Table)
                    .col(uuid(B::OrganizationId).primary_key())
                    .col(big_integer_null(B::DailyLimitNanos))
                    .col(big_integer_null(B::MonthlyLimitNanos))
                    .col(integer(B::WarningThresholdPercent))
                    .col(boolean(B::HardLimit))
                    .col(uuid_null(B::UpdatedBy))
                    .col(timestamp_with_time_zone(B::CreatedAt))
                    .col(timestamp_with_time_zone(B::UpdatedAt))
                    .foreign_key(&mut organisation((B::Table, B::OrganizationId)))
                    .to_owned(),
            )
            .await?;

        use ChatConversations as C;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .col(uuid(C::Id).primary_key())
                    .col(uuid(C::OrganizationId))
                    .col(uuid(C::UserId))
                    .col(text(C::Title))
                    .col(timestamp_with_time_zone(C::CreatedAt))
                    .col(timestamp_with_time_zone(C::UpdatedAt))
                    .foreign_key(&mut organisation((C::Table, C::OrganizationId)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_chat_conversations_owner",
                C::Table,
                vec![
                    C::OrganizationId.into_iden(),
                    C::UserId.into_iden(),
                    C::UpdatedAt.into_iden(),
                ],
            ))
            .await?;

        use ChatMessages as M;
        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .col(uuid(M::Id).primary_key())
                    .col(uuid(M::OrganizationId))
                    .col(uuid(M::ConversationId))
                    .col(string_len(M::Role, 16).check(one_of(M::Role, &["user", "assistant"])))
                    .col(text(M::Content))
                    .col(json(M::Citations))
                    .col(json(M::Notices))
                    .col(
                        string_len(M::Status, 16)
                            .check(one_of(M::Status, &["complete", "cut_short"])),
                    )
                    .col(string_len_null(M::Provider, 16))
                    .col(text_null(M::Model))
                    .col(big_integer(M::InputTokens))
                    .col(big_integer(M::OutputTokens))
                    .col(big_integer(M::CostNanos))
                    .col(timestamp_with_time_zone(M::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(M::Table, M::ConversationId)
                            .to(C::Table, C::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_chat_messages_conversation",
                M::Table,
                vec![M::ConversationId.into_iden(), M::CreatedAt.into_iden()],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ChatMessages::Table.into_iden(),
            ChatConversations::Table.into_iden(),
            AiBudgets::Table.into_iden(),
            AiUsage::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
