//! `answers`: one answer per question of an assessment.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "answers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub assessment_id: Uuid,
    pub question_id: Uuid,
    pub response: String,
    pub notes: Option<String>,
    pub evidence_ids: Json,
    pub answered_by: Option<Uuid>,
    pub prefilled_from: Option<Uuid>,
    pub answered_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
