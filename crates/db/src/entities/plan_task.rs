//! `plan_tasks`: one task per gap of a plan's assessment.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plan_tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub plan_id: Uuid,
    pub control_id: Uuid,
    #[sea_orm(column_name = "ref")]
    pub reference: String,
    pub title: String,
    pub description: String,
    pub priority: String,
    pub response: String,
    pub position: i32,
    pub status: String,
    pub assignee_id: Option<Uuid>,
    pub due_date: Date,
    pub effort_half_days: i32,
    pub notes: Option<String>,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
