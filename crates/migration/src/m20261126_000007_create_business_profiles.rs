//! The business profile: one per organisation, stored as a JSON document because its
//! fields are read whole (applicability rules, plans) and grow with the product.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BusinessProfiles {
    Table,
    Id,
    OrganizationId,
    Profile,
    UpdatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BusinessProfiles::Table)
                    .col(uuid(BusinessProfiles::Id).primary_key())
                    .col(uuid_uniq(BusinessProfiles::OrganizationId))
                    .col(json(BusinessProfiles::Profile))
                    .col(uuid_null(BusinessProfiles::UpdatedBy))
                    .col(timestamp_with_time_zone(BusinessProfiles::CreatedAt))
                    .col(timestamp_with_time_zone(BusinessProfiles::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(BusinessProfiles::Table, BusinessProfiles::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BusinessProfiles::Table).to_owned())
            .await
    }
}
