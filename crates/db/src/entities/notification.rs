//! `notifications`: one notice to one member, in the app and maybe by e-mail; and, in
//! [`preference`], `notification_preferences`, the channels a member changed for a
//! kind of notice.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    /// `evidence_expiring`, `task_due`, … (see the migration's CHECK).
    pub kind: String,
    pub title: String,
    pub body: String,
    /// A path inside the web UI, such as `/evidence/{id}`.
    pub link: Option<String>,
    pub subject_id: Option<Uuid>,
    /// The event this notice is about; unique per user.
    pub dedupe_key: String,
    pub read_at: Option<DateTimeUtc>,
    pub emailed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// `notification_preferences`: a member's channels for one kind of notice. Kinds
/// without a row take the defaults written in code.
pub mod preference {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "notification_preferences")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: String,
        pub organization_id: Uuid,
        pub in_app: bool,
        pub email: bool,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
