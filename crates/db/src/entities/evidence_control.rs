//! `evidence_controls`: which controls an item backs, across frameworks.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "evidence_controls")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub evidence_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub control_id: Uuid,
    pub organization_id: Uuid,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
