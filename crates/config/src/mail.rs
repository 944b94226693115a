//! Outgoing e-mail settings: the SMTP server, how the connection to it is protected,
//! and the `From` address.
//!
//! The server is given either as parts (`SMTP_HOST`, `SMTP_PORT`, `SMTP_USERNAME`,
//! `SMTP_PASSWORD`, `SMTP_TLS`, as the deployment roadmap names them) or as one
//! `SMTP_URL`, never both: a URL beside parts would leave one of them silently ignored.
//! Either form becomes the same [`SmtpSettings`], so nothing downstream knows which was
//! used. Without either, messages are kept in the outbox as `logged` instead of sent.

use secrecy::{ExposeSecret, SecretString};
use std::{fmt, net::IpAddr};

use crate::{ConfigError, RawSettings, non_empty};

/// The `From` address when neither `SMTP_FROM` nor `MAIL_FROM` is set.
pub const DEFAULT_FROM: &str = "ruleIQ <no-reply@ruleiq.localhost>";

/// How the connection to the SMTP server is protected (`SMTP_TLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `starttls`, the default: a plain connection upgraded with STARTTLS, which must
    /// succeed (a server that does not offer it gets nothing). Port 587 by default.
    StartTls,
    /// `tls`: TLS from the first byte ("implicit TLS", SMTPS). Port 465 by default.
    Tls,
    /// STARTTLS when the server offers it, plain text otherwise. Only
    /// `SMTP_URL=smtp://…?tls=opportunistic` selects it; kept for URLs that worked before.
    Opportunistic,
    /// `none`: no encryption at all, for a relay on the same host or network and for
    /// tests. Port 25 by default.
    None,
}

impl SmtpTls {
    /// Parses an `SMTP_TLS` value (any case).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "starttls" => Some(Self::StartTls),
            "tls" => Some(Self::Tls),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    /// The mode's name, as `SMTP_TLS` spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartTls => "starttls",
            Self::Tls => "tls",
            Self::Opportunistic => "opportunistic",
            Self::None => "none",
        }
    }

    /// The port a server in this mode usually listens on: submission (587) for
    /// STARTTLS, submissions (465) for implicit TLS, plain SMTP (25) otherwise.
    #[must_use]
    pub fn default_port(self) -> u16 {
        match self {
            Self::StartTls | Self::Opportunistic => 587,
            Self::Tls => 465,
            Self::None => 25,
        }
    }
}

impl fmt::Display for SmtpTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where and how to deliver mail.
#[derive(Clone)]
pub struct SmtpSettings {
    /// A host name or IP address, without scheme or port.
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Set together with `password`, or not at all.
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// The name this server gives itself in `EHLO` (from `SMTP_URL`'s path); `None`
    /// uses the machine's host name.
    pub hello_name: Option<String>,
}

impl SmtpSettings {
    /// Whether the server is this machine, where an unencrypted connection never
    /// leaves the host.
    #[must_use]
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "****"))
            .field("hello_name", &self.hello_name)
            .finish()
    }
}

/// Outgoing e-mail.
#[derive(Clone)]
pub struct MailSettings {
    /// The SMTP server; `None` keeps messages in the outbox as `logged`.
    pub smtp: Option<SmtpSettings>,
    /// The `From` mailbox: `name@example.com` or `Name <name@example.com>`.
    pub from: String,
    /// The address people reach this server at, for links in messages.
    pub public_url: String,
}

impl fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp", &self.smtp)
            .field("from", &self.from)
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// The SMTP server, checked; `None` when none is configured.
pub(crate) fn smtp_settings(raw: &RawSettings) -> Result<Option<SmtpSettings>, ConfigError> {
    let url = non_empty(raw.smtp_url.clone());
    let host = non_empty(raw.smtp_host.clone());
    let username = non_empty(raw.smtp_username.clone());
    // Not trimmed here: spaces may be part of a password (a TOML string keeps them).
    let password = raw
        .smtp_password
        .as_ref()
        .map(|t| t.0.clone())
        .filter(|p| !p.is_empty());
    let tls = non_empty(raw.smtp_tls.clone());
    let parts = [
        ("SMTP_HOST", host.is_some()),
        ("SMTP_PORT", raw.smtp_port.is_some()),
        ("SMTP_USERNAME", username.is_some()),
        ("SMTP_PASSWORD", password.is_some()),
        ("SMTP_TLS", tls.is_some()),
    ];
    let given = parts
        .iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| *name)
        .collect::<Vec<_>>();

    if let Some(url) = url {
        if !given.is_empty() {
            return Err(ConfigError::invalid(
                "SMTP_URL",
                format!(
                    "cannot be combined with {}; give the server either as SMTP_URL or as SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD and SMTP_TLS",
                    given.join(", ")
                ),
            ));
        }
        return parse_smtp_url(&url).map(Some);
    }

    let Some(host) = host else {
        if let Some(name) = given.first() {
            return Err(ConfigError::invalid(
                name,
                "is set but SMTP_HOST is not; set SMTP_HOST to send e-mail, or unset it",
            ));
        }
        return Ok(None);
    };
    check_host(&host).map_err(|m| ConfigError::invalid("SMTP_HOST", m))?;
    let tls = match tls {
        None => SmtpTls::StartTls,
        Some(value) => SmtpTls::parse(&value).ok_or_else(|| {
            ConfigError::invalid(
                "SMTP_TLS",
                format!("`{value}` is not one of starttls, tls, none"),
            )
        })?,
    };
    let port = match raw.smtp_port {
        None => tls.default_port(),
        Some(0) => {
            return Err(ConfigError::invalid("SMTP_PORT", "must be from 1 to 65535"));
        }
        Some(port) => port,
    };
    match (&username, &password) {
        (Some(_), None) => {
            return Err(ConfigError::invalid(
                "SMTP_PASSWORD",
                "is required when SMTP_USERNAME is set",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::invalid(
                "SMTP_USERNAME",
                "is required when SMTP_PASSWORD is set",
            ));
        }
        _ => {}
    }
    if username.as_deref().is_some_and(has_control) {
        return Err(ConfigError::invalid(
            "SMTP_USERNAME",
            "must not contain control characters",
        ));
    }
    Ok(Some(SmtpSettings {
        host,
        port,
        tls,
        username,
        password: password.map(SecretString::from),
        hello_name: None,
    }))
}

/// `smtp://USER:PASSWORD@HOST:PORT/HELLO-NAME?tls=required|opportunistic` or
/// `smtps://…`, read exactly as earlier releases (and lettre) read them: `smtp://`
/// alone is unencrypted.
fn parse_smtp_url(url: &str) -> Result<SmtpSettings, ConfigError> {
    let bad = |m: String| ConfigError::invalid("SMTP_URL", m);
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a valid URL ({e})")))?;
    let tls_param = parsed
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let tls = match (parsed.scheme(), tls_param.as_deref()) {
        ("smtp", None) => SmtpTls::None,
        ("smtp", Some("required")) => SmtpTls::StartTls,
        ("smtp", Some("opportunistic")) => SmtpTls::Opportunistic,
        ("smtp", Some(other)) => {
            return Err(bad(format!(
                "tls={other} is not understood; use tls=required or tls=opportunistic"
            )));
        }
        ("smtps", _) => SmtpTls::Tls,
        _ => {
            return Err(bad(
                "expected smtp://USER:PASSWORD@HOST:PORT or smtps://…".into()
            ));
        }
    };
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("names no host".into()))?
        .to_owned();
    let decode = |s: &str, what: &str| {
        percent_decode(s)
            .ok_or_else(|| bad(format!("its {what} is not valid percent-encoded UTF-8")))
    };
    let username = Some(decode(parsed.username(), "user name")?).filter(|u| !u.is_empty());
    let password = match parsed.password() {
        Some(p) => Some(decode(p, "password")?).filter(|p| !p.is_empty()),
        None => None,
    };
    match (&username, &password) {
        (Some(_), None) => return Err(bad("has a user name but no password".into())),
        (None, Some(_)) => return Err(bad("has a password but no user name".into())),
        _ => {}
    }
    let hello_name = Some(parsed.path().trim_matches('/').to_owned()).filter(|p| !p.is_empty());
    Ok(SmtpSettings {
        port: parsed.port().unwrap_or_else(|| tls.default_port()),
        host,
        tls,
        username,
        password: password.map(SecretString::from),
        hello_name,
    })
}

/// `%XX` escapes decoded; `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A host name or an IP address, and nothing else: a scheme or a port here is the
/// usual mistake, and would otherwise surface only at the first message.
fn check_host(host: &str) -> Result<(), String> {
    if host.contains("://") {
        return Err(format!(
            "`{host}` is a URL; give only the host name here (or the whole URL as SMTP_URL)"
        ));
    }
    if host
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .is_ok()
    {
        return Ok(());
    }
    if host.contains(':') {
        return Err(format!(
            "`{host}` includes a port; give the host alone and the port as SMTP_PORT"
        ));
    }
    if host.contains(char::is_whitespace) || url::Host::parse(host).is_err() {
        return Err(format!(
            "`{host}` is not a host name or IP address such as smtp.example.com"
        ));
    }
    Ok(())
}

/// `SMTP_FROM`, or its older name `MAIL_FROM`, or the default; both names set to
/// different values is refused rather than one silently winning.
pub(crate) fn from_address(raw: &RawSettings) -> Result<String, ConfigError> {
    let smtp_from = non_empty(raw.smtp_from.clone()).map(|s| s.trim().to_owned());
    let mail_from = non_empty(raw.mail_from.clone()).map(|s| s.trim().to_owned());
    let (setting, from) = match (smtp_from, mail_from) {
        (Some(a), Some(b)) if a != b => {
            return Err(ConfigError::invalid(
                "SMTP_FROM",
                "and MAIL_FROM are both set, to different addresses; MAIL_FROM is the older name of SMTP_FROM, so set only SMTP_FROM",
            ));
        }
        (Some(a), _) => ("SMTP_FROM", a),
        (None, Some(b)) => ("MAIL_FROM", b),
        (None, None) => return Ok(DEFAULT_FROM.to_owned()),
    };
    check_mailbox(&from).map_err(|m| ConfigError::invalid(setting, m))?;
    Ok(from)
}

/// `name@example.com` or `Display Name <name@example.com>`. The SMTP client parses it
/// again; this check is here so a typo stops the server at start-up, naming the
/// variable, rather than failing every message later.
pub(crate) fn check_mailbox(value: &str) -> Result<(), String> {
    let refuse = || {
        format!(
            "`{value}` is not an e-mail address; use name@example.com or ruleIQ <name@example.com>"
        )
    };
    if has_control(value) {
        return Err("must not contain control characters".into());
    }
    let address = match (value.rfind('<'), value.ends_with('>')) {
        (Some(open), true) => {
            let name = &value[..open];
            if name.contains(['<', '>']) {
                return Err(refuse());
            }
            &value[open + 1..value.len() - 1]
        }
        (None, false) => value,
        _ => return Err(refuse()),
    };
    let (local, domain) = address.trim().rsplit_once('@').ok_or_else(refuse)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.chars().any(|c| {
            c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"' | '@' | '(' | ')')
        });
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    if local_ok && domain_ok {
        Ok(())
    } else {
        Err(refuse())
    }
}

/// The production refusal for mail: a password must not cross the network in clear.
pub(crate) fn check_production(mail: &MailSettings) -> Result<(), ConfigError> {
    if let Some(smtp) = &mail.smtp
        && smtp
            .password
            .as_ref()
            .is_some_and(|p| !p.expose_secret().is_empty())
        && matches!(smtp.tls, SmtpTls::None | SmtpTls::Opportunistic)
        && !smtp.is_loopback()
    {
        return Err(ConfigError::Unsafe {
            setting: "SMTP_TLS",
            message: format!(
                "is {} while a password is set for {}; the password would cross the network unencrypted (use starttls or tls)",
                smtp.tls, smtp.host
            ),
        });
    }
    Ok(())
}
