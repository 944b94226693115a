//! `plans`: an assessment's gaps as a dated implementation plan.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plans")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub assessment_id: Uuid,
    pub framework_id: Uuid,
    pub title: String,
    pub start_date: Date,
    pub target_date: Option<Date>,
    pub projected_end_date: Date,
    pub target_met: bool,
    pub schedule_note: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
