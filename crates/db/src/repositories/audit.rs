//! The hash-chained audit log.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use uuid::Uuid;

use crate::entities::{audit_chain_head, audit_entry};

/// The hash before the first entry of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry to append, before it has a place in the chain.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub organization_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub event: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// The chain an organisation's entries (or, without one, system entries) belong to.
#[must_use]
pub fn chain_key(organization_id: Option<Uuid>) -> String {
    organization_id.map_or_else(|| "system".to_owned(), |o| o.to_string())
}

/// Appends an entry, computing its hash with `hash(prev_hash, seq, entry)`.
///
/// The chain head is updated first in the transaction: on PostgreSQL that locks its
/// row, on SQLite it takes the write lock, so concurrent appends queue rather than
/// fork the chain.
///
/// # Errors
/// On a database error.
pub async fn append<F>(
    db: &DatabaseConnection,
    entry: NewEntry,
    hash: F,
) -> Result<audit_entry::Model, DbErr>
where
    F: FnOnce(&str, i64, &NewEntry) -> String,
{
    let txn = crate::begin(db).await?;
    let key = chain_key(entry.organization_id);
    audit_chain_head::Entity::insert(audit_chain_head::ActiveModel {
        chain_key: Set(key.clone()),
        seq: Set(0),
        hash: Set(GENESIS_HASH.to_owned()),
        updated_at: Set(entry.created_at),
    })
    .on_conflict(
        OnConflict::column(audit_chain_head::Column::ChainKey)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    audit_chain_head::Entity::update_many()
        .col_expr(
            audit_chain_head::Column::Seq,
            Expr::col(audit_chain_head::Column::Seq).add(1),
        )
        .filter(audit_chain_head::Column::ChainKey.eq(key.clone()))
        .exec(&txn)
        .await?;
    let head = audit_chain_head::Entity::find_by_id(key.clone())
        .one(&txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("audit chain head {key}")))?;
    let digest = hash(&head.hash, head.seq, &entry);
    let model = audit_entry::Model {
        id: Uuid::now_v7(),
        organization_id: entry.organization_id,
        seq: head.seq,
        actor_user_id: entry.actor_user_id,
        event: entry.event,
        target_type: entry.target_type,
        target_id: entry.target_id,
        ip: entry.ip,
        user_agent: entry.user_agent,
        details: entry.details,
        prev_hash: head.hash,
        hash: digest.clone(),
        created_at: entry.created_at,
    };
    audit_entry::Entity::insert(audit_entry::ActiveModel {
        id: Set(model.id),
        organization_id: Set(model.organization_id),
        seq: Set(model.seq),
        actor_user_id: Set(model.actor_user_id),
        event: Set(model.event.clone()),
        target_type: Set(model.target_type.clone()),
        target_id: Set(model.target_id.clone()),
        ip: Set(model.ip.clone()),
        user_agent: Set(model.user_agent.clone()),
        details: Set(model.details.clone()),
        prev_hash: Set(model.prev_hash.clone()),
        hash: Set(model.hash.clone()),
        created_at: Set(model.created_at),
    })
    .exec_without_returning(&txn)
    .await?;
    audit_chain_head::Entity::update_many()
        .col_expr(audit_chain_head::Column::Hash, Expr::value(digest))
        .col_expr(
            audit_chain_head::Column::UpdatedAt,
            Expr::value(model.created_at),
        )
        .filter(audit_chain_head::Column::ChainKey.eq(key))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(model)
}

/// An organisation's entries, newest first; `before` is the `seq` to continue below.
///
/// # Errors
/// On a database error.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<audit_entry::Model>, DbErr> {
    let mut q = audit_entry::Entity::find()
        .filter(audit_entry::Column::OrganizationId.eq(organization_id))
        .order_by_desc(audit_entry::Column::Seq);
    if let Some(before) = before {
        q = q.filter(audit_entry::Column::Seq.lt(before));
    }
    q.limit(limit).all(db).await
}

/// An organisation's entries in chain order, `batch` at a time from after `after_seq`.
///
/// # Errors
/// On a database error.
pub async fn chain_batch<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    after_seq: i64,
    batch: u64,
) -> Result<Vec<audit_entry::Model>, DbErr> {
    audit_entry::Entity::find()
        .filter(audit_entry::Column::OrganizationId.eq(organization_id))
        .filter(audit_entry::Column::Seq.gt(after_seq))
        .order_by_asc(audit_entry::Column::Seq)
        .limit(batch)
        .all(db)
        .await
}
