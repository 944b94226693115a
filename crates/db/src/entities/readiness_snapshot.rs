//! `readiness_snapshots`: a framework's readiness on one day, for trends.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "readiness_snapshots")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub framework_id: Uuid,
    pub day: Date,
    pub assessment_score: f64,
    pub evidence_coverage: f64,
    pub policy_coverage: f64,
    pub readiness_score: f64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
