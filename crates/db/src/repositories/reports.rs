//! Reports and their schedules. Every read a member can cause takes the
//! organisation; the worker's writes take the report's id alone, because the job that
//! makes them was queued for that report.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entities::{
    control, evidence_control, evidence_item, plan_task, policy, report, report_schedule,
};

/// Records a report to be generated.
///
/// # Errors
/// On a database error.
pub async fn insert<C: ConnectionTrait>(db: &C, row: report::Model) -> Result<(), DbErr> {
    report::Entity::insert(report::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// One of the organisation's reports.
///
/// # Errors
/// On a database error.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<report::Model>, DbErr> {
    report::Entity::find_by_id(id)
        .filter(report::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await
}

/// A report by id alone, for the worker that generates it.
///
/// # Errors
/// On a database error.
pub async fn find_for_job<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Option<report::Model>, DbErr> {
    report::Entity::find_by_id(id).one(db).await
}

/// A page of the organisation's reports, newest first.
///
/// # Errors
/// On a database error.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<report::Model>, DbErr> {
    use report::Column as R;
    let mut q = report::Entity::find().filter(R::OrganizationId.eq(organization_id));
    if let Some((at, id)) = before {
        q = q.filter(
            Condition::any()
                .add(R::CreatedAt.lt(at))
                .add(Condition::all().add(R::CreatedAt.eq(at)).add(R::Id.lt(id))),
        );
    }
    q.order_by_desc(R::CreatedAt)
        .order_by_desc(R::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Links a report to the job that generates it.
///
/// # Errors
/// On a database error.
pub async fn set_job<C: ConnectionTrait>(db: &C, id: Uuid, job_id: Uuid) -> Result<(), DbErr> {
    report::Entity::update_many()
        .set(report::ActiveModel {
            job_id: Set(Some(job_id)),
            ..Default::default()
        })
        .filter(report::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Marks a report running (again, on a retry) from 0 %.
///
/// # Errors
/// On a database error.
pub async fn start<C: ConnectionTrait>(db: &C, id: Uuid, now: DateTime<Utc>) -> Result<(), DbErr> {
    report::Entity::update_many()
        .set(report::ActiveModel {
            status: Set("running".into()),
            progress: Set(0),
            progress_note: Set(Some("starting".into())),
            error: Set(None),
            started_at: Set(Some(now)),
            ..Default::default()
        })
        .filter(report::Column::Id.eq(id))
        .filter(report::Column::Status.is_in(["queued", "running", "failed"]))
        .exec(db)
        .await?;
    Ok(())
}

/// Records how far generation has got.
///
/// # Errors
/// On a database error.
pub async fn progress<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    percent: i32,
    note: &str,
) -> Result<(), DbErr> {
    report::Entity::update_many()
        .set(report::ActiveModel {
            progress: Set(percent.clamp(0, 100)),
            progress_note: Set(Some(note.to_owned())),
            ..Default::default()
        })
        .filter(report::Column::Id.eq(id))
        .filter(report::Column::Status.eq("running"))
        .exec(db)
        .await?;
    Ok(())
}

/// Where a finished report's file is kept.
#[derive(Debug, Clone)]
pub struct Stored {
    pub blob_key: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub expires_at: DateTime<Utc>,
}

/// Marks a report ready with its file.
///
/// # Errors
/// On a database error.
pub async fn finish<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    stored: Stored,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    report::Entity::update_many()
        .set(report::ActiveModel {
            status: Set("ready".into()),
            progress: Set(100),
            progress_note: Set(Some("ready".into())),
            blob_key: Set(Some(stored.blob_key)),
            size_bytes: Set(Some(stored.size_bytes)),
            sha256: Set(Some(stored.sha256)),
            finished_at: Set(Some(now)),
            expires_at: Set(Some(stored.expires_at)),
            ..Default::default()
        })
        .filter(report::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Marks a report failed with the reason.
///
/// # Errors
/// On a database error.
pub async fn fail<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    report::Entity::update_many()
        .set(report::ActiveModel {
            status: Set("failed".into()),
            progress_note: Set(Some("failed".into())),
            error: Set(Some(error.to_owned())),
            finished_at: Set(Some(now)),
            ..Default::default()
        })
        .filter(report::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Ready reports whose retention ended before `now`, oldest first.
///
/// # Errors
/// On a database error.
pub async fn expired_due<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<report::Model>, DbErr> {
    report::Entity::find()
        .filter(report::Column::Status.eq("ready"))
        .filter(report::Column::ExpiresAt.lte(now))
        .order_by_asc(report::Column::ExpiresAt)
        .limit(limit)
        .all(db)
        .await
}

/// Marks a report's file removed; false if it was no longer ready.
///
/// # Errors
/// On a database error.
pub async fn mark_expired<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<bool, DbErr> {
    let res = report::Entity::update_many()
        .set(report::ActiveModel {
            status: Set("expired".into()),
            blob_key: Set(None),
            ..Default::default()
        })
        .filter(report::Column::Id.eq(id))
        .filter(report::Column::Status.eq("ready"))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Deletes one of the organisation's reports; the row it was, if any.
///
/// # Errors
/// On a database error.
pub async fn delete<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<report::Model>, DbErr> {
    let Some(row) = find(db, organization_id, id).await? else {
        return Ok(None);
    };
    report::Entity::delete_many()
        .filter(report::Column::Id.eq(id))
        .filter(report::Column::OrganizationId.eq(organization_id))
        .exec(db)
        .await?;
    Ok(Some(row))
}

/// Adds a schedule.
///
/// # Errors
/// On a database error.
pub async fn insert_schedule<C: ConnectionTrait>(
    db: &C,
    row: report_schedule::Model,
) -> Result<(), DbErr> {
    report_schedule::Entity::insert(report_schedule::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The organisation's schedules, oldest first.
///
/// # Errors
/// On a database error.
pub async fn schedules<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<report_schedule::Model>, DbErr> {
    report_schedule::Entity::find()
        .filter(report_schedule::Column::OrganizationId.eq(organization_id))
        .order_by_asc(report_schedule::Column::CreatedAt)
        .order_by_asc(report_schedule::Column::Id)
        .all(db)
        .await
}

/// One of the organisation's schedules.
///
/// # Errors
/// On a database error.
pub async fn find_schedule<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<report_schedule::Model>, DbErr> {
    report_schedule::Entity::find_by_id(id)
        .filter(report_schedule::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await
}

/// Deletes one of the organisation's schedules; false if there was none.
///
/// # Errors
/// On a database error.
pub async fn delete_schedule<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    id: Uuid,
) -> Result<bool, DbErr> {
    let res = report_schedule::Entity::delete_many()
        .filter(report_schedule::Column::Id.eq(id))
        .filter(report_schedule::Column::OrganizationId.eq(organization_id))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Switches a schedule off.
///
/// # Errors
/// On a database error.
pub async fn disable_schedule<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<(), DbErr> {
    report_schedule::Entity::update_many()
        .set(report_schedule::ActiveModel {
            enabled: Set(false),
            ..Default::default()
        })
        .filter(report_schedule::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Enabled schedules due at `now`, soonest first.
///
/// # Errors
/// On a database error.
pub async fn due_schedules<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<report_schedule::Model>, DbErr> {
    report_schedule::Entity::find()
        .filter(report_schedule::Column::Enabled.eq(true))
        .filter(report_schedule::Column::NextRunAt.lte(now))
        .order_by_asc(report_schedule::Column::NextRunAt)
        .limit(limit)
        .all(db)
        .await
}

/// Moves a schedule on to its next run, if it was still due at `was_due`: false when
/// another instance got there first, which is how a tick runs once.
///
/// # Errors
/// On a database error.
pub async fn advance_schedule<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    was_due: DateTime<Utc>,
    next: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = report_schedule::Entity::update_many()
        .set(report_schedule::ActiveModel {
            next_run_at: Set(next),
            last_run_at: Set(Some(now)),
            ..Default::default()
        })
        .filter(report_schedule::Column::Id.eq(id))
        .filter(report_schedule::Column::NextRunAt.eq(was_due))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Every plan task of the organisation, soonest due first (a report's gaps and
/// progress).
///
/// # Errors
/// On a database error.
pub async fn tasks<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<plan_task::Model>, DbErr> {
    plan_task::Entity::find()
        .filter(plan_task::Column::OrganizationId.eq(organization_id))
        .order_by_asc(plan_task::Column::DueDate)
        .order_by_asc(plan_task::Column::Position)
        .all(db)
        .await
}

/// A page of the organisation's live evidence items after `after` (by id).
///
/// # Errors
/// On a database error.
pub async fn evidence_page<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<evidence_item::Model>, DbErr> {
    use evidence_item::Column as E;
    let mut q = evidence_item::Entity::find()
        .filter(E::OrganizationId.eq(organization_id))
        .filter(E::DeletedAt.is_null());
    if let Some(after) = after {
        q = q.filter(E::Id.gt(after));
    }
    q.order_by_asc(E::Id).limit(limit).all(db).await
}

/// Every (evidence item, control) link of the organisation.
///
/// # Errors
/// On a database error.
pub async fn evidence_links<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<(Uuid, Uuid)>, DbErr> {
    evidence_control::Entity::find()
        .select_only()
        .column(evidence_control::Column::EvidenceId)
        .column(evidence_control::Column::ControlId)
        .filter(evidence_control::Column::OrganizationId.eq(organization_id))
        .into_tuple()
        .all(db)
        .await
}

/// The organisation's (evidence item, control) links to the given controls.
///
/// # Errors
/// On a database error.
pub async fn evidence_links_to<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    control_ids: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, DbErr> {
    let mut out = Vec::new();
    // Bounded IN lists: PostgreSQL and SQLite both cap bind parameters.
    for chunk in control_ids.chunks(500) {
        out.extend(
            evidence_control::Entity::find()
                .select_only()
                .column(evidence_control::Column::EvidenceId)
                .column(evidence_control::Column::ControlId)
                .filter(evidence_control::Column::OrganizationId.eq(organization_id))
                .filter(evidence_control::Column::ControlId.is_in(chunk.to_vec()))
                .into_tuple::<(Uuid, Uuid)>()
                .all(db)
                .await?,
        );
    }
    Ok(out)
}

/// The titles of the organisation's live evidence items among `ids`.
///
/// # Errors
/// On a database error.
pub async fn live_evidence_titles<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, DbErr> {
    use evidence_item::Column as E;
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        out.extend(
            evidence_item::Entity::find()
                .select_only()
                .column(E::Id)
                .column(E::Title)
                .filter(E::OrganizationId.eq(organization_id))
                .filter(E::DeletedAt.is_null())
                .filter(E::Id.is_in(chunk.to_vec()))
                .into_tuple::<(Uuid, String)>()
                .all(db)
                .await?,
        );
    }
    Ok(out)
}

/// The organisation's approved policies, by title.
///
/// # Errors
/// On a database error.
pub async fn approved_policies<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<policy::Model>, DbErr> {
    policy::Entity::find()
        .filter(policy::Column::OrganizationId.eq(organization_id))
        .filter(policy::Column::DeletedAt.is_null())
        .filter(policy::Column::Status.eq("approved"))
        .order_by_asc(policy::Column::Title)
        .all(db)
        .await
}

/// Controls by id (any framework the ids belong to).
///
/// # Errors
/// On a database error.
pub async fn controls_by_id<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> Result<Vec<control::Model>, DbErr> {
    let mut out = Vec::with_capacity(ids.len());
    // Bounded IN lists: PostgreSQL and SQLite both cap bind parameters.
    for chunk in ids.chunks(500) {
        out.extend(
            control::Entity::find()
                .filter(control::Column::Id.is_in(chunk.to_vec()))
                .all(db)
                .await?,
        );
    }
    Ok(out)
}
