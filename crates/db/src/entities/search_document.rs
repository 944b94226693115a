//! `search_documents`: one searchable thing (a control now; evidence and policies later).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "search_documents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    pub kind: String,
    pub subject_id: Uuid,
    pub framework_slug: Option<String>,
    pub title: String,
    pub body: String,
    /// The scope's indexing round that last wrote this row (0: before rounds were
    /// numbered); see `ruleiq_services::search`.
    pub seq: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
