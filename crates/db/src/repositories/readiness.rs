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
