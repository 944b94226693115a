//! `reports`: one generated document, its progress and where its file is kept.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub report_type: String,
    pub format: String,
    pub framework_id: Option<Uuid>,
    /// queued, running, ready, failed or expired.
    pub status: String,
    pub job_id: Option<Uuid>,
    pub schedule_id: Option<Uuid>,
    pub requested_by: Option<Uuid>,
    /// 0–100.
    pub progress: i32,
    pub progress_note: Option<String>,
    pub file_name: String,
    pub blob_key: Option<String>,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
