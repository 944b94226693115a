//! `controls`: the assessable requirements of a framework.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "controls")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub framework_id: Uuid,
    #[sea_orm(column_name = "ref")]
    pub reference: String,
    pub parent_ref: Option<String>,
    pub domain_ref: Option<String>,
    pub title: String,
    pub description: String,
    pub guidance: String,
    pub criticality: String,
    /// The effort estimate in half days, where the content gives one.
    pub effort_half_days: Option<i32>,
    pub evidence_examples: Json,
    pub oscal: Option<Json>,
    pub position: i32,
    pub retired_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
