//! Error reports: panics and 5xx answers sent to Sentry (or any server that accepts
//! Sentry's envelope format) when `SENTRY_DSN` is set.
//!
//! We speak the envelope format ourselves rather than pull in the Sentry SDK: an event
//! is one small JSON document, and writing it here means we decide, field by field,
//! what leaves the process. Nothing a user typed does: no request bodies, headers,
//! query strings, addresses, user or organisation identifiers. An event carries the
//! route template (`/api/v1/policies/{id}`), the method, the status, the request id,
//! the release and the environment, and the error's own message after [`scrub`] has
//! removed anything shaped like an e-mail address, a credential or a token.
//!
//! Sending never blocks the request or the panicking thread: events go through a
//! bounded channel to one task that posts them, and are dropped (and counted in the
//! log) when the channel is full or Sentry has asked us to back off.

use std::{
    fmt::Write as _,
    sync::{Arc, Once, OnceLock},
    time::{Duration, Instant},
};

use chrono::{SecondsFormat, Utc};
use ruleiq_config::SentryDsn;
use serde_json::json;
use tokio::sync::mpsc;

/// Events waiting to be sent; beyond this a burst of errors is sampled by dropping.
const QUEUE: usize = 256;
/// How long one post may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest message kept, in characters.
const MAX_MESSAGE: usize = 2_000;

/// What went wrong, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A thread panicked.
    Panic,
    /// A request was answered with a 5xx status.
    ServerError,
}

/// The request an error happened in, as far as it may be reported.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub method: String,
    /// The matched route template, never the concrete path.
    pub route: String,
    pub request_id: Option<String>,
}

/// One error to report.
#[derive(Debug, Clone)]
pub struct ErrorEvent {
    pub kind: ErrorKind,
    /// The error's message; scrubbed before it is sent.
    pub message: String,
    /// `file:line` of a panic.
    pub location: Option<String>,
    pub request: Option<RequestFacts>,
    pub status: Option<u16>,
}

/// Sends [`ErrorEvent`]s to one DSN. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ErrorReporter {
    tx: mpsc::Sender<ErrorEvent>,
}

/// Who sends, and for which release and environment.
#[derive(Debug, Clone)]
pub struct ReporterIdentity {
    /// `ruleiq@VERSION`.
    pub release: String,
    pub environment: String,
}

impl ErrorReporter {
    /// Starts the sending task on the current Tokio runtime. Returns `None` outside a
    /// runtime (a command that only prints, say), where nothing could be sent anyway.
    #[must_use]
    pub fn start(dsn: SentryDsn, identity: ReporterIdentity) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let client = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .user_agent(concat!("ruleiq/", env!("CARGO_PKG_VERSION")))
            .build()
            .ok()?;
        let (tx, rx) = mpsc::channel(QUEUE);
        runtime.spawn(send_loop(
            rx,
            Sender {
                client,
                dsn,
                identity: Arc::new(identity),
            },
        ));
        Some(Self { tx })
    }

    /// Queues `event`; never waits. A full queue drops the event.
    pub fn report(&self, event: ErrorEvent) {
        if self.tx.try_send(event).is_err() {
            tracing::warn!("error report dropped: the queue to Sentry is full or closed");
        }
    }
}

struct Sender {
    client: reqwest::Client,
    dsn: SentryDsn,
    identity: Arc<ReporterIdentity>,
}

async fn send_loop(mut rx: mpsc::Receiver<ErrorEvent>, sender: Sender) {
    // Sentry answers 429 with Retry-After when the project is over its quota; events
    // in that window are dropped rather than queued, so a storm cannot pile up here.
    let mut quiet_until: Option<Instant> = None;
    let auth = format!(
        "Sentry sentry_version=7, sentry_client=ruleiq/{}, sentry_key={}",
        env!("CARGO_PKG_VERSION"),
        sender.dsn.public_key()
    );
    while let Some(event) = rx.recv().await {
        if quiet_until.is_some_and(|until| Instant::now() < until) {
            tracing::debug!("error report dropped: Sentry asked us to wait");
            continue;
        }
        let body = envelope(&event, &sender.identity, Utc::now());
        let sent = sender
            .client
            .post(sender.dsn.envelope_url().clone())
            .header("X-Sentry-Auth", &auth)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-sentry-envelope",
            )
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                let wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(60);
                quiet_until = Some(Instant::now() + Duration::from_secs(wait));
                tracing::warn!(
                    retry_after_seconds = wait,
                    "Sentry is rate limiting error reports"
                );
            }
            Ok(response) if !response.status().is_success() => {
                tracing::warn!(status = %response.status(), "Sentry refused an error report");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not send an error report to Sentry"),
        }
    }
}

/// The envelope for one event: a header line, an item header line and the event.
#[must_use]
pub fn envelope(
    event: &ErrorEvent,
    identity: &ReporterIdentity,
    now: chrono::DateTime<Utc>,
) -> Vec<u8> {
    let event_id = uuid::Uuid::new_v4().simple().to_string();
    let timestamp = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let (exception_type, level) = match event.kind {
        ErrorKind::Panic => ("panic", "fatal"),
        ErrorKind::ServerError => ("server_error", "error"),
    };
    let mut tags = serde_json::Map::new();
    let mut transaction = None;
    if let Some(request) = &event.request {
        tags.insert("route".into(), request.route.clone().into());
        tags.insert("method".into(), request.method.clone().into());
        if let Some(id) = &request.request_id {
            tags.insert("request_id".into(), scrub(id).into());
        }
        transaction = Some(format!("{} {}", request.method, request.route));
    }
    if let Some(status) = event.status {
        tags.insert("status".into(), status.to_string().into());
    }
    let mut value = scrub(&event.message);
    if let Some(location) = &event.location {
        let _ = write!(value, " (at {location})");
    }
    let payload = json!({
        "event_id": event_id,
        "timestamp": timestamp,
        "platform": "native",
        "level": level,
        "logger": "ruleiq",
        "release": identity.release,
        "environment": identity.environment,
        "transaction": transaction,
        "tags": tags,
        "exception": {"values": [{"type": exception_type, "value": value}]},
        "sdk": {"name": "ruleiq", "version": env!("CARGO_PKG_VERSION")},
    });
    let payload = serde_json::to_vec(&payload).unwrap_or_default();
    let header = json!({"event_id": event_id, "sent_at": timestamp});
    let item =
        json!({"type": "event", "length": payload.len(), "content_type": "application/json"});
    let mut out = Vec::with_capacity(payload.len() + 160);
    out.extend_from_slice(header.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(item.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&payload);
    out.push(b'\n');
    out
}

/// Removes what must never leave the process from an error message: anything shaped
/// like an e-mail address or a URL with credentials, the value after a word such as
/// `password`, `token`, `secret` or `key`, and long runs of token-like characters.
#[must_use]
pub fn scrub(message: &str) -> String {
    const SENSITIVE: &[&str] = &[
        "password",
        "passwd",
        "token",
        "secret",
        "key",
        "authorization",
        "bearer",
        "cookie",
        "dsn",
    ];
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE));
    let mut redact_next = false;
    for word in message.split_inclusive(char::is_whitespace) {
        let trimmed = word.trim_end();
        let tail = &word[trimmed.len()..];
        let lower = trimmed.to_ascii_lowercase();
        let replacement = if redact_next && !trimmed.is_empty() {
            redact_next = false;
            Some("[redacted]")
        } else if trimmed.contains('@') || looks_like_token(trimmed) {
            Some("[redacted]")
        } else {
            None
        };
        match replacement {
            Some(r) => out.push_str(r),
            None => {
                // `password=hunter2` or `token: abc` — keep the name, drop the value.
                if let Some(name) = SENSITIVE.iter().find(|s| lower.contains(**s)) {
                    match trimmed.find(['=', ':']) {
                        Some(at) if at + 1 < trimmed.len() => {
                            out.push_str(&trimmed[..=at]);
                            out.push_str("[redacted]");
                        }
                        _ => {
                            out.push_str(trimmed);
                            // "password is hunter2" is rare; "token: abc" and
                            // "Bearer abc" are not.
                            redact_next = trimmed.ends_with(':') || *name == "bearer";
                        }
                    }
                } else {
                    out.push_str(trimmed);
                }
            }
        }
        out.push_str(tail);
        if out.len() >= MAX_MESSAGE {
            break;
        }
    }
    if out.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Twenty or more characters of letters, digits and `-_.+/=` with both letters and
/// digits: a session token, an API key, a JWT. Ordinary words and UUIDs of the
/// resources involved (36 characters with dashes) are kept; UUIDs identify rows, not
/// people, and are what an engineer needs to find the failing record.
fn looks_like_token(word: &str) -> bool {
    let word = word.trim_matches(|c: char| matches!(c, '"' | '\'' | '(' | ')' | ',' | '`'));
    if word.len() < 20 || uuid::Uuid::parse_str(word).is_ok() {
        return false;
    }
    word.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.+/=".contains(c))
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_alphabetic())
}

tokio::task_local! {
    /// The request being served, so that a panic inside it is reported with its route
    /// and request id, through the reporter of the application serving it.
    pub static REQUEST: (ErrorReporter, RequestFacts);
}

static PROCESS_REPORTER: OnceLock<ErrorReporter> = OnceLock::new();
static HOOK: Once = Once::new();

/// Installs the panic hook (once per process; later calls only set the reporter for
/// panics outside requests, if none is set yet). The previous hook still runs, so the
/// panic is logged as before.
pub fn install_panic_hook(process_reporter: Option<ErrorReporter>) {
    if let Some(reporter) = process_reporter {
        let _ = PROCESS_REPORTER.set(reporter);
    }
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            report_panic(info);
            previous(info);
        }));
    });
}

fn report_panic(info: &std::panic::PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_owned());
    let location = info
        .location()
        .map(|l| format!("{}:{}", l.file(), l.line()));
    let in_request = REQUEST.try_with(|(reporter, request)| {
        reporter.report(ErrorEvent {
            kind: ErrorKind::Panic,
            message: message.clone(),
            location: location.clone(),
            request: Some(request.clone()),
            status: Some(500),
        });
    });
    if in_request.is_err()
        && let Some(reporter) = PROCESS_REPORTER.get()
    {
        reporter.report(ErrorEvent {
            kind: ErrorKind::Panic,
            message,
            location,
            request: None,
            status: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_removes_addresses_credentials_and_tokens_and_keeps_the_rest() {
        let message = "insert failed for ann@example.co.uk: duplicate key; password=hunter2 \
                       token: abcDEF123456ghiJKL7890xyz Bearer eyJhbGciOiJIUzI1NiJ9 \
                       postgres://app:s3cret@db.internal/ruleiq row 0b9c7c1e-8f0e-4c1a-9d61-2f1f3b1e6a10";
        let scrubbed = scrub(message);
        for gone in [
            "ann@example.co.uk",
            "hunter2",
            "abcDEF123456ghiJKL7890xyz",
            "eyJhbGciOiJIUzI1NiJ9",
            "s3cret",
        ] {
            assert!(!scrubbed.contains(gone), "{gone} in {scrubbed}");
        }
        assert!(
            scrubbed.starts_with("insert failed for [redacted] duplicate key;"),
            "{scrubbed}"
        );
        assert!(scrubbed.contains("password=[redacted]"), "{scrubbed}");
        assert!(
            scrubbed.contains("0b9c7c1e-8f0e-4c1a-9d61-2f1f3b1e6a10"),
            "{scrubbed}"
        );
        assert!(scrub(&"x ".repeat(5_000)).chars().count() <= MAX_MESSAGE + 1);
    }

    #[test]
    fn an_envelope_is_three_json_lines_with_the_lengths_sentry_checks() {
        let event = ErrorEvent {
            kind: ErrorKind::ServerError,
            message: "no such table: notifications".into(),
            location: None,
            request: Some(RequestFacts {
                method: "GET".into(),
                route: "/api/v1/notifications".into(),
                request_id: Some("req-1".into()),
            }),
            status: Some(500),
        };
        let identity = ReporterIdentity {
            release: "ruleiq@1.2.3".into(),
            environment: "production".into(),
        };
        let body = envelope(&event, &identity, Utc::now());
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<&str> = text.trim_end().split('\n').collect();
        assert_eq!(lines.len(), 3);
        let header: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        let item: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        let payload: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(item["type"], "event");
        assert_eq!(item["length"], lines[2].len());
        assert_eq!(header["event_id"], payload["event_id"]);
        assert_eq!(payload["event_id"].as_str().unwrap().len(), 32);
        assert_eq!(payload["release"], "ruleiq@1.2.3");
        assert_eq!(payload["tags"]["route"], "/api/v1/notifications");
        assert_eq!(payload["tags"]["request_id"], "req-1");
        assert_eq!(payload["tags"]["status"], "500");
        assert_eq!(payload["transaction"], "GET /api/v1/notifications");
        assert_eq!(
            payload["exception"]["values"][0]["value"],
            "no such table: notifications"
        );
    }
}
