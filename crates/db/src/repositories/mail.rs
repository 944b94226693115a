//! The e-mail outbox (`mail_outbox`, `mail_outbox_attachments`).
//!
//! Status moves `queued → sent`, `queued → failed` (attempts used up, or the server
//! refused for good), or is `logged` from the start when no SMTP server is configured;
//! an administrator may move `failed` or `logged` back to `queued`.
//!
//! A sender takes a message by [`claim`]: one UPDATE that counts the attempt and pushes
//! `next_attempt_at` to the end of a lease, guarded by `status = 'queued' AND
//! next_attempt_at <= now`, so of two instances racing for one message exactly one
//! updates a row. The outcome is recorded only by the holder of that attempt (the
//! update names the attempt number), so a sender whose lease ran out cannot overwrite
//! a later attempt's result. A sender that dies mid-send leaves the message `queued`
//! with its lease as the next attempt time: it is picked up again when the lease ends.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use crate::entities::mail_outbox::{self, attachment};

/// Waiting to be sent (or to be tried again).
pub const QUEUED: &str = "queued";
/// Accepted by the SMTP server.
pub const SENT: &str = "sent";
/// Given up: attempts used up, or refused for good.
pub const FAILED: &str = "failed";
/// Not sent because no SMTP server is configured; written to the log instead.
pub const LOGGED: &str = "logged";

/// Records a message and its attachments. Run it in a transaction, so that a message
/// is never seen without its attachments.
///
/// # Errors
/// On a database error.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    message: mail_outbox::Model,
    attachments: Vec<attachment::Model>,
) -> Result<(), DbErr> {
    mail_outbox::Entity::insert(mail_outbox::ActiveModel::from(message))
        .exec_without_returning(db)
        .await?;
    // One row at a time: an attachment may be megabytes, and a multi-row INSERT of
    // several would be one statement of their sum.
    for a in attachments {
        attachment::Entity::insert(attachment::ActiveModel::from(a))
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// One message. With `organization_id`, only that organisation's; without, any.
///
/// # Errors
/// On a database error.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    organization_id: Option<Uuid>,
) -> Result<Option<mail_outbox::Model>, DbErr> {
    let mut q = mail_outbox::Entity::find_by_id(id);
    if let Some(org) = organization_id {
        q = q.filter(mail_outbox::Column::OrganizationId.eq(org));
    }
    q.one(db).await
}

/// What [`list`] returns.
#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    /// `Some`: only this organisation's messages. `None`: every message, those of no
    /// organisation included — for the operator only.
    pub organization_id: Option<Uuid>,
    pub status: Option<String>,
    /// Keyset: messages older than this one (ids are time-ordered UUID v7).
    pub before: Option<Uuid>,
    pub limit: u64,
}

/// Messages, newest first.
///
/// # Errors
/// On a database error.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    filter: &OutboxFilter,
) -> Result<Vec<mail_outbox::Model>, DbErr> {
    use mail_outbox::Column as M;
    let mut q = mail_outbox::Entity::find().order_by_desc(M::Id);
    if let Some(org) = filter.organization_id {
        q = q.filter(M::OrganizationId.eq(org));
    }
    if let Some(status) = &filter.status {
        q = q.filter(M::Status.eq(status.as_str()));
    }
    if let Some(before) = filter.before {
        q = q.filter(M::Id.lt(before));
    }
    q.limit(filter.limit).all(db).await
}

/// The ids of queued messages whose time has come, longest waiting first.
///
/// # Errors
/// On a database error.
pub async fn due<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Uuid>, DbErr> {
    use mail_outbox::Column as M;
    mail_outbox::Entity::find()
        .select_only()
        .column(M::Id)
        .filter(M::Status.eq(QUEUED))
        .filter(M::NextAttemptAt.lte(now))
        .order_by_asc(M::NextAttemptAt)
        .limit(limit)
        .into_tuple::<Uuid>()
        .all(db)
        .await
}

/// Takes a due queued message for one attempt: counts the attempt and holds the
/// message until `lease_until`. Returns it as updated, or `None` when it is not queued,
/// not due, or another sender took it first.
///
/// # Errors
/// On a database error.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<mail_outbox::Model>, DbErr> {
    use mail_outbox::Column as M;
    let updated = mail_outbox::Entity::update_many()
        .col_expr(M::Attempts, Expr::col(M::Attempts).add(1))
        .col_expr(M::NextAttemptAt, Expr::value(Some(lease_until)))
        .col_expr(M::UpdatedAt, Expr::value(now))
        .filter(M::Id.eq(id))
        .filter(M::Status.eq(QUEUED))
        .filter(M::NextAttemptAt.lte(now))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(None);
    }
    find(db, id, None).await
}

/// The update that records attempt `attempt`'s outcome, and only if it is still the
/// latest attempt of a queued message.
fn outcome_of(id: Uuid, attempt: i32) -> sea_orm::UpdateMany<mail_outbox::Entity> {
    use mail_outbox::Column as M;
    mail_outbox::Entity::update_many()
        .filter(M::Id.eq(id))
        .filter(M::Status.eq(QUEUED))
        .filter(M::Attempts.eq(attempt))
}

/// Records delivery: `sent`, and the bodies dropped (see the migration for why).
/// Returns whether attempt `attempt` was still the message's latest.
///
/// # Errors
/// On a database error.
pub async fn mark_sent<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    attempt: i32,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use mail_outbox::Column as M;
    let updated = outcome_of(id, attempt)
        .col_expr(M::Status, Expr::value(SENT))
        .col_expr(M::Body, Expr::value(Option::<String>::None))
        .col_expr(M::HtmlBody, Expr::value(Option::<String>::None))
        .col_expr(M::LastError, Expr::value(Option::<String>::None))
        .col_expr(M::NextAttemptAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(M::SentAt, Expr::value(Some(now)))
        .col_expr(M::UpdatedAt, Expr::value(now))
        .exec(db)
        .await?;
    Ok(updated.rows_affected > 0)
}

/// Records a failed attempt to be tried again at `next_attempt_at`. Returns whether
/// attempt `attempt` was still the message's latest.
///
/// # Errors
/// On a database error.
pub async fn retry_later<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    attempt: i32,
    error: &str,
    next_attempt_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use mail_outbox::Column as M;
    let updated = outcome_of(id, attempt)
        .col_expr(M::LastError, Expr::value(error))
        .col_expr(M::NextAttemptAt, Expr::value(Some(next_attempt_at)))
        .col_expr(M::UpdatedAt, Expr::value(now))
        .exec(db)
        .await?;
    Ok(updated.rows_affected > 0)
}

/// Records the final failure. Returns whether attempt `attempt` was still the
/// message's latest.
///
/// # Errors
/// On a database error.
pub async fn mark_failed<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    attempt: i32,
    error: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use mail_outbox::Column as M;
    let updated = outcome_of(id, attempt)
        .col_expr(M::Status, Expr::value(FAILED))
        .col_expr(M::LastError, Expr::value(error))
        .col_expr(M::NextAttemptAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(M::UpdatedAt, Expr::value(now))
        .exec(db)
        .await?;
    Ok(updated.rows_affected > 0)
}

/// Puts a `failed` or `logged` message back in the queue, due now, with a fresh set of
/// `max_attempts`. With `organization_id`, only that organisation's. Returns whether a
/// message moved.
///
/// # Errors
/// On a database error.
pub async fn requeue<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    organization_id: Option<Uuid>,
    max_attempts: i32,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use mail_outbox::Column as M;
    let mut q = mail_outbox::Entity::update_many()
        .col_expr(M::Status, Expr::value(QUEUED))
        .col_expr(M::Attempts, Expr::value(0))
        .col_expr(M::MaxAttempts, Expr::value(max_attempts))
        .col_expr(M::NextAttemptAt, Expr::value(Some(now)))
        .col_expr(M::UpdatedAt, Expr::value(now))
        .filter(M::Id.eq(id))
        .filter(M::Status.is_in([FAILED, LOGGED]));
    if let Some(org) = organization_id {
        q = q.filter(M::OrganizationId.eq(org));
    }
    Ok(q.exec(db).await?.rows_affected > 0)
}

/// A message's attachments, in order.
///
/// # Errors
/// On a database error.
pub async fn attachments<C: ConnectionTrait>(
    db: &C,
    message_id: Uuid,
) -> Result<Vec<attachment::Model>, DbErr> {
    attachment::Entity::find()
        .filter(attachment::Column::MessageId.eq(message_id))
        .order_by_asc(attachment::Column::Position)
        .all(db)
        .await
}

/// Drops a delivered message's attachment bytes (their names and sizes stay on the
/// message).
///
/// # Errors
/// On a database error.
pub async fn delete_attachments<C: ConnectionTrait>(db: &C, message_id: Uuid) -> Result<(), DbErr> {
    attachment::Entity::delete_many()
        .filter(attachment::Column::MessageId.eq(message_id))
        .exec(db)
        .await?;
    Ok(())
}

/// How many messages wait and how many have failed, for monitoring.
///
/// # Errors
/// On a database error.
pub async fn counts<C: ConnectionTrait>(db: &C) -> Result<OutboxCounts, DbErr> {
    let count = |status: &'static str| {
        mail_outbox::Entity::find()
            .filter(mail_outbox::Column::Status.eq(status))
            .count(db)
    };
    Ok(OutboxCounts {
        queued: count(QUEUED).await?,
        failed: count(FAILED).await?,
    })
}

/// Outbox counts by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub queued: u64,
    pub failed: u64,
}
