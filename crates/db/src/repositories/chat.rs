//! The assistant's conversations and messages. A conversation belongs to one member:
//! every query takes the organisation and the member.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::entities::{chat_conversation, chat_message};

/// Starts a conversation.
///
/// # Errors
/// On a database error.
pub async fn insert_conversation<C: ConnectionTrait>(
    db: &C,
    row: chat_conversation::Model,
) -> Result<(), DbErr> {
    chat_conversation::Entity::insert(chat_conversation::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// One of the member's conversations.
///
/// # Errors
/// On a database error.
pub async fn find_conversation<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<chat_conversation::Model>, DbErr> {
    chat_conversation::Entity::find_by_id(id)
        .filter(chat_conversation::Column::OrganizationId.eq(organization_id))
        .filter(chat_conversation::Column::UserId.eq(user_id))
        .one(db)
        .await
}

/// A page of the member's conversations, most recently active first.
///
/// # Errors
/// On a database error.
pub async fn list_conversations<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<chat_conversation::Model>, DbErr> {
    use chat_conversation::Column as C;
    let mut q = chat_conversation::Entity::find()
        .filter(C::OrganizationId.eq(organization_id))
        .filter(C::UserId.eq(user_id));
    if let Some((at, id)) = before {
        q = q.filter(
            Condition::any()
                .add(C::UpdatedAt.lt(at))
                .add(Condition::all().add(C::UpdatedAt.eq(at)).add(C::Id.lt(id))),
        );
    }
    q.order_by_desc(C::UpdatedAt)
        .order_by_desc(C::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Marks a conversation active now (it moves to the top of the list), renaming it
/// when `title` is given.
///
/// # Errors
/// On a database error.
pub async fn touch_conversation<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    id: Uuid,
    title: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    use sea_orm::ActiveValue::{NotSet, Set};
    chat_conversation::Entity::update_many()
        .set(chat_conversation::ActiveModel {
            updated_at: Set(now),
            title: title.map_or(NotSet, Set),
            ..Default::default()
        })
        .filter(chat_conversation::Column::Id.eq(id))
        .filter(chat_conversation::Column::OrganizationId.eq(organization_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes one of the member's conversations with its messages; false if there was
/// none.
///
/// # Errors
/// On a database error.
pub async fn delete_conversation<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
    id: Uuid,
) -> Result<bool, DbErr> {
    chat_message::Entity::delete_many()
        .filter(chat_message::Column::OrganizationId.eq(organization_id))
        .filter(chat_message::Column::ConversationId.eq(id))
        .exec(db)
        .await?;
    let res = chat_conversation::Entity::delete_many()
        .filter(chat_conversation::Column::Id.eq(id))
        .filter(chat_conversation::Column::OrganizationId.eq(organization_id))
        .filter(chat_conversation::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Adds a message.
///
/// # Errors
/// On a database error.
pub async fn insert_message<C: ConnectionTrait>(
    db: &C,
    row: chat_message::Model,
) -> Result<(), DbErr> {
    chat_message::Entity::insert(chat_message::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The last `limit` messages of a conversation, oldest first.
///
/// # Errors
/// On a database error.
pub async fn messages<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    conversation_id: Uuid,
    limit: u64,
) -> Result<Vec<chat_message::Model>, DbErr> {
    let mut rows = chat_message::Entity::find()
        .filter(chat_message::Column::OrganizationId.eq(organization_id))
        .filter(chat_message::Column::ConversationId.eq(conversation_id))
        .order_by_desc(chat_message::Column::CreatedAt)
        .order_by_desc(chat_message::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    rows.reverse();
    Ok(rows)
}
