//! `memberships`: which organisation an account belongs to, in which role.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "memberships")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    #[sea_orm(unique)]
    pub user_id: Uuid,
    pub role: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Entity {
    /// `memberships.user_id → users.id`.
    #[must_use]
    pub fn belongs_to_user() -> RelationDef {
        Entity::belongs_to(super::user::Entity)
            .from(Column::UserId)
            .to(super::user::Column::Id)
            .into()
    }
}

/// Lets a membership query bring its account along.
pub trait FindWithUser {
    /// Each membership with its account.
    fn find_also_related_user(self) -> sea_orm::SelectTwo<Entity, super::user::Entity>;
}

impl FindWithUser for sea_orm::Select<Entity> {
    fn find_also_related_user(self) -> sea_orm::SelectTwo<Entity, super::user::Entity> {
        use sea_orm::QuerySelect;
        self.join(sea_orm::JoinType::InnerJoin, Entity::belongs_to_user())
            .select_also(super::user::Entity)
    }
}
