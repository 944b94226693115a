//! Writing and reading the seeded roles.

use chrono::{DateTime, Utc};
use ruleiq_core::Role;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    sea_query::OnConflict,
};
use uuid::Uuid;

use crate::entities::role;

/// Inserts every role, or brings an existing row's description and permissions up to
/// date. Running it twice changes nothing the second time but `updated_at`.
///
/// # Errors
/// On a database error.
pub async fn upsert_all<C: ConnectionTrait>(db: &C, now: DateTime<Utc>) -> Result<usize, DbErr> {
    let rows = Role::ALL.map(|r| role::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(r.as_str().to_owned()),
        description: Set(r.description().to_owned()),
        permissions: Set(serde_json::json!(
            r.permissions()
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
        )),
        created_at: Set(now),
        updated_at: Set(now),
    });
    role::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(role::Column::Name)
                .update_columns([
                    role::Column::Description,
                    role::Column::Permissions,
                    role::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(Role::ALL.len())
}

/// All seeded roles, by name.
///
/// # Errors
/// On a database error.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<role::Model>, DbErr> {
    role::Entity::find()
        .filter(role::Column::Name.is_not_null())
        .order_by_asc(role::Column::Name)
        .all(db)
        .await
}
