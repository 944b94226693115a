//! `policies`: an organisation's policy documents, with the current version's text.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "policies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub policy_type: String,
    pub title: String,
    pub status: String,
    pub generation: String,
    pub generation_error: Option<String>,
    pub version: i32,
    pub content_markdown: String,
    /// Framework slugs the policy was written for.
    pub frameworks: Json,
    pub template_version: Option<i32>,
    pub generated_provider: Option<String>,
    pub generated_model: Option<String>,
    pub prompt_version: Option<String>,
    pub created_by: Option<Uuid>,
    pub submitted_by: Option<Uuid>,
    pub submitted_at: Option<DateTimeUtc>,
    pub approved_by: Option<Uuid>,
    pub approved_at: Option<DateTimeUtc>,
    pub next_review_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
