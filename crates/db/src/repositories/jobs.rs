//! The job status records (`job_runs`).
//!
//! Status moves `queued → running → succeeded`, or `running → queued` again while
//! attempts remain (with `next_attempt_at` and the last `error`), or `running → failed`
//! once the last attempt has failed. Updates name the state they expect to leave, so a
//! record never moves backwards when two workers race.

use chrono::{DateTime, Utc};
use ruleiq_core::JobId;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use crate::entities::job_run;

/// A job to record before it is queued.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: JobId,
    pub organization_id: Option<Uuid>,
    pub kind: String,
    pub payload: serde_json::Value,
    pub max_attempts: i32,
}

/// Records a queued job.
///
/// # Errors
/// On a database error.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    job: NewJob,
    now: DateTime<Utc>,
) -> Result<job_run::Model, DbErr> {
    let model = job_run::Model {
        id: job.id.as_uuid(),
        organization_id: job.organization_id,
        kind: job.kind,
        status: "queued".into(),
        payload: job.payload,
        result: None,
        error: None,
        attempts: 0,
        max_attempts: job.max_attempts,
        next_attempt_at: None,
        started_at: None,
        finished_at: None,
        created_at: now,
        updated_at: now,
    };
    job_run::Entity::insert(job_run::ActiveModel {
        id: Set(model.id),
        organization_id: Set(model.organization_id),
        kind: Set(model.kind.clone()),
        status: Set(model.status.clone()),
        payload: Set(model.payload.clone()),
        result: Set(None),
        error: Set(None),
        attempts: Set(0),
        max_attempts: Set(model.max_attempts),
        next_attempt_at: Set(None),
        started_at: Set(None),
        finished_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok(model)
}

/// One job by id.
///
/// # Errors
/// On a database error.
pub async fn find<C: ConnectionTrait>(db: &C, id: JobId) -> Result<Option<job_run::Model>, DbErr> {
    job_run::Entity::find_by_id(id.as_uuid()).one(db).await
}

/// Marks a queued job (or an orphaned running one) as running and counts the attempt.
/// Returns the updated record, or `None` when the job is not (or no longer) queued —
/// cancelled, or taken by a live worker.
///
/// # Errors
/// On a database error.
pub async fn start_attempt<C: ConnectionTrait>(
    db: &C,
    id: JobId,
    now: DateTime<Utc>,
    orphaned_before: DateTime<Utc>,
) -> Result<Option<job_run::Model>, DbErr> {
    let updated = job_run::Entity::update_many()
        .col_expr(job_run::Column::Status, Expr::value("running"))
        .col_expr(
            job_run::Column::Attempts,
            Expr::col(job_run::Column::Attempts).add(1),
        )
        .col_expr(job_run::Column::StartedAt, Expr::value(Some(now)))
        .col_expr(
            job_run::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(job_run::Column::UpdatedAt, Expr::value(now))
        .filter(job_run::Column::Id.eq(id.as_uuid()))
        .filter(
            Condition::any()
                .add(job_run::Column::Status.eq("queued"))
                // A worker that died mid-job left its record `running`; once the record
                // has gone unrefreshed past `orphaned_before`, the next delivery takes over.
                .add(
                    Condition::all()
                        .add(job_run::Column::Status.eq("running"))
                        .add(job_run::Column::UpdatedAt.lt(orphaned_before)),
                ),
        )
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(None);
    }
    find(db, id).await
}

/// Marks a running job's record as still being worked on (see [`start_attempt`]).
///
/// # Errors
/// On a database error.
pub async fn keep_alive<C: ConnectionTrait>(
    db: &C,
    id: JobId,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    job_run::Entity::update_many()
        .col_expr(job_run::Column::UpdatedAt, Expr::value(now))
        .filter(job_run::Column::Id.eq(id.as_uuid()))
        .filter(job_run::Column::Status.eq("running"))
        .exec(db)
        .await?;
    Ok(())
}

/// Records success.
///
/// # Errors
/// On a database error.
pub async fn succeed<C: ConnectionTrait>(
    db: &C,
    id: JobId,
    result: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    job_run::Entity::update_many()
        .col_expr(job_run::Column::Status, Expr::value("succeeded"))
        .col_expr(job_run::Column::Result, Expr::value(result))
        .col_expr(job_run::Column::Error, Expr::value(Option::<String>::None))
        .col_expr(job_run::Column::FinishedAt, Expr::value(Some(now)))
        .col_expr(job_run::Column::UpdatedAt, Expr::value(now))
        .filter(job_run::Column::Id.eq(id.as_uuid()))
        .filter(job_run::Column::Status.eq("running"))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a failed attempt that will be tried again at `next_attempt_at`.
///
/// # Errors
/// On a database error.
pub async fn retry_later<C: ConnectionTrait>(
    db: &C,
    id: JobId,
    error: &str,
    next_attempt_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    job_run::Entity::update_many()
        .col_expr(job_run::Column::Status, Expr::value("queued"))
        .col_expr(job_run::Column::Error, Expr::value(error))
        .col_expr(
            job_run::Column::NextAttemptAt,
            Expr::value(Some(next_attempt_at)),
        )
        .col_expr(job_run::Column::UpdatedAt, Expr::value(now))
        .filter(job_run::Column::Id.eq(id.as_uuid()))
        .filter(job_run::Column::Status.eq("running"))
        .exec(db)
        .await?;
    Ok(())
}

/// Records the last attempt's failure: the job is dead and will not run again.
///
/// # Errors
/// On a database error.
pub async fn fail<C: ConnectionTrait>(
    db: &C,
    id: JobId,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    job_run::Entity::update_many()
        .col_expr(job_run::Column::Status, Expr::value("failed"))
        .col_expr(job_run::Column::Error, Expr::value(error))
        .col_expr(job_run::Column::FinishedAt, Expr::value(Some(now)))
        .col_expr(job_run::Column::UpdatedAt, Expr::value(now))
        .filter(job_run::Column::Id.eq(id.as_uuid()))
        .filter(job_run::Column::Status.is_in(["running", "queued"]))
        .exec(db)
        .await?;
    Ok(())
}

/// One job of an organisation; `None` for a job of another organisation or of none.
///
/// # Errors
/// On a database error.
pub async fn find_in_org<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    id: JobId,
) -> Result<Option<job_run::Model>, DbErr> {
    job_run::Entity::find_by_id(id.as_uuid())
        .filter(job_run::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await
}

/// An organisation's jobs, optionally of one status, newest first.
///
/// # Errors
/// On a database error.
pub async fn list_in_org<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    status: Option<&str>,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<job_run::Model>, DbErr> {
    let mut q = job_run::Entity::find()
        .filter(job_run::Column::OrganizationId.eq(organization_id))
        .order_by_desc(job_run::Column::Id);
    if let Some(status) = status {
        q = q.filter(job_run::Column::Status.eq(status));
    }
    if let Some(before) = before {
        q = q.filter(job_run::Column::Id.lt(before));
    }
    q.limit(limit).all(db).await
}

/// The newest jobs, optionally of one status, newest first; `before` continues a page.
///
/// # Errors
/// On a database error.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    status: Option<&str>,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<job_run::Model>, DbErr> {
    let mut q = job_run::Entity::find().order_by_desc(job_run::Column::Id);
    if let Some(status) = status {
        q = q.filter(job_run::Column::Status.eq(status));
    }
    if let Some(before) = before {
        q = q.filter(job_run::Column::Id.lt(before));
    }
    q.limit(limit).all(db).await
}

/// How many jobs are waiting and how many have died, for health and monitoring.
///
/// # Errors
/// On a database error.
pub async fn counts<C: ConnectionTrait>(db: &C) -> Result<JobCounts, DbErr> {
    let queued = job_run::Entity::find()
        .filter(job_run::Column::Status.eq("queued"))
        .count(db)
        .await?;
    let running = job_run::Entity::find()
        .filter(job_run::Column::Status.eq("running"))
        .count(db)
        .await?;
    let failed = job_run::Entity::find()
        .filter(job_run::Column::Status.eq("failed"))
        .count(db)
        .await?;
    Ok(JobCounts {
        queued,
        running,
        failed,
    })
}

/// Job counts by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    pub queued: u64,
    pub running: u64,
    pub failed: u64,
}

/// Cancels a job that has not started; `false` when it is running or finished.
///
/// # Errors
/// On a database error.
pub async fn cancel<C: ConnectionTrait>(
    db: &C,
    id: JobId,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = job_run::Entity::update_many()
        .col_expr(job_run::Column::Status, Expr::value("cancelled"))
        .col_expr(job_run::Column::FinishedAt, Expr::value(Some(now)))
        .col_expr(
            job_run::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(job_run::Column::UpdatedAt, Expr::value(now))
        .filter(job_run::Column::Id.eq(id.as_uuid()))
        .filter(job_run::Column::Status.eq("queued"))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Puts a failed or cancelled job back in the queue with a fresh set of attempts;
/// the record as it is now, or `None` when it was not failed or cancelled.
///
/// # Errors
/// On a database error.
pub async fn requeue<C: ConnectionTrait>(
    db: &C,
    id: JobId,
    now: DateTime<Utc>,
) -> Result<Option<job_run::Model>, DbErr> {
    let res = job_run::Entity::update_many()
        .col_expr(job_run::Column::Status, Expr::value("queued"))
        .col_expr(job_run::Column::Attempts, Expr::value(0))
        .col_expr(job_run::Column::Error, Expr::value(Option::<String>::None))
        .col_expr(
            job_run::Column::FinishedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            job_run::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(job_run::Column::UpdatedAt, Expr::value(now))
        .filter(job_run::Column::Id.eq(id.as_uuid()))
        .filter(job_run::Column::Status.is_in(["failed", "cancelled"]))
        .exec(db)
        .await?;
    if res.rows_affected == 0 {
        return Ok(None);
    }
    find(db, id).await
}
