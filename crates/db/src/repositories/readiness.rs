//! Daily readiness snapshots, for trends.

use chrono::NaiveDate;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::OnConflict,
};
use uuid::Uuid;

use crate::entities::{assessment, readiness_snapshot};

/// Records the day's figures, replacing any taken earlier the same day.
///
/// # Errors
/// On a database error.
pub async fn upsert<C: ConnectionTrait>(
    db: &C,
    rows: Vec<readiness_snapshot::Model>,
) -> Result<(), DbErr> {
    use readiness_snapshot::Column as R;
    for chunk in rows.chunks(200) {
        readiness_snapshot::Entity::insert_many(
            chunk
                .iter()
                .cloned()
                .map(readiness_snapshot::ActiveModel::from),
        )
        .on_conflict(
            OnConflict::columns([R::OrganizationId, R::FrameworkId, R::Day])
                .update_columns([
                    R::AssessmentScore,
                    R::EvidenceCoverage,
                    R::PolicyCoverage,
                    R::ReadinessScore,
                    R::CreatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// The organisation's snapshots from `since` on, oldest first.
///
/// # Errors
/// On a database error.
pub async fn since<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    since: NaiveDate,
) -> Result<Vec<readiness_snapshot::Model>, DbErr> {
    readiness_snapshot::Entity::find()
        .filter(readiness_snapshot::Column::OrganizationId.eq(organization_id))
        .filter(readiness_snapshot::Column::Day.gte(since))
        .order_by_asc(readiness_snapshot::Column::Day)
        .all(db)
        .await
}

/// Whether any snapshot was taken on `day`.
///
/// # Errors
/// On a database error.
pub async fn taken_on<C: ConnectionTrait>(db: &C, day: NaiveDate) -> Result<bool, DbErr> {
    Ok(readiness_snapshot::Entity::find()
        .select_only()
        .column(readiness_snapshot::Column::Id)
        .filter(readiness_snapshot::Column::Day.eq(day))
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .is_some())
}

/// Organisations with at least one completed assessment.
///
/// # Errors
/// On a database error.
pub async fn assessed_organizations<C: ConnectionTrait>(db: &C) -> Result<Vec<Uuid>, DbErr> {
    assessment::Entity::find()
        .select_only()
        .column(assessment::Column::OrganizationId)
        .distinct()
        .filter(assessment::Column::Status.eq("completed"))
        .into_tuple()
        .all(db)
        .await
}

/// The audit events that can change what a readiness summary shows: all but security,
/// membership and report events, which are most of the log (every sign-in is one) and
/// change no figure of it. Word for word the predicate of the partial index
/// `idx_audit_log_org_summary_seq`, which both engines use only for a matching query.
pub const SUMMARY_EVENTS: &str = "event NOT LIKE 'auth.%' AND event NOT LIKE 'member.%' \
     AND event NOT LIKE 'invitation.%' AND event NOT LIKE 'user.%' AND event NOT LIKE 'report%'";

/// What an organisation's readiness summary and plan list are computed from, reduced
/// to one row: when its assessments, tasks, snapshots and evidence last changed, its
/// number of plans, when the library's frameworks last changed, and its latest
/// audited change ([`SUMMARY_EVENTS`], which catches the rest: policy decisions,
/// evidence links, deletions). Any write they show moves one of these, on whichever
/// instance it was made. `activity`, the newest audit entry of any kind, is what the
/// activity list is kept against; the summary ignores it.
#[derive(Debug, Clone, PartialEq, Eq, sea_orm::FromQueryResult)]
pub struct DashboardVersion {
    pub assessments: Option<String>,
    pub tasks: Option<String>,
    pub snapshots: Option<String>,
    pub plans: Option<i64>,
    pub completed: Option<i64>,
    pub audit: Option<i64>,
    pub evidence: Option<String>,
    pub frameworks: Option<String>,
    pub activity: Option<i64>,
}

impl DashboardVersion {
    /// The version of what the summary and the plan list show: all but `activity`.
    #[must_use]
    pub fn without_activity(&self) -> Self {
        Self {
            activity: None,
            ..self.clone()
        }
    }
}

/// The organisation's [`DashboardVersion`]: one query returning one row.
///
/// # Errors
/// On a database error.
pub async fn dashboard_version<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<DashboardVersion, DbErr> {
    use sea_orm::FromQueryResult;
    let org: sea_orm::Value = organization_id.into();
    // Timestamps as text: the same type from both engines, compared only for equality.
    // The audit log's newest entries are read as `ORDER BY seq DESC LIMIT 1`, which
    // both engines answer from the end of an index: PostgreSQL planned `MAX(seq)` over
    // a young table as an aggregate of every entry of the organisation.
    DashboardVersion::find_by_statement(super::frameworks::sql(
        db.get_database_backend(),
        &format!("SELECT \
         (SELECT CAST(MAX(updated_at) AS TEXT) FROM assessments WHERE organization_id = ?) AS assessments, \
         (SELECT CAST(MAX(updated_at) AS TEXT) FROM plan_tasks WHERE organization_id = ?) AS tasks, \
         (SELECT CAST(MAX(created_at) AS TEXT) FROM readiness_snapshots WHERE organization_id = ?) AS snapshots, \
         (SELECT COUNT(*) FROM plans WHERE organization_id = ?) AS plans, \
         (SELECT COUNT(*) FROM assessments WHERE organization_id = ? AND status = 'completed') AS completed, \
         (SELECT seq FROM audit_log WHERE organization_id = ? AND {SUMMARY_EVENTS} ORDER BY seq DESC LIMIT 1) AS audit, \
         (SELECT CAST(MAX(updated_at) AS TEXT) FROM evidence_items WHERE organization_id = ?) AS evidence, \
         (SELECT CAST(MAX(updated_at) AS TEXT) FROM frameworks) AS frameworks, \
         (SELECT seq FROM audit_log WHERE organization_id = ? ORDER BY seq DESC LIMIT 1) AS activity"),
        vec![
            org.clone(),
            org.clone(),
            org.clone(),
            org.clone(),
            org.clone(),
            org.clone(),
            org.clone(),
            org,
        ],
    ))
    .one(db)
    .await?
    .ok_or_else(|| DbErr::RecordNotFound("dashboard version".into()))
}
