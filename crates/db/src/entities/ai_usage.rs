//! `ai_usage`: the ledger of model calls, one row per call (cache hits included).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ai_usage")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Option<Uuid>,
    pub feature: String,
    pub provider: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Cost in nano-dollars (10⁻⁹ USD), exact.
    pub cost_nanos: i64,
    pub latency_ms: i64,
    pub cache_hit: bool,
    pub error: Option<String>,
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
