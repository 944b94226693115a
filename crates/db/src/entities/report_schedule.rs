//! `report_schedules`: a report generated on a cron schedule and mailed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "report_schedules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub report_type: String,
    pub format: String,
    pub framework_id: Option<Uuid>,
    /// Five fields: minute hour day-of-month month day-of-week.
    pub cron: String,
    /// An IANA zone, e.g. `Europe/London`.
    pub timezone: String,
    /// A JSON array of e-mail addresses.
    pub recipients: Json,
    pub enabled: bool,
    pub created_by: Option<Uuid>,
    pub next_run_at: DateTimeUtc,
    pub last_run_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
