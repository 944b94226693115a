//! The outbox: messages stored, then delivered with retries; and what administrators
//! read of it.
//!
//! Delivery: the sender loop ([`Outbox::run`]) takes due `queued` messages a few at a
//! time. Each is claimed with one guarded UPDATE (see `ruleiq_db::repositories::mail`),
//! so any number of server instances can run the loop over one database and each
//! message is attempted by one of them. A failed attempt is tried again after the
//! [`DeliveryPolicy`]'s backoff (1 min, 5 min, 30 min, 2 h, 6 h by default) with its
//! error kept in `last_error`; after the last attempt, or at once when the server
//! refuses for good (a 5xx reply), the message is `failed`.
//!
//! Delivered messages lose their body and attachment bytes: the outbox is not an
//! archive, and a delivered password-reset link must not stay readable in the
//! database and its backups. Recipients, subject, attachment names and sizes stay.
//!
//! Who reads what ([`OutboxScope`]): an organisation's administrators see their
//! organisation's messages. Messages of no organisation — identity's password resets
//! and invitations, which carry one-time links into accounts — are shown only to the
//! server's operator, at the command line, never over HTTP.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use lettre::message::Mailbox;
use ruleiq_core::{Clock, OrganizationId, Permission};
use ruleiq_db::{
    DatabaseConnection,
    entities::mail_outbox::{self, attachment},
    repositories::mail::{self as repo, OutboxCounts, OutboxFilter},
};
use serde::{Deserialize, Serialize};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::sync::Notify;
use uuid::Uuid;

use super::{
    Email, MailError, MailStatus, Mailer, Message, Prepared, PreparedAttachment, invalid,
    smtp::{SendFailure, SmtpMailer},
};
use crate::identity::Permit;

/// The longest one delivery may take, connection to final reply. Twenty megabytes of
/// attachments over a slow link need minutes.
const SEND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long a claimed message is held by its sender. Longer than [`SEND_TIMEOUT`], so
/// no second instance starts on a message while the first may still be sending it; a
/// sender that dies leaves the message to be picked up when the lease ends.
const LEASE: Duration = Duration::from_secs(10 * 60);
/// Messages claimed per pass, and sent at once.
const BATCH: u64 = 16;
const CONCURRENCY: usize = 4;
/// The most of an error message kept in `last_error`.
const MAX_ERROR_CHARS: usize = 2000;
/// The longest the loop waits after the database failed, before trying again.
const MAX_ERROR_PAUSE: Duration = Duration::from_secs(60);

/// How many attempts a message gets, how long to wait between them, and how often
/// the sender looks for due messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// The wait after the first, second, … failed attempt; the last repeats.
    pub backoff: Vec<Duration>,
    /// Attempts before a message is `failed`.
    pub max_attempts: u32,
    /// How often the sender looks for due messages when nothing wakes it: for retries
    /// coming due and for messages queued by other instances or commands. A message
    /// queued by this instance wakes it at once.
    pub poll_interval: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Self {
            backoff: vec![
                minutes(1),
                minutes(5),
                minutes(30),
                minutes(120),
                minutes(360),
            ],
            max_attempts: 6,
            poll_interval: Duration::from_secs(5),
        }
    }
}

impl DeliveryPolicy {
    /// The wait after attempt number `attempt` (1-based) has failed.
    #[must_use]
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.backoff
            .get(index)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::from_secs(60))
    }

    fn max_attempts_i32(&self) -> i32 {
        i32::try_from(self.max_attempts.max(1)).unwrap_or(i32::MAX)
    }
}

/// Whose messages a caller may read and retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxScope(Option<Uuid>);

impl OutboxScope {
    /// An organisation's administrators (`organization:manage`): their
    /// organisation's messages only.
    #[must_use]
    pub fn organization(permit: &Permit<'_>) -> Self {
        debug_assert_eq!(permit.permission(), Permission::OrganizationManage);
        Self(Some(permit.organization_id().as_uuid()))
    }

    /// The server's operator, at its command line: every message, those of no
    /// organisation included. Never build this from an HTTP request.
    #[must_use]
    pub fn operator() -> Self {
        Self(None)
    }
}

/// A page request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxQuery {
    pub status: Option<MailStatus>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1–200; 0 means the default of 50.
    pub limit: u64,
}

/// An attachment as listed: never its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttachmentInfo {
    pub filename: String,
    pub content_type: String,
    pub size_bytes: u64,
}

/// One message as an administrator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    pub recipients: Vec<String>,
    pub subject: String,
    /// The plain-text body; `null` once delivered.
    pub body: Option<String>,
    /// The HTML alternative, if any; `null` once delivered.
    pub html_body: Option<String>,
    pub attachments: Vec<AttachmentInfo>,
    pub status: MailStatus,
    /// Attempts made so far.
    pub attempts: i32,
    pub max_attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When a queued message is next tried (or, while it is being sent, when its
    /// sender's hold on it ends).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<mail_outbox::Model> for OutboxEntry {
    fn from(row: mail_outbox::Model) -> Self {
        Self {
            id: row.id,
            organization_id: row.organization_id,
            recipients: serde_json::from_value(row.recipients).unwrap_or_default(),
            subject: row.subject,
            body: row.body,
            html_body: row.html_body,
            attachments: serde_json::from_value(row.attachments).unwrap_or_default(),
            // The CHECK constraint admits nothing else; should it ever, show it as
            // failed rather than fail the whole page.
            status: MailStatus::parse(&row.status).unwrap_or(MailStatus::Failed),
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            last_error: row.last_error,
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
            sent_at: row.sent_at,
        }
    }
}

/// A page of the outbox, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutboxPage {
    pub items: Vec<OutboxEntry>,
    pub next_cursor: Option<String>,
}

/// The outbox service: accepts messages, delivers them, and lists them.
#[derive(Clone)]
pub struct Outbox {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    smtp: Option<SmtpMailer>,
    show_content: bool,
    policy: DeliveryPolicy,
    /// Wakes this instance's sender when a message is queued here.
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("smtp", &self.smtp)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// An outbox delivering through `smtp`, or, without one, keeping messages as
    /// `logged` (written to the log with their content when `show_content`).
    #[must_use]
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        smtp: Option<SmtpMailer>,
        show_content: bool,
    ) -> Self {
        Self {
            db,
            clock,
            smtp,
            show_content,
            policy: DeliveryPolicy::default(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The same outbox with another retry policy.
    #[must_use]
    pub fn with_policy(mut self, policy: DeliveryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Whether messages are sent (an SMTP server is configured) or only logged.
    #[must_use]
    pub fn is_sending(&self) -> bool {
        self.smtp.is_some()
    }

    /// Checks and stores a message: `queued` for the sender, or `logged` when no SMTP
    /// server is configured. Returns its id.
    ///
    /// # Errors
    /// [`MailError::Invalid`] naming the bad recipient or part, [`MailError::TooLarge`]
    /// for attachments over the limit; a database error. Nothing is stored then.
    pub async fn enqueue(&self, message: Message) -> Result<Uuid, MailError> {
        let prepared = Prepared::new(message)?;
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let (status, next_attempt_at) = if self.smtp.is_some() {
            (MailStatus::Queued, Some(now))
        } else {
            (MailStatus::Logged, None)
        };
        let infos = prepared
            .attachments
            .iter()
            .map(|a| AttachmentInfo {
                filename: a.filename.clone(),
                content_type: a.mime.clone(),
                size_bytes: a.bytes.len() as u64,
            })
            .collect::<Vec<_>>();
        let recipients = prepared
            .to
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        let row = mail_outbox::Model {
            id,
            organization_id: prepared.organization_id.map(Uuid::from),
            recipients: serde_json::json!(recipients),
            subject: prepared.subject.clone(),
            body: Some(prepared.text.clone()),
            html_body: prepared.html.clone(),
            attachments: serde_json::json!(infos),
            status: status.as_str().to_owned(),
            attempts: 0,
            max_attempts: self.policy.max_attempts_i32(),
            last_error: None,
            next_attempt_at,
            sent_at: None,
            created_at: now,
            updated_at: now,
        };
        let files = prepared
            .attachments
            .iter()
            .enumerate()
            .map(|(position, a)| attachment::Model {
                id: Uuid::now_v7(),
                message_id: id,
                position: i32::try_from(position).unwrap_or(i32::MAX),
                filename: a.filename.clone(),
                content_type: a.mime.clone(),
                size_bytes: i64::try_from(a.bytes.len()).unwrap_or(i64::MAX),
                content: a.bytes.to_vec(),
                created_at: now,
            })
            .collect();
        let txn = ruleiq_db::begin(&self.db).await?;
        repo::insert(&txn, row, files).await?;
        txn.commit().await?;

        if status == MailStatus::Logged {
            self.log_unsent(id, &recipients, &prepared, &infos);
        } else {
            self.wake.notify_one();
        }
        Ok(id)
    }

    fn log_unsent(
        &self,
        id: Uuid,
        recipients: &[String],
        message: &Prepared,
        attachments: &[AttachmentInfo],
    ) {
        let to = recipients.join(", ");
        let files = attachments
            .iter()
            .map(|a| format!("{} ({} bytes)", a.filename, a.size_bytes))
            .collect::<Vec<_>>()
            .join(", ");
        if self.show_content {
            tracing::info!(mail_id = %id, %to, subject = %message.subject, body = %message.text, attachments = %files, "e-mail logged, not sent: no SMTP server is configured");
        } else {
            tracing::warn!(mail_id = %id, %to, subject = %message.subject, "e-mail kept in the outbox as logged, not sent: set SMTP_HOST to deliver mail");
        }
    }

    /// One pass of the sender: claims due messages and attempts each once. Returns
    /// how many were attempted. Does nothing without an SMTP server.
    ///
    /// # Errors
    /// On a database error finding due messages; errors of single messages are
    /// logged and leave the message to its lease.
    pub async fn deliver_due(&self) -> Result<usize, MailError> {
        let Some(smtp) = &self.smtp else {
            return Ok(0);
        };
        let ids = repo::due(&self.db, self.clock.now(), BATCH).await?;
        let attempted = futures::stream::iter(ids)
            .map(|id| async move {
                match self.attempt(smtp, id).await {
                    Ok(attempted) => attempted,
                    Err(e) => {
                        tracing::warn!(mail_id = %id, error = %e, "could not record a delivery attempt; it is tried again when its hold ends");
                        true
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .filter(|attempted| std::future::ready(*attempted))
            .count()
            .await;
        Ok(attempted)
    }

    /// Claims and attempts one message; `false` when another sender had it.
    async fn attempt(&self, smtp: &SmtpMailer, id: Uuid) -> Result<bool, MailError> {
        let now = self.clock.now();
        let lease_until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let Some(row) = repo::claim(&self.db, id, now, lease_until).await? else {
            return Ok(false);
        };
        let attempt = row.attempts;
        let outcome = match self.load(&row).await? {
            Ok(message) => tokio::time::timeout(SEND_TIMEOUT, smtp.deliver(&message))
                .await
                .unwrap_or_else(|_| {
                    Err(SendFailure {
                        permanent: false,
                        message: format!("no answer within {} s", SEND_TIMEOUT.as_secs()),
                    })
                }),
            Err(message) => Err(SendFailure {
                permanent: true,
                message,
            }),
        };
        let now = self.clock.now();
        let recorded = match outcome {
            Ok(()) => {
                let txn = ruleiq_db::begin(&self.db).await?;
                let recorded = repo::mark_sent(&txn, id, attempt, now).await?;
                if recorded {
                    repo::delete_attachments(&txn, id).await?;
                }
                txn.commit().await?;
                tracing::info!(mail_id = %id, attempt, "e-mail sent");
                recorded
            }
            Err(failure) => {
                let error: String = failure.message.chars().take(MAX_ERROR_CHARS).collect();
                if !failure.permanent && attempt < row.max_attempts {
                    let attempt_no = u32::try_from(attempt).unwrap_or(u32::MAX);
                    let wait = self.policy.delay_after(attempt_no);
                    let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
                    tracing::warn!(mail_id = %id, attempt, max_attempts = row.max_attempts, %error, retry_in_s = wait.as_secs(), "e-mail not sent; it will be tried again");
                    repo::retry_later(&self.db, id, attempt, &error, next, now).await?
                } else {
                    tracing::error!(mail_id = %id, attempt, permanent = failure.permanent, %error, "e-mail failed; an administrator can send it again from the outbox");
                    repo::mark_failed(&self.db, id, attempt, &error, now).await?
                }
            }
        };
        if !recorded {
            // Our hold ran out and another sender took the message: its record wins.
            tracing::warn!(mail_id = %id, attempt, "a slow delivery attempt finished after its hold ended; its outcome was not recorded");
        }
        Ok(true)
    }

    /// The stored message, ready to send; `Err` with the reason when it cannot be
    /// (which no message stored by [`Self::enqueue`] should meet).
    async fn load(&self, row: &mail_outbox::Model) -> Result<Result<Prepared, String>, MailError> {
        let recipients: Vec<String> = match serde_json::from_value(row.recipients.clone()) {
            Ok(r) => r,
            Err(e) => return Ok(Err(format!("stored recipients are unreadable: {e}"))),
        };
        let mut to = Vec::with_capacity(recipients.len());
        for r in &recipients {
            match r.parse::<Mailbox>() {
                Ok(m) => to.push(m),
                Err(e) => return Ok(Err(format!("stored recipient `{r}`: {e}"))),
            }
        }
        let mut attachments = Vec::new();
        for a in repo::attachments(&self.db, row.id).await? {
            let Ok(content_type) = lettre::message::header::ContentType::parse(&a.content_type)
            else {
                return Ok(Err(format!(
                    "stored content type `{}` of {} is unreadable",
                    a.content_type, a.filename
                )));
            };
            attachments.push(PreparedAttachment {
                filename: a.filename,
                content_type,
                mime: a.content_type,
                bytes: a.content.into(),
            });
        }
        Ok(Ok(Prepared {
            organization_id: row.organization_id.map(OrganizationId::from),
            to,
            subject: row.subject.clone(),
            text: row.body.clone().unwrap_or_default(),
            html: row.html_body.clone(),
            attachments,
        }))
    }

    /// Runs the sender until `shutdown` completes: a pass whenever a message is queued
    /// here, every `poll_interval` otherwise, at once again while passes find full
    /// batches, and less often while the database is failing. Returns at once without
    /// an SMTP server: `logged` messages are not for sending.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        if self.smtp.is_none() {
            return;
        }
        tokio::pin!(shutdown);
        let mut failures: u32 = 0;
        loop {
            let pause = match self.deliver_due().await {
                Ok(n) => {
                    failures = 0;
                    if n as u64 >= BATCH {
                        Duration::ZERO
                    } else {
                        self.policy.poll_interval
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, "the mail sender cannot read the outbox; trying again shortly");
                    self.policy
                        .poll_interval
                        .saturating_mul(2u32.saturating_pow(failures.min(6)))
                        .min(MAX_ERROR_PAUSE)
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// A page of the outbox, newest first, optionally of one status.
    ///
    /// # Errors
    /// [`MailError::Invalid`] for a cursor this server did not give out; a database
    /// error.
    pub async fn list_outbox(
        &self,
        scope: &OutboxScope,
        query: &OutboxQuery,
    ) -> Result<OutboxPage, MailError> {
        let before = query
            .cursor
            .as_deref()
            .map(|c| {
                Uuid::parse_str(c)
                    .map_err(|_| invalid("cursor", "is not a cursor this server gave out"))
            })
            .transpose()?;
        let limit = if query.limit == 0 {
            50
        } else {
            query.limit.min(200)
        };
        let mut rows = repo::list(
            &self.db,
            &OutboxFilter {
                organization_id: scope.0,
                status: query.status.map(|s| s.as_str().to_owned()),
                before,
                limit: limit + 1,
            },
        )
        .await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            rows.last().map(|r| r.id.simple().to_string())
        } else {
            None
        };
        Ok(OutboxPage {
            items: rows.into_iter().map(OutboxEntry::from).collect(),
            next_cursor,
        })
    }

    /// One message.
    ///
    /// # Errors
    /// [`MailError::NotFound`] for an unknown id or one outside `scope`; a database
    /// error.
    pub async fn get(&self, scope: &OutboxScope, id: Uuid) -> Result<OutboxEntry, MailError> {
        repo::find(&self.db, id, scope.0)
            .await?
            .map(OutboxEntry::from)
            .ok_or(MailError::NotFound)
    }

    /// Sends a `failed` or `logged` message again: back to `queued`, due now, with a
    /// fresh set of attempts. Returns it as it now stands.
    ///
    /// # Errors
    /// [`MailError::NotFound`] for an unknown id or one outside `scope`;
    /// [`MailError::NotConfigured`] without an SMTP server;
    /// [`MailError::NotRetryable`] for a message that is queued or sent; a database
    /// error.
    pub async fn retry(&self, scope: &OutboxScope, id: Uuid) -> Result<OutboxEntry, MailError> {
        let current = self.get(scope, id).await?;
        if self.smtp.is_none() {
            return Err(MailError::NotConfigured);
        }
        let moved = repo::requeue(
            &self.db,
            id,
            scope.0,
            self.policy.max_attempts_i32(),
            self.clock.now(),
        )
        .await?;
        if !moved {
            // Re-read: it may have changed since `current` was read.
            let status = self
                .get(scope, id)
                .await
                .map_or(current.status, |e| e.status);
            return Err(MailError::NotRetryable(status));
        }
        tracing::info!(mail_id = %id, from = %current.status, "e-mail queued again by an administrator");
        self.wake.notify_one();
        self.get(scope, id).await
    }

    /// How many messages wait and how many have failed.
    ///
    /// # Errors
    /// On a database error.
    pub async fn counts(&self) -> Result<OutboxCounts, MailError> {
        Ok(repo::counts(&self.db).await?)
    }
}

/// Identity's messages go through the outbox like every other: stored, then sent.
#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, email: Email) -> Result<(), String> {
        self.enqueue(email.into())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
