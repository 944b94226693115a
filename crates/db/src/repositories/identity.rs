//! Organisations, users, memberships, sessions and refresh tokens.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use crate::entities::{
    invitation, membership, membership::FindWithUser, organization, password_reset, refresh_token,
    session, user,
};

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub full_name: String,
    pub password_hash: String,
}

/// Creates an organisation.
///
/// # Errors
/// On a database error.
pub async fn insert_organization<C: ConnectionTrait>(
    db: &C,
    name: &str,
    now: DateTime<Utc>,
) -> Result<organization::Model, DbErr> {
    organization::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// Creates an account.
///
/// # Errors
/// On a database error, including a unique violation for a taken e-mail address.
pub async fn insert_user<C: ConnectionTrait>(
    db: &C,
    new: NewUser,
    now: DateTime<Utc>,
) -> Result<user::Model, DbErr> {
    user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(new.email),
        full_name: Set(new.full_name),
        password_hash: Set(new.password_hash),
        is_active: Set(true),
        failed_logins: Set(0),
        locked_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// Makes `user_id` a member of `organization_id` in `role`.
///
/// # Errors
/// On a database error.
pub async fn insert_membership<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
    role: &str,
    now: DateTime<Utc>,
) -> Result<membership::Model, DbErr> {
    membership::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(organization_id),
        user_id: Set(user_id),
        role: Set(role.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// The account with this (normalised) e-mail address.
///
/// # Errors
/// On a database error.
pub async fn find_user_by_email<C: ConnectionTrait>(
    db: &C,
    email: &str,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await
}

/// One account.
///
/// # Errors
/// On a database error.
pub async fn find_user<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id).one(db).await
}

/// The membership of an account, with its organisation.
///
/// # Errors
/// On a database error.
pub async fn membership_of<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> Result<Option<(membership::Model, organization::Model)>, DbErr> {
    let Some(m) = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let org = organization::Entity::find_by_id(m.organization_id)
        .one(db)
        .await?;
    Ok(org.map(|o| (m, o)))
}

/// Counts a failed sign-in; from the `threshold`-th in a row the account is locked
/// until `lock_until`. Returns the updated account.
///
/// # Errors
/// On a database error.
pub async fn record_failed_login<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    threshold: i32,
    lock_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::update_many()
        .col_expr(
            user::Column::FailedLogins,
            Expr::col(user::Column::FailedLogins).add(1),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    user::Entity::update_many()
        .col_expr(user::Column::LockedUntil, Expr::value(Some(lock_until)))
        .col_expr(user::Column::FailedLogins, Expr::value(0))
        .filter(user::Column::Id.eq(user_id))
        .filter(user::Column::FailedLogins.gte(threshold))
        .exec(db)
        .await?;
    find_user(db, user_id).await
}

/// Clears the failure count and any expired lock after a successful sign-in.
///
/// # Errors
/// On a database error.
pub async fn record_successful_login<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::FailedLogins, Expr::value(0))
        .col_expr(
            user::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Replaces an account's password hash.
///
/// # Errors
/// On a database error.
pub async fn set_password_hash<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(hash))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Starts a session (a refresh-token family).
///
/// # Errors
/// On a database error.
pub async fn insert_session<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    organization_id: Uuid,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<session::Model, DbErr> {
    session::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        organization_id: Set(organization_id),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        expires_at: Set(expires_at),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// One session.
///
/// # Errors
/// On a database error.
pub async fn find_session<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Option<session::Model>, DbErr> {
    session::Entity::find_by_id(id).one(db).await
}

/// Revokes one session, so its access and refresh tokens stop working.
///
/// # Errors
/// On a database error.
pub async fn revoke_session<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Some(now)))
        .col_expr(session::Column::RevokedReason, Expr::value(Some(reason)))
        .col_expr(session::Column::UpdatedAt, Expr::value(now))
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes every live session of an account except `keep`.
///
/// # Errors
/// On a database error.
pub async fn revoke_other_sessions<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut q = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Some(now)))
        .col_expr(session::Column::RevokedReason, Expr::value(Some(reason)))
        .col_expr(session::Column::UpdatedAt, Expr::value(now))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        q = q.filter(session::Column::Id.ne(keep));
    }
    Ok(q.exec(db).await?.rows_affected)
}

/// Stores a refresh token's hash.
///
/// # Errors
/// On a database error.
pub async fn insert_refresh_token<C: ConnectionTrait>(
    db: &C,
    session_id: Uuid,
    token_hash: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(session_id),
        token_hash: Set(token_hash.to_owned()),
        used_at: Set(None),
        expires_at: Set(expires_at),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The refresh token with this hash.
///
/// # Errors
/// On a database error.
pub async fn find_refresh_token<C: ConnectionTrait>(
    db: &C,
    token_hash: &str,
) -> Result<Option<refresh_token::Model>, DbErr> {
    refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .one(db)
        .await
}

/// Marks a refresh token used. Returns false when it already was: two presentations
/// raced, and the loser must be treated as reuse.
///
/// # Errors
/// On a database error.
pub async fn use_refresh_token<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(Some(now)))
        .col_expr(refresh_token::Column::UpdatedAt, Expr::value(now))
        .filter(refresh_token::Column::Id.eq(id))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// What the server must know on every authenticated request, in one query: the
/// session is live, the account active, its current role, and what `/auth/me` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPrincipal {
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub role: String,
    pub user_active: bool,
    pub session_revoked: bool,
    pub session_expires_at: DateTime<Utc>,
    pub email: String,
    pub full_name: String,
    pub user_created_at: DateTime<Utc>,
    pub organization_name: String,
}

type SessionRow = (
    Uuid,
    Uuid,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    String,
    bool,
    String,
    String,
    DateTime<Utc>,
    String,
);

/// Loads the principal behind a session.
///
/// # Errors
/// On a database error.
pub async fn session_principal<C: ConnectionTrait>(
    db: &C,
    session_id: Uuid,
) -> Result<Option<SessionPrincipal>, DbErr> {
    let row = session::Entity::find_by_id(session_id)
        .select_only()
        .column(session::Column::UserId)
        .column(session::Column::OrganizationId)
        .column(session::Column::RevokedAt)
        .column(session::Column::ExpiresAt)
        .column_as(membership::Column::Role, "role")
        .column_as(user::Column::IsActive, "is_active")
        .column_as(user::Column::Email, "email")
        .column_as(user::Column::FullName, "full_name")
        .column_as(user::Column::CreatedAt, "user_created_at")
        .column_as(organization::Column::Name, "organization_name")
        .join(
            sea_orm::JoinType::InnerJoin,
            session::Entity::belongs_to_user(),
        )
        .join(
            sea_orm::JoinType::InnerJoin,
            session::Entity::has_membership(),
        )
        .join(
            sea_orm::JoinType::InnerJoin,
            session::Entity::belongs_to_organization(),
        )
        .into_tuple::<SessionRow>()
        .one(db)
        .await?;
    Ok(row.map(
        |(
            user_id,
            organization_id,
            revoked_at,
            expires_at,
            role,
            is_active,
            email,
            full_name,
            user_created_at,
            organization_name,
        )| SessionPrincipal {
            user_id,
            organization_id,
            role,
            user_active: is_active,
            session_revoked: revoked_at.is_some(),
            session_expires_at: expires_at,
            email,
            full_name,
            user_created_at,
            organization_name,
        },
    ))
}

/// One organisation.
///
/// # Errors
/// On a database error.
pub async fn find_organization<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Option<organization::Model>, DbErr> {
    organization::Entity::find_by_id(id).one(db).await
}

/// Renames an organisation.
///
/// # Errors
/// On a database error.
pub async fn rename_organization<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    organization::Entity::update_many()
        .col_expr(organization::Column::Name, Expr::value(name))
        .col_expr(organization::Column::UpdatedAt, Expr::value(now))
        .filter(organization::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// The members of an organisation with their accounts, by e-mail address.
///
/// # Errors
/// On a database error.
pub async fn members<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<(membership::Model, user::Model)>, DbErr> {
    use sea_orm::QueryOrder;
    let rows = membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .find_also_related_user()
        .order_by_asc(membership::Column::CreatedAt)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(m, u)| u.map(|u| (m, u)))
        .collect())
}

/// One member of an organisation; `None` for an account of another organisation.
///
/// # Errors
/// On a database error.
pub async fn member<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
) -> Result<Option<(membership::Model, user::Model)>, DbErr> {
    Ok(members_filtered(db, organization_id, Some(user_id))
        .await?
        .into_iter()
        .next())
}

async fn members_filtered<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Option<Uuid>,
) -> Result<Vec<(membership::Model, user::Model)>, DbErr> {
    let mut q =
        membership::Entity::find().filter(membership::Column::OrganizationId.eq(organization_id));
    if let Some(user_id) = user_id {
        q = q.filter(membership::Column::UserId.eq(user_id));
    }
    let rows = q.find_also_related_user().all(db).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(m, u)| u.map(|u| (m, u)))
        .collect())
}

/// How many active owners an organisation has.
///
/// # Errors
/// On a database error.
pub async fn active_owner_count<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<usize, DbErr> {
    Ok(members_filtered(db, organization_id, None)
        .await?
        .iter()
        .filter(|(m, u)| m.role == "owner" && u.is_active)
        .count())
}

/// Sets a member's role.
///
/// # Errors
/// On a database error.
pub async fn set_role<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
    role: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    membership::Entity::update_many()
        .col_expr(membership::Column::Role, Expr::value(role))
        .col_expr(membership::Column::UpdatedAt, Expr::value(now))
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(membership::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Activates or deactivates an account.
///
/// # Errors
/// On a database error.
pub async fn set_active<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    active: bool,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::IsActive, Expr::value(active))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Stores an invitation.
///
/// # Errors
/// On a database error.
pub async fn insert_invitation<C: ConnectionTrait>(
    db: &C,
    invitation: invitation::Model,
) -> Result<invitation::Model, DbErr> {
    invitation::ActiveModel {
        id: Set(invitation.id),
        organization_id: Set(invitation.organization_id),
        email: Set(invitation.email.clone()),
        role: Set(invitation.role.clone()),
        token_hash: Set(invitation.token_hash.clone()),
        invited_by: Set(invitation.invited_by),
        expires_at: Set(invitation.expires_at),
        accepted_at: Set(None),
        created_at: Set(invitation.created_at),
        updated_at: Set(invitation.updated_at),
    }
    .insert(db)
    .await
}

/// The invitation with this token hash.
///
/// # Errors
/// On a database error.
pub async fn find_invitation<C: ConnectionTrait>(
    db: &C,
    token_hash: &str,
) -> Result<Option<invitation::Model>, DbErr> {
    invitation::Entity::find()
        .filter(invitation::Column::TokenHash.eq(token_hash))
        .one(db)
        .await
}

/// Marks an invitation accepted; false when it already was (a race lost).
///
/// # Errors
/// On a database error.
pub async fn accept_invitation<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = invitation::Entity::update_many()
        .col_expr(invitation::Column::AcceptedAt, Expr::value(Some(now)))
        .col_expr(invitation::Column::UpdatedAt, Expr::value(now))
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::AcceptedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Stores a password reset token's hash.
///
/// # Errors
/// On a database error.
pub async fn insert_password_reset<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    token_hash: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    password_reset::Entity::insert(password_reset::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        token_hash: Set(token_hash.to_owned()),
        expires_at: Set(expires_at),
        used_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The reset with this token hash.
///
/// # Errors
/// On a database error.
pub async fn find_password_reset<C: ConnectionTrait>(
    db: &C,
    token_hash: &str,
) -> Result<Option<password_reset::Model>, DbErr> {
    password_reset::Entity::find()
        .filter(password_reset::Column::TokenHash.eq(token_hash))
        .one(db)
        .await
}

/// Marks a reset used; false when it already was.
///
/// # Errors
/// On a database error.
pub async fn use_password_reset<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(Some(now)))
        .col_expr(password_reset::Column::UpdatedAt, Expr::value(now))
        .filter(password_reset::Column::Id.eq(id))
        .filter(password_reset::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}
