//! `sessions`: one sign-in, the family of its refresh tokens. Access tokens carry the
//! session id, so revoking the session ends both at once.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub revoked_at: Option<DateTimeUtc>,
    pub revoked_reason: Option<String>,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Entity {
    /// `sessions.user_id → users.id`.
    #[must_use]
    pub fn belongs_to_user() -> RelationDef {
        Entity::belongs_to(super::user::Entity)
            .from(Column::UserId)
            .to(super::user::Column::Id)
            .into()
    }

    /// `sessions.user_id → memberships.user_id`.
    #[must_use]
    pub fn has_membership() -> RelationDef {
        Entity::belongs_to(super::membership::Entity)
            .from(Column::UserId)
            .to(super::membership::Column::UserId)
            .into()
    }

    /// `sessions.organization_id → organizations.id`.
    #[must_use]
    pub fn belongs_to_organization() -> RelationDef {
        Entity::belongs_to(super::organization::Entity)
            .from(Column::OrganizationId)
            .to(super::organization::Column::Id)
            .into()
    }
}
