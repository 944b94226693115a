//! The business profile of an organisation.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::OnConflict,
};
use uuid::Uuid;

use crate::entities::business_profile;

/// The organisation's profile, if it has saved one.
///
/// # Errors
/// On a database error.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Option<business_profile::Model>, DbErr> {
    business_profile::Entity::find()
        .filter(business_profile::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await
}

/// Saves the organisation's profile, replacing the previous one. Returns whether it
/// existed before.
///
/// # Errors
/// On a database error.
pub async fn save<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    profile: serde_json::Value,
    by: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let existed = find(db, organization_id).await?.is_some();
    business_profile::Entity::insert(business_profile::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(organization_id),
        profile: Set(profile),
        updated_by: Set(Some(by)),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(business_profile::Column::OrganizationId)
            .update_columns([
                business_profile::Column::Profile,
                business_profile::Column::UpdatedBy,
                business_profile::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(existed)
}

/// Deletes the organisation's profile; whether there was one.
///
/// # Errors
/// On a database error.
pub async fn delete<C: ConnectionTrait>(db: &C, organization_id: Uuid) -> Result<bool, DbErr> {
    Ok(business_profile::Entity::delete_many()
        .filter(business_profile::Column::OrganizationId.eq(organization_id))
        .exec(db)
        .await?
        .rows_affected
        > 0)
}
