//! Notifications (`notifications`) and members' channel choices
//! (`notification_preferences`).
//!
//! Every read or change of a notice names both the organisation and the member, so a
//! notice of another member, or of another organisation, is simply not found. Notices
//! are inserted by [`insert_if_absent`]: `ON CONFLICT (user_id, dedupe_key) DO NOTHING`,
//! so the same event never makes two rows for one person, however many sweeps race.
//!
//! The sweeps' sources ([`expiring_evidence`], [`open_assigned_tasks`]) read every
//! organisation, as the evidence expiry job does; they page by id so that one run
//! never holds more than a batch.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use crate::entities::{
    evidence_item,
    notification::{self, preference},
    plan_task,
};

/// Stores a notice unless its member already has one with the same `dedupe_key`.
/// Returns whether it was inserted.
///
/// # Errors
/// On a database error.
pub async fn insert_if_absent<C: ConnectionTrait>(
    db: &C,
    row: notification::Model,
) -> Result<bool, DbErr> {
    use notification::Column as N;
    let inserted = notification::Entity::insert(notification::ActiveModel::from(row))
        .on_conflict(
            OnConflict::columns([N::UserId, N::DedupeKey])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted > 0)
}

/// Records that a notice's e-mail was handed to the outbox.
///
/// # Errors
/// On a database error.
pub async fn mark_emailed<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    notification::Entity::update_many()
        .col_expr(notification::Column::EmailedAt, Expr::value(Some(now)))
        .filter(notification::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

fn of_member(
    organization_id: Uuid,
    user_id: Uuid,
    unread_only: bool,
) -> sea_orm::Select<notification::Entity> {
    let mut q = notification::Entity::find()
        .filter(notification::Column::OrganizationId.eq(organization_id))
        .filter(notification::Column::UserId.eq(user_id));
    if unread_only {
        q = q.filter(notification::Column::ReadAt.is_null());
    }
    q
}

/// A member's notices, newest first: `limit` of them after skipping `offset`.
///
/// # Errors
/// On a database error.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
    unread_only: bool,
    offset: u64,
    limit: u64,
) -> Result<Vec<notification::Model>, DbErr> {
    of_member(organization_id, user_id, unread_only)
        .order_by_desc(notification::Column::CreatedAt)
        .order_by_desc(notification::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await
}

/// How many notices a member has (only unread ones with `unread_only`).
///
/// # Errors
/// On a database error.
pub async fn count<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
    unread_only: bool,
) -> Result<u64, DbErr> {
    of_member(organization_id, user_id, unread_only)
        .count(db)
        .await
}

/// How many unread notices a member has that arrived at or after `since`, and the
/// newest `limit` of them.
///
/// # Errors
/// On a database error.
pub async fn unread_since<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
    since: DateTime<Utc>,
    limit: u64,
) -> Result<(u64, Vec<notification::Model>), DbErr> {
    let q = of_member(organization_id, user_id, true)
        .filter(notification::Column::CreatedAt.gte(since));
    let total = q.clone().count(db).await?;
    let newest = q
        .order_by_desc(notification::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await?;
    Ok((total, newest))
}

/// One of a member's notices.
///
/// # Errors
/// On a database error.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<notification::Model>, DbErr> {
    of_member(organization_id, user_id, false)
        .filter(notification::Column::Id.eq(id))
        .one(db)
        .await
}

/// Marks one of a member's notices read, if it was not already (the first reading
/// time is kept). Returns whether a row changed.
///
/// # Errors
/// On a database error.
pub async fn mark_read<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use notification::Column as N;
    let done = notification::Entity::update_many()
        .col_expr(N::ReadAt, Expr::value(Some(now)))
        .filter(N::OrganizationId.eq(organization_id))
        .filter(N::UserId.eq(user_id))
        .filter(N::Id.eq(id))
        .filter(N::ReadAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected > 0)
}

/// Marks every unread notice of a member read. Returns how many changed.
///
/// # Errors
/// On a database error.
pub async fn mark_all_read<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    use notification::Column as N;
    let done = notification::Entity::update_many()
        .col_expr(N::ReadAt, Expr::value(Some(now)))
        .filter(N::OrganizationId.eq(organization_id))
        .filter(N::UserId.eq(user_id))
        .filter(N::ReadAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}

/// The channel choices the given members of an organisation changed, for every kind.
///
/// # Errors
/// On a database error.
pub async fn preferences<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_ids: &[Uuid],
) -> Result<Vec<preference::Model>, DbErr> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    preference::Entity::find()
        .filter(preference::Column::OrganizationId.eq(organization_id))
        .filter(preference::Column::UserId.is_in(user_ids.iter().copied()))
        .all(db)
        .await
}

/// Writes a member's choices for the kinds in `rows`, replacing earlier ones. Run it in
/// a transaction, so that a list of choices is saved whole or not at all.
///
/// # Errors
/// On a database error.
pub async fn save_preferences<C: ConnectionTrait>(
    db: &C,
    rows: Vec<preference::Model>,
) -> Result<(), DbErr> {
    use preference::Column as P;
    for row in rows {
        preference::Entity::insert(preference::ActiveModel::from(row))
            .on_conflict(
                OnConflict::columns([P::UserId, P::Kind])
                    .update_columns([P::OrganizationId, P::InApp, P::Email, P::UpdatedAt])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Live evidence, in every organisation, that has not expired and expires after `now`
/// and no later than `until`; `limit` items with ids after `after`, by id.
///
/// # Errors
/// On a database error.
pub async fn expiring_evidence<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<evidence_item::Model>, DbErr> {
    use evidence_item::Column as E;
    let mut q = evidence_item::Entity::find()
        .filter(E::DeletedAt.is_null())
        .filter(E::Status.ne("expired"))
        .filter(E::ExpiresAt.gt(now))
        .filter(E::ExpiresAt.lte(until));
    if let Some(after) = after {
        q = q.filter(E::Id.gt(after));
    }
    q.order_by_asc(E::Id).limit(limit).all(db).await
}

/// Unfinished tasks with an assignee, in every organisation, due on or before
/// `until`; `limit` tasks with ids after `after`, by id.
///
/// # Errors
/// On a database error.
pub async fn open_assigned_tasks<C: ConnectionTrait>(
    db: &C,
    until: NaiveDate,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<plan_task::Model>, DbErr> {
    use plan_task::Column as T;
    let mut q = plan_task::Entity::find()
        .filter(T::Status.ne("done"))
        .filter(T::AssigneeId.is_not_null())
        .filter(T::DueDate.lte(until));
    if let Some(after) = after {
        q = q.filter(T::Id.gt(after));
    }
    q.order_by_asc(T::Id).limit(limit).all(db).await
}

/// A member's unfinished tasks in an organisation: how many, how many of those are
/// due on or before `soon`, and the `limit` due soonest.
///
/// # Errors
/// On a database error.
pub async fn open_tasks_of<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
    soon: NaiveDate,
    limit: u64,
) -> Result<(u64, u64, Vec<plan_task::Model>), DbErr> {
    use plan_task::Column as T;
    let q = plan_task::Entity::find()
        .filter(T::OrganizationId.eq(organization_id))
        .filter(T::AssigneeId.eq(user_id))
        .filter(T::Status.ne("done"));
    let total = q.clone().count(db).await?;
    let due_soon = q.clone().filter(T::DueDate.lte(soon)).count(db).await?;
    let soonest = q
        .order_by_asc(T::DueDate)
        .order_by_asc(T::Position)
        .limit(limit)
        .all(db)
        .await?;
    Ok((total, due_soon, soonest))
}

/// Members of every organisation with their accounts, active accounts only; `limit`
/// memberships with ids after `after`, by id. What the weekly digest walks.
///
/// # Errors
/// On a database error.
pub async fn active_members<C: ConnectionTrait>(
    db: &C,
    after: Option<Uuid>,
    limit: u64,
) -> Result<
    Vec<(
        crate::entities::membership::Model,
        crate::entities::user::Model,
    )>,
    DbErr,
> {
    use crate::entities::{
        membership::{self, FindWithUser},
        user,
    };
    let mut q = membership::Entity::find().filter(user::Column::IsActive.eq(true));
    if let Some(after) = after {
        q = q.filter(membership::Column::Id.gt(after));
    }
    let rows = q
        .order_by_asc(membership::Column::Id)
        .limit(limit)
        .find_also_related_user()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(m, u)| u.map(|u| (m, u)))
        .collect())
}
