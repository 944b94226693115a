//! `policy_versions`: every version of a policy's text, with who or what wrote it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "policy_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub policy_id: Uuid,
    pub version: i32,
    pub title: String,
    pub content_markdown: String,
    pub author_id: Option<Uuid>,
    pub generated_provider: Option<String>,
    pub generated_model: Option<String>,
    pub prompt_version: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
