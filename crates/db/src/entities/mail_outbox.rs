//! `mail_outbox`: one row per outgoing message, from queued to sent, failed or logged;
//! and, in [`attachment`], `mail_outbox_attachments`, the bytes of its attachments
//! until it is delivered.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    /// A JSON array of addresses.
    pub recipients: Json,
    pub subject: String,
    /// The plain-text body; `None` once delivered.
    pub body: Option<String>,
    pub html_body: Option<String>,
    /// A JSON array of `{filename, content_type, size_bytes}`.
    pub attachments: Json,
    /// `queued`, `sent`, `failed` or `logged`.
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTimeUtc>,
    pub sent_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// `mail_outbox_attachments`: one attachment's bytes, in the message's order.
pub mod attachment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mail_outbox_attachments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub message_id: Uuid,
        pub position: i32,
        pub filename: String,
        pub content_type: String,
        pub size_bytes: i64,
        pub content: Vec<u8>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
