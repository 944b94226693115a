//! Notifications: notices to members in the app (the bell and the notifications page)
//! and by e-mail through the outbox, by kind, as each member chooses.
//!
//! Who is told what ([`producers`]): a daily [`Notifications::sweep`] tells evidence
//! authors of evidence expiring within 30 and within 7 days, and assignees of tasks due
//! today or tomorrow and of overdue tasks; a submission for review tells the members
//! who may approve it, and the decision tells its authors; a ready report tells the
//! people it is for ([`Notifications::report_ready`], called by reports); and each
//! Monday [`Notifications::digest`] mails a weekly summary.
//!
//! Invariants:
//! - Every notice has a `dedupe_key` naming its event, unique per member, and the
//!   e-mail goes out only with a row that was newly inserted. Running a sweep twice (or
//!   on two instances at once) therefore tells nobody twice.
//! - A member with a kind's in-app channel off still gets a row, stored already read:
//!   it carries the dedupe key that keeps the e-mail from repeating, and their list
//!   keeps a record of what was mailed, but the bell never counts it. With both
//!   channels off nothing is stored, and nothing is sent.
//! - Notices go only to active members of the organisation they are about; every
//!   read and change is confined to the caller's own notices in their own
//!   organisation, so anyone else's is "not found".
//! - Producing a notice never fails the action that caused it: the hooks log.

mod kind;
pub mod producers;

use chrono::{DateTime, Utc};
use ruleiq_core::{Clock, OrganizationId, Role};
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::notification::{self, preference},
    repositories::{identity as identity_repo, notifications as repo},
};
use serde::{Deserialize, Serialize};
use std::{collections::HashMap, sync::Arc};
use uuid::Uuid;

pub use kind::{Channels, Kind, UnknownKind};

use crate::{
    identity::Principal,
    mail::{Message, Outbox},
};

/// The job kind of the daily sweep.
pub const SWEEP_JOB: &str = "notifications_sweep";
/// The job kind of the Monday digest.
pub const DIGEST_JOB: &str = "notifications_digest";

/// The default page size of the list, and the largest.
pub const DEFAULT_PER_PAGE: u64 = 20;
pub const MAX_PER_PAGE: u64 = 100;
/// The last page anyone can ask for: far past any member's notices, and small enough
/// that its offset stays a number the database takes.
pub const MAX_PAGE: u64 = 1_000_000;

/// The longest title kept (and used as an e-mail subject), in characters.
const MAX_TITLE_CHARS: usize = 200;

/// Errors of the notifications service.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    #[error("no such notification")]
    NotFound,
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn invalid(field: &'static str, message: impl Into<String>) -> NotificationError {
    NotificationError::Invalid {
        field,
        message: message.into(),
    }
}

/// What to tell people: one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: Kind,
    /// One line; the e-mail's subject.
    pub title: String,
    pub body: String,
    /// A path in the web UI, such as `/evidence/{id}`.
    pub link: Option<String>,
    /// What the notice is about.
    pub subject_id: Option<Uuid>,
    /// Names the event; a member is told of one key once.
    pub dedupe_key: String,
}

/// What [`Notifications::notify`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Delivered {
    /// Rows newly stored (in-app or, with the in-app channel off, kept as read).
    pub stored: u64,
    /// E-mails handed to the outbox.
    pub emailed: u64,
    /// Recipients who already had this notice.
    pub duplicates: u64,
}

impl std::ops::AddAssign for Delivered {
    fn add_assign(&mut self, other: Self) {
        self.stored += other.stored;
        self.emailed += other.emailed;
        self.duplicates += other.duplicates;
    }
}

/// One notice as its member sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    pub id: Uuid,
    pub kind: Kind,
    pub title: String,
    pub body: String,
    /// A path in the web UI to what the notice is about.
    pub link: Option<String>,
    pub subject_id: Option<Uuid>,
    pub read: bool,
    pub read_at: Option<DateTime<Utc>>,
    /// When its e-mail was handed to the outbox; `null` if none was sent.
    pub emailed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<notification::Model> for NotificationView {
    fn from(row: notification::Model) -> Self {
        Self {
            id: row.id,
            // The CHECK constraint admits nothing else; should it ever, show the
            // notice as a digest entry rather than fail the whole list.
            kind: Kind::parse(&row.kind).unwrap_or(Kind::WeeklyDigest),
            title: row.title,
            body: row.body,
            link: row.link,
            subject_id: row.subject_id,
            read: row.read_at.is_some(),
            read_at: row.read_at,
            emailed_at: row.emailed_at,
            created_at: row.created_at,
        }
    }
}

/// A page of a member's notices, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NotificationPage {
    pub items: Vec<NotificationView>,
    /// How many notices match the filter, on every page.
    pub total: u64,
    /// How many of the member's notices are unread, whatever the filter.
    pub unread: u64,
    pub page: u64,
    pub per_page: u64,
}

/// Which page of which notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery {
    pub unread_only: bool,
    /// 1-based; `None` for the first.
    pub page: Option<u64>,
    /// 1–[`MAX_PER_PAGE`]; `None` for [`DEFAULT_PER_PAGE`].
    pub per_page: Option<u64>,
}

/// A member's channels for one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preference {
    pub kind: Kind,
    pub in_app: bool,
    pub email: bool,
}

/// A member as notices need them.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Option<Role>,
}

/// The notifications service.
#[derive(Clone)]
pub struct Notifications {
    db: DatabaseConnection,
    outbox: Outbox,
    clock: Arc<dyn Clock>,
    /// The server's public address, without a trailing `/`, for links in e-mail.
    public_url: Arc<str>,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// A title fit for a list and an e-mail subject: one line, not too long.
fn one_line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > MAX_TITLE_CHARS {
        flat.chars()
            .take(MAX_TITLE_CHARS - 1)
            .chain(['…'])
            .collect()
    } else {
        flat
    }
}

impl Notifications {
    /// Notices stored in `db`, e-mail through `outbox` with links to `public_url`.
    #[must_use]
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        clock: Arc<dyn Clock>,
        public_url: &str,
    ) -> Self {
        Self {
            db,
            outbox,
            clock,
            public_url: Arc::from(public_url.trim_end_matches('/')),
        }
    }

    /// The time by the service's clock: what the jobs sweep at.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The active members of an organisation.
    pub(crate) async fn members(&self, org: Uuid) -> Result<Vec<Member>, DbErr> {
        Ok(identity_repo::members(&self.db, org)
            .await?
            .into_iter()
            .filter(|(_, u)| u.is_active)
            .map(|(m, u)| Member {
                user_id: u.id,
                email: u.email,
                name: u.full_name,
                role: m.role.parse().ok(),
            })
            .collect())
    }

    /// Tells `recipients` (members of `org`; anyone else is skipped) of `notice` on the
    /// channels each chose for its kind. A recipient who already has a notice with the
    /// same dedupe key is not told again.
    ///
    /// # Errors
    /// On a database error; notices stored before it stay. An e-mail the outbox
    /// refuses is logged and skipped.
    pub async fn notify(
        &self,
        org: OrganizationId,
        recipients: &[Uuid],
        notice: &Notice,
    ) -> Result<Delivered, NotificationError> {
        let members = self.members(org.as_uuid()).await?;
        self.notify_members(org.as_uuid(), &members, recipients, notice)
            .await
    }

    /// [`Self::notify`] with the organisation's members already read.
    pub(crate) async fn notify_members(
        &self,
        org: Uuid,
        members: &[Member],
        recipients: &[Uuid],
        notice: &Notice,
    ) -> Result<Delivered, NotificationError> {
        let mut wanted: Vec<&Member> = Vec::new();
        for id in recipients {
            if let Some(m) = members.iter().find(|m| m.user_id == *id)
                && !wanted.iter().any(|w| w.user_id == *id)
            {
                wanted.push(m);
            }
        }
        let mut delivered = Delivered::default();
        if wanted.is_empty() {
            return Ok(delivered);
        }
        let ids: Vec<Uuid> = wanted.iter().map(|m| m.user_id).collect();
        let chosen = repo::preferences(&self.db, org, &ids).await?;
        let title = one_line(&notice.title);
        for member in wanted {
            let channels = channels_of(&chosen, member.user_id, notice.kind);
            if !channels.in_app && !channels.email {
                continue;
            }
            let now = self.clock.now();
            let row = notification::Model {
                id: Uuid::now_v7(),
                organization_id: org,
                user_id: member.user_id,
                kind: notice.kind.as_str().to_owned(),
                title: title.clone(),
                body: notice.body.clone(),
                link: notice.link.clone(),
                subject_id: notice.subject_id,
                dedupe_key: notice.dedupe_key.clone(),
                read_at: (!channels.in_app).then_some(now),
                emailed_at: None,
                created_at: now,
            };
            let id = row.id;
            if !repo::insert_if_absent(&self.db, row).await? {
                delivered.duplicates += 1;
                continue;
            }
            delivered.stored += 1;
            if channels.email {
                let message = self.message(org, member, &title, notice);
                match self.outbox.enqueue(message).await {
                    Ok(_) => {
                        repo::mark_emailed(&self.db, id, self.clock.now()).await?;
                        delivered.emailed += 1;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, user_id = %member.user_id, kind = %notice.kind, "could not queue a notification e-mail; the in-app notice stands");
                    }
                }
            }
        }
        Ok(delivered)
    }

    /// The e-mail for one member.
    fn message(&self, org: Uuid, member: &Member, title: &str, notice: &Notice) -> Message {
        let base = &self.public_url;
        let mut text = format!("Hello {},\n\n{}\n", member.name, notice.body.trim_end());
        if let Some(link) = &notice.link {
            text.push_str(&format!("\nOpen it in ruleIQ: {base}{link}\n"));
        }
        text.push_str(&format!(
            "\nYou receive this because e-mail is on for “{}” notifications. \
             Choose what you are sent at {base}/notifications/preferences\n",
            notice.kind.label()
        ));
        Message {
            organization_id: Some(OrganizationId::from(org)),
            to: vec![member.email.clone()],
            subject: format!("ruleIQ: {title}"),
            text,
            html: None,
            attachments: Vec::new(),
        }
    }

    /// A page of the caller's notices, newest first, with their unread count.
    ///
    /// # Errors
    /// [`NotificationError::Invalid`] for a page below 1 or a page size outside
    /// 1–[`MAX_PER_PAGE`]; a database error.
    pub async fn list(
        &self,
        who: &Principal,
        query: ListQuery,
    ) -> Result<NotificationPage, NotificationError> {
        let page = query.page.unwrap_or(1);
        if !(1..=MAX_PAGE).contains(&page) {
            return Err(invalid("page", format!("must be between 1 and {MAX_PAGE}")));
        }
        let per_page = query.per_page.unwrap_or(DEFAULT_PER_PAGE);
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(invalid(
                "per_page",
                format!("must be between 1 and {MAX_PER_PAGE}"),
            ));
        }
        let (org, user) = (who.organization_id.as_uuid(), who.user_id.as_uuid());
        let offset = (page - 1).saturating_mul(per_page);
        let items = repo::list(&self.db, org, user, query.unread_only, offset, per_page).await?;
        let unread = repo::count(&self.db, org, user, true).await?;
        let total = if query.unread_only {
            unread
        } else {
            repo::count(&self.db, org, user, false).await?
        };
        Ok(NotificationPage {
            items: items.into_iter().map(NotificationView::from).collect(),
            total,
            unread,
            page,
            per_page,
        })
    }

    /// How many of the caller's notices are unread: the bell's number.
    ///
    /// # Errors
    /// On a database error.
    pub async fn unread_count(&self, who: &Principal) -> Result<u64, NotificationError> {
        Ok(repo::count(
            &self.db,
            who.organization_id.as_uuid(),
            who.user_id.as_uuid(),
            true,
        )
        .await?)
    }

    /// Marks one of the caller's notices read (reading it again changes nothing) and
    /// returns it.
    ///
    /// # Errors
    /// [`NotificationError::NotFound`] for a notice that is not the caller's; a
    /// database error.
    pub async fn mark_read(
        &self,
        who: &Principal,
        id: Uuid,
    ) -> Result<NotificationView, NotificationError> {
        let (org, user) = (who.organization_id.as_uuid(), who.user_id.as_uuid());
        repo::mark_read(&self.db, org, user, id, self.clock.now()).await?;
        repo::find(&self.db, org, user, id)
            .await?
            .map(NotificationView::from)
            .ok_or(NotificationError::NotFound)
    }

    /// Marks every unread notice of the caller read; returns how many.
    ///
    /// # Errors
    /// On a database error.
    pub async fn mark_all_read(&self, who: &Principal) -> Result<u64, NotificationError> {
        Ok(repo::mark_all_read(
            &self.db,
            who.organization_id.as_uuid(),
            who.user_id.as_uuid(),
            self.clock.now(),
        )
        .await?)
    }

    /// The caller's channels for every kind: their choices, and the defaults where
    /// they made none.
    ///
    /// # Errors
    /// On a database error.
    pub async fn preferences(&self, who: &Principal) -> Result<Vec<Preference>, NotificationError> {
        let user = who.user_id.as_uuid();
        let chosen = repo::preferences(&self.db, who.organization_id.as_uuid(), &[user]).await?;
        Ok(Kind::ALL
            .into_iter()
            .map(|kind| {
                let c = channels_of(&chosen, user, kind);
                Preference {
                    kind,
                    in_app: c.in_app,
                    email: c.email,
                }
            })
            .collect())
    }

    /// Saves the caller's channels for the kinds listed (others keep theirs), all or
    /// nothing, and returns every kind's channels.
    ///
    /// # Errors
    /// [`NotificationError::Invalid`] for a kind listed twice; a database error.
    pub async fn set_preferences(
        &self,
        who: &Principal,
        choices: Vec<Preference>,
    ) -> Result<Vec<Preference>, NotificationError> {
        let mut seen = HashMap::new();
        for (i, c) in choices.iter().enumerate() {
            if let Some(first) = seen.insert(c.kind, i) {
                return Err(invalid(
                    "preferences",
                    format!(
                        "{} is listed twice (items {first} and {i}); list each kind once",
                        c.kind
                    ),
                ));
            }
        }
        let now = self.clock.now();
        let rows = choices
            .into_iter()
            .map(|c| preference::Model {
                user_id: who.user_id.as_uuid(),
                kind: c.kind.as_str().to_owned(),
                organization_id: who.organization_id.as_uuid(),
                in_app: c.in_app,
                email: c.email,
                updated_at: now,
            })
            .collect();
        let txn = ruleiq_db::begin(&self.db).await?;
        repo::save_preferences(&txn, rows).await?;
        txn.commit().await?;
        self.preferences(who).await
    }
}

/// A member's channels for `kind`: their saved choice, else the default.
fn channels_of(chosen: &[preference::Model], user: Uuid, kind: Kind) -> Channels {
    chosen
        .iter()
        .find(|p| p.user_id == user && p.kind == kind.as_str())
        .map_or_else(
            || kind.default_channels(),
            |p| Channels {
                in_app: p.in_app,
                email: p.email,
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_become_one_bounded_line() {
        assert_eq!(one_line("  Fire\r\nsafety\tcert  "), "Fire safety cert");
        let long = one_line(&"x".repeat(500));
        assert_eq!(long.chars().count(), MAX_TITLE_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn a_saved_choice_overrides_the_default_for_its_kind_only() {
        let user = Uuid::now_v7();
        let chosen = vec![preference::Model {
            user_id: user,
            kind: "task_due".into(),
            organization_id: Uuid::now_v7(),
            in_app: false,
            email: true,
            updated_at: Utc::now(),
        }];
        assert_eq!(
            channels_of(&chosen, user, Kind::TaskDue),
            Channels {
                in_app: false,
                email: true
            }
        );
        assert_eq!(
            channels_of(&chosen, user, Kind::ReportReady),
            Kind::ReportReady.default_channels()
        );
        assert_eq!(
            channels_of(&chosen, Uuid::now_v7(), Kind::TaskDue),
            Kind::TaskDue.default_channels()
        );
    }
}
