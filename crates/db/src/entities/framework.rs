//! `frameworks`: a framework of the library (no organisation) or one an organisation imported.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "frameworks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    pub scope: String,
    pub slug: String,
    pub name: String,
    pub version: String,
    pub publisher: String,
    pub jurisdiction: String,
    pub url: Option<String>,
    pub description: String,
    pub source: String,
    pub content_version: i32,
    pub content_hash: String,
    pub source_uuid: Option<String>,
    pub oscal: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
