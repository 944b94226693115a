//! Outgoing e-mail, through an outbox.
//!
//! Every message is first written to the `mail_outbox` table by [`Outbox::enqueue`]
//! (or, for code that only knows the [`Mailer`] trait, such as identity's password
//! resets and invitations, by [`Outbox`]'s `Mailer::send`). With an SMTP server
//! configured it is `queued`, and the sender loop ([`Outbox::run`], started by the
//! server) delivers it, retrying with backoff until it is `sent` or, out of attempts or
//! refused for good, `failed`. Without one it is kept as `logged` and written to the
//! log — its content only outside production — so that a developer can follow a reset
//! link and an operator can read it in the outbox.
//!
//! Invariants: a message is validated before anything is stored (recipients parse as
//! addresses, attachments are under [`MAX_ATTACHMENT_BYTES`]), so the sender only meets
//! the mail server's errors; and a delivered message keeps its envelope, subject and
//! attachment list but not its body or attachment bytes (see [`outbox`]).

pub mod outbox;
pub mod smtp;

#[cfg(test)]
mod tests;

use async_trait::async_trait;
use lettre::message::{Mailbox, header::ContentType};
use ruleiq_core::OrganizationId;
use ruleiq_db::DbErr;
use serde::{Deserialize, Serialize};
use std::fmt;

pub use outbox::{
    AttachmentInfo, DeliveryPolicy, Outbox, OutboxEntry, OutboxPage, OutboxQuery, OutboxScope,
};
pub use smtp::SmtpMailer;

/// The most recipients one message may have.
pub const MAX_RECIPIENTS: usize = 100;
/// The most attachments one message may carry.
pub const MAX_ATTACHMENTS: usize = 20;
/// The most attachment bytes one message may carry, all attachments together. Common
/// mail servers refuse messages over 20–25 MB, and base64 adds a third on the wire.
pub const MAX_ATTACHMENT_BYTES: u64 = 20 * 1024 * 1024;
/// The longest body, plain or HTML.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 500;

/// One plain-text message to one recipient: what identity sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// A message with any number of recipients and attachments: what reports send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The organisation the message is sent for; `None` for account mail (password
    /// resets, invitations), which only the server's operator may read back.
    pub organization_id: Option<OrganizationId>,
    /// Addresses, `name@example.com` or `Name <name@example.com>`; all go in `To`.
    pub to: Vec<String>,
    pub subject: String,
    /// The plain-text body, always sent.
    pub text: String,
    /// An HTML alternative, for clients that prefer it.
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
}

impl From<Email> for Message {
    fn from(email: Email) -> Self {
        Self {
            organization_id: None,
            to: vec![email.to],
            subject: email.subject,
            text: email.body,
            html: None,
            attachments: Vec::new(),
        }
    }
}

/// A file sent with a message.
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The name the recipient sees, such as `readiness-2026-11.pdf`.
    pub filename: String,
    /// A MIME type, such as `application/pdf`.
    pub content_type: String,
    pub bytes: bytes::Bytes,
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("size_bytes", &self.bytes.len())
            .finish()
    }
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MailStatus {
    /// Waiting for its (next) attempt.
    Queued,
    /// Accepted by the SMTP server.
    Sent,
    /// Given up: attempts used up, or refused for good. `retry` queues it again.
    Failed,
    /// Not sent because no SMTP server is configured; kept to be read here.
    Logged,
}

impl MailStatus {
    /// Every status.
    pub const ALL: [Self; 4] = [Self::Queued, Self::Sent, Self::Failed, Self::Logged];

    /// The status's name, as stored and as the API shows it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => ruleiq_db::repositories::mail::QUEUED,
            Self::Sent => ruleiq_db::repositories::mail::SENT,
            Self::Failed => ruleiq_db::repositories::mail::FAILED,
            Self::Logged => ruleiq_db::repositories::mail::LOGGED,
        }
    }

    /// A status by name; `None` for anything else.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for MailStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong with a message or the outbox.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A message or query that cannot be accepted; the field names the part at fault.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The attachments are over [`MAX_ATTACHMENT_BYTES`].
    #[error(
        "the attachments total {size} bytes; a message may carry at most {limit} bytes of attachments"
    )]
    TooLarge { size: u64, limit: u64 },
    #[error("no such message")]
    NotFound,
    /// Only `failed` and `logged` messages can be queued again.
    #[error("the message is {0}; only failed or logged messages can be sent again")]
    NotRetryable(MailStatus),
    /// Retrying needs somewhere to send to.
    #[error(
        "no SMTP server is configured (set SMTP_HOST or SMTP_URL), so the message cannot be sent"
    )]
    NotConfigured,
    #[error("database: {0}")]
    Database(#[from] DbErr),
}

fn invalid(field: &'static str, message: impl Into<String>) -> MailError {
    MailError::Invalid {
        field,
        message: message.into(),
    }
}

/// Sends e-mail.
#[async_trait]
pub trait Mailer: Send + Sync + fmt::Debug {
    /// Sends one message (or, for the outbox, accepts it for sending).
    async fn send(&self, email: Email) -> Result<(), String>;
}

/// Logs messages instead of sending them; what a service holds before it is given a
/// real mailer (tests, and commands that send nothing).
#[derive(Debug, Clone)]
pub struct LogMailer {
    /// Whether message content may be written to the log (never in production).
    pub show_content: bool,
}

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, email: Email) -> Result<(), String> {
        if self.show_content {
            tracing::info!(to = %email.to, subject = %email.subject, body = %email.body, "e-mail (not sent: no SMTP server is configured)");
        } else {
            tracing::warn!(to = %email.to, subject = %email.subject, "e-mail not sent: set SMTP_HOST to deliver it");
        }
        Ok(())
    }
}

/// A message that passed every check, ready to store or send.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub organization_id: Option<OrganizationId>,
    pub to: Vec<Mailbox>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    pub attachments: Vec<PreparedAttachment>,
}

#[derive(Debug, Clone)]
pub(crate) struct PreparedAttachment {
    pub filename: String,
    pub content_type: ContentType,
    /// `content_type` as given (lettre keeps its parsed form to itself).
    pub mime: String,
    pub bytes: bytes::Bytes,
}

impl Prepared {
    /// Checks `message`: every recipient an address (the error names the bad one),
    /// a one-line subject, bodies and attachments within their limits.
    ///
    /// # Errors
    /// [`MailError::Invalid`] naming the part at fault; [`MailError::TooLarge`] for
    /// attachments over [`MAX_ATTACHMENT_BYTES`].
    pub(crate) fn new(message: Message) -> Result<Self, MailError> {
        let to = recipients(&message.to)?;
        let subject = message.subject.trim().to_owned();
        if subject.is_empty() {
            return Err(invalid("subject", "must not be empty"));
        }
        if subject.chars().count() > MAX_SUBJECT_CHARS {
            return Err(invalid(
                "subject",
                format!("must be at most {MAX_SUBJECT_CHARS} characters"),
            ));
        }
        // A line break in a header would start a new header: refuse, never fold.
        if subject.chars().any(char::is_control) {
            return Err(invalid(
                "subject",
                "must be one line, without control characters",
            ));
        }
        for (field, body) in [
            ("text", Some(&message.text)),
            ("html", message.html.as_ref()),
        ] {
            if body.is_some_and(|b| b.len() > MAX_BODY_BYTES) {
                return Err(invalid(
                    field,
                    format!("must be at most {MAX_BODY_BYTES} bytes"),
                ));
            }
        }
        if message.attachments.len() > MAX_ATTACHMENTS {
            return Err(invalid(
                "attachments",
                format!("at most {MAX_ATTACHMENTS} per message"),
            ));
        }
        let size: u64 = message
            .attachments
            .iter()
            .map(|a| a.bytes.len() as u64)
            .sum();
        if size > MAX_ATTACHMENT_BYTES {
            return Err(MailError::TooLarge {
                size,
                limit: MAX_ATTACHMENT_BYTES,
            });
        }
        let attachments = message
            .attachments
            .into_iter()
            .map(prepare_attachment)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            organization_id: message.organization_id,
            to,
            subject,
            text: message.text,
            html: message.html,
            attachments,
        })
    }
}

/// Parses and de-duplicates recipients (by address, ignoring case).
fn recipients(to: &[String]) -> Result<Vec<Mailbox>, MailError> {
    if to.is_empty() {
        return Err(invalid("to", "needs at least one recipient"));
    }
    let mut out: Vec<Mailbox> = Vec::with_capacity(to.len());
    for raw in to {
        let trimmed = raw.trim();
        let mailbox = trimmed
            .parse::<Mailbox>()
            .ok()
            // lettre accepts a bare `localhost`-style domain; a recipient needs a dot.
            .filter(|m| m.email.domain().contains('.') || m.email.domain().starts_with('['))
            .ok_or_else(|| {
                let shown: String = trimmed.chars().take(80).collect();
                invalid("to", format!("`{shown}` is not an e-mail address"))
            })?;
        let address: &str = mailbox.email.as_ref();
        let seen = out.iter().any(|m| {
            let other: &str = m.email.as_ref();
            other.eq_ignore_ascii_case(address)
        });
        if !seen {
            out.push(mailbox);
        }
    }
    if out.len() > MAX_RECIPIENTS {
        return Err(invalid(
            "to",
            format!("at most {MAX_RECIPIENTS} recipients per message"),
        ));
    }
    Ok(out)
}

fn prepare_attachment(a: Attachment) -> Result<PreparedAttachment, MailError> {
    let filename = a.filename.trim().to_owned();
    let shown: String = filename.chars().take(80).collect();
    if filename.is_empty() || filename.chars().count() > 255 {
        return Err(invalid(
            "attachments",
            "a file name must be 1–255 characters",
        ));
    }
    // A path in a file name is at best ignored by the recipient's client and at worst
    // obeyed; control characters would break the header.
    if filename
        .chars()
        .any(|c| c.is_control() || matches!(c, '/' | '\\'))
    {
        return Err(invalid(
            "attachments",
            format!("`{shown}` must be a plain file name, without `/`, `\\` or control characters"),
        ));
    }
    let mime = a.content_type.trim().to_owned();
    let content_type = ContentType::parse(&mime).map_err(|_| {
        invalid(
            "attachments",
            format!(
                "`{}` (of {shown}) is not a content type such as application/pdf",
                a.content_type.chars().take(80).collect::<String>()
            ),
        )
    })?;
    Ok(PreparedAttachment {
        filename,
        content_type,
        mime,
        bytes: a.bytes,
    })
}
