//! Outgoing e-mail.
//!
//! [`SmtpMailer`] sends through the server `SMTP_URL` names. Without one,
//! [`LogMailer`] writes each message to the log outside production (so a developer can
//! follow a reset or invitation link) and, in production, logs only that a message
//! could not be sent, never its content.

use async_trait::async_trait;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
};
use std::time::Duration;

/// One plain-text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Sends e-mail.
#[async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Sends one message.
    async fn send(&self, email: Email) -> Result<(), String>;
}

/// Logs messages instead of sending them.
#[derive(Debug, Clone)]
pub struct LogMailer {
    /// Whether message content may be written to the log (never in production).
    pub show_content: bool,
}

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, email: Email) -> Result<(), String> {
        if self.show_content {
            tracing::info!(to = %email.to, subject = %email.subject, body = %email.body, "e-mail (not sent: SMTP_URL is not set)");
        } else {
            tracing::warn!(to = %email.to, subject = %email.subject, "e-mail not sent: set SMTP_URL to deliver it");
        }
        Ok(())
    }
}

/// Sends through an SMTP server.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmtpMailer(from {})", self.from)
    }
}

impl SmtpMailer {
    /// A mailer for `url` (`smtp://` with STARTTLS when offered, `?tls=required`, or
    /// `smtps://`), sending as `from`.
    ///
    /// # Errors
    /// When the URL or the address is not usable.
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("SMTP_URL: {e}"))?
            .timeout(Some(Duration::from_secs(15)))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("MAIL_FROM: {e}"))?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: Email) -> Result<(), String> {
        let to = email
            .to
            .parse::<Mailbox>()
            .map_err(|e| format!("recipient {}: {e}", email.to))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(email.body)
            .map_err(|e| e.to_string())?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
