//! Delivery over SMTP (lettre), and the MIME form of a message.
//!
//! One connection per message: the outbox sends a handful at a time, and a pooled
//! connection that a server closed while idle would turn into a spurious failure.

use async_trait::async_trait;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    message::{Attachment as MimeAttachment, Mailbox, MultiPart, SinglePart, header::ContentType},
    transport::smtp::{
        authentication::Credentials,
        client::{Tls, TlsParameters},
        extension::ClientId,
    },
};
use ruleiq_config::{ExposeSecret, SmtpSettings, SmtpTls};
use std::time::Duration;

use super::{Email, Mailer, Prepared};

/// The longest one SMTP command may wait for its answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a delivery failed, and whether trying again could help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    /// The server refused for good (a 5xx reply), or the message cannot be built:
    /// another attempt would fail the same way.
    pub permanent: bool,
    pub message: String,
}

/// Sends through one SMTP server, as one `From`.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmtpMailer({} as {})", self.server, self.from)
    }
}

impl SmtpMailer {
    /// A mailer for the server `smtp` describes, sending as `from`.
    ///
    /// # Errors
    /// When `from` is not a mailbox or the TLS set-up for the host fails.
    pub fn new(smtp: &SmtpSettings, from: &str) -> Result<Self, String> {
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("SMTP_FROM `{from}`: {e}"))?;
        let tls_for = |host: &str| {
            TlsParameters::new(host.to_owned()).map_err(|e| format!("TLS for {host}: {e}"))
        };
        let tls = match smtp.tls {
            SmtpTls::StartTls => Tls::Required(tls_for(&smtp.host)?),
            SmtpTls::Tls => Tls::Wrapper(tls_for(&smtp.host)?),
            SmtpTls::Opportunistic => Tls::Opportunistic(tls_for(&smtp.host)?),
            SmtpTls::None => Tls::None,
        };
        // `builder_dangerous` only means "no TLS unless told": `tls` is set just below.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(COMMAND_TIMEOUT));
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        if let Some(name) = &smtp.hello_name {
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            server: format!("{}:{} ({})", smtp.host, smtp.port, smtp.tls),
        })
    }

    /// The `From` mailbox.
    #[must_use]
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Delivers one message: every recipient in one SMTP transaction.
    ///
    /// # Errors
    /// A [`SendFailure`] saying whether it is worth trying again.
    pub(crate) async fn deliver(&self, message: &Prepared) -> Result<(), SendFailure> {
        let mime = mime(&self.from, message).map_err(|e| SendFailure {
            permanent: true,
            message: format!("cannot build the message: {e}"),
        })?;
        self.transport
            .send(mime)
            .await
            .map(|_| ())
            .map_err(|e| SendFailure {
                // 5xx: the server will say the same next time. Everything else — 4xx,
                // refused or dropped connections, TLS trouble, timeouts — may pass.
                permanent: e.is_permanent(),
                message: e.to_string(),
            })
    }
}

/// Sends at once, without the outbox; for callers that have no database.
#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: Email) -> Result<(), String> {
        let prepared = Prepared::new(email.into()).map_err(|e| e.to_string())?;
        self.deliver(&prepared).await.map_err(|f| f.message)
    }
}

/// The MIME message: plain text alone; or text with an HTML alternative; and any
/// attachments after the body in a `multipart/mixed`, each base64-encoded.
pub(crate) fn mime(from: &Mailbox, message: &Prepared) -> Result<lettre::Message, String> {
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .subject(message.subject.clone());
    for to in &message.to {
        builder = builder.to(to.clone());
    }
    let built = match (&message.html, message.attachments.is_empty()) {
        (None, true) => builder
            .header(ContentType::TEXT_PLAIN)
            .body(message.text.clone()),
        (Some(html), true) => builder.multipart(MultiPart::alternative_plain_html(
            message.text.clone(),
            html.clone(),
        )),
        (html, false) => {
            let mut mixed = match html {
                Some(html) => MultiPart::mixed().multipart(MultiPart::alternative_plain_html(
                    message.text.clone(),
                    html.clone(),
                )),
                None => MultiPart::mixed().singlepart(SinglePart::plain(message.text.clone())),
            };
            for a in &message.attachments {
                // Bytes (not a string) always go as base64, whatever they contain.
                mixed = mixed.singlepart(
                    MimeAttachment::new(a.filename.clone())
                        .body(a.bytes.to_vec(), a.content_type.clone()),
                );
            }
            builder.multipart(mixed)
        }
    };
    built.map_err(|e| e.to_string())
}
