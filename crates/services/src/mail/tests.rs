//! Messages are checked before they are stored, and built into the MIME a mail client
//! expects. Delivery over a real SMTP conversation, with the database, is tested in
//! the server's integration tests (`crates/server/tests/integration/mail.rs`).

use super::*;
use base64::Engine;
use std::time::Duration;

fn message(to: &[&str]) -> Message {
    Message {
        to: to.iter().map(|s| (*s).to_owned()).collect(),
        subject: "Monthly readiness report".into(),
        text: "The report is attached.".into(),
        ..Message::default()
    }
}

fn pdf(bytes: Vec<u8>) -> Attachment {
    Attachment {
        filename: "readiness.pdf".into(),
        content_type: "application/pdf".into(),
        bytes: bytes.into(),
    }
}

fn invalid_field(result: Result<Prepared, MailError>) -> (&'static str, String) {
    match result {
        Err(MailError::Invalid { field, message }) => (field, message),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn a_bad_recipient_is_named() {
    let (field, detail) = invalid_field(Prepared::new(message(&[
        "ada@example.co.uk",
        "grace@@example.com",
    ])));
    assert_eq!(field, "to");
    assert!(detail.contains("grace@@example.com"), "{detail}");
    for bad in ["", "ada", "ada@example", "ada@exa mple.com", "<>"] {
        let (field, _) = invalid_field(Prepared::new(message(&[bad])));
        assert_eq!(field, "to", "{bad:?}");
    }
    let (field, _) = invalid_field(Prepared::new(message(&[])));
    assert_eq!(field, "to");
}

#[test]
fn recipients_may_have_names_and_are_taken_once() {
    let p = Prepared::new(message(&[
        "Ada Lovelace <ada@example.co.uk>",
        " ADA@example.co.uk ",
        "grace@example.com",
    ]))
    .unwrap();
    let to: Vec<String> = p.to.iter().map(|m| m.email.to_string()).collect();
    assert_eq!(to, ["ada@example.co.uk", "grace@example.com"]);
    assert_eq!(p.to[0].name.as_deref(), Some("Ada Lovelace"));
}

#[test]
fn a_subject_is_one_line() {
    let mut m = message(&["ada@example.co.uk"]);
    m.subject = "Report\r\nBcc: everyone@example.com".into();
    assert_eq!(invalid_field(Prepared::new(m)).0, "subject");
    let mut m = message(&["ada@example.co.uk"]);
    m.subject = "   ".into();
    assert_eq!(invalid_field(Prepared::new(m)).0, "subject");
}

#[test]
fn attachments_over_the_cap_are_refused_with_sizes() {
    let mut m = message(&["ada@example.co.uk"]);
    let half = usize::try_from(MAX_ATTACHMENT_BYTES / 2).unwrap();
    m.attachments = vec![pdf(vec![0; half]), pdf(vec![0; half + 1])];
    match Prepared::new(m) {
        Err(MailError::TooLarge { size, limit }) => {
            assert_eq!(size, MAX_ATTACHMENT_BYTES + 1);
            assert_eq!(limit, MAX_ATTACHMENT_BYTES);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let mut m = message(&["ada@example.co.uk"]);
    m.attachments = vec![pdf(vec![0; half]), pdf(vec![0; half])];
    Prepared::new(m).expect("exactly the cap is allowed");
}

#[test]
fn attachment_names_and_types_are_checked() {
    for (filename, content_type) in [
        ("../etc/passwd", "text/plain"),
        ("a\\b.pdf", "application/pdf"),
        ("", "application/pdf"),
        ("line\nbreak.pdf", "application/pdf"),
        ("report.pdf", "not a type"),
    ] {
        let mut m = message(&["ada@example.co.uk"]);
        m.attachments = vec![Attachment {
            filename: filename.into(),
            content_type: content_type.into(),
            bytes: bytes::Bytes::from_static(b"x"),
        }];
        assert_eq!(
            invalid_field(Prepared::new(m)).0,
            "attachments",
            "{filename:?} {content_type:?}"
        );
    }
}

/// The raw MIME text of `m`, as sent.
fn formatted(m: Message) -> String {
    let from: lettre::message::Mailbox = "ruleIQ <no-reply@ruleiq.example>".parse().unwrap();
    let mime = smtp::mime(&from, &Prepared::new(m).unwrap()).unwrap();
    String::from_utf8(mime.formatted()).unwrap()
}

#[test]
fn a_plain_message_is_one_text_part() {
    let raw = formatted(message(&["ada@example.co.uk"]));
    assert!(
        raw.contains("From: ruleIQ <no-reply@ruleiq.example>\r\n"),
        "{raw}"
    );
    assert!(raw.contains("To: ada@example.co.uk\r\n"), "{raw}");
    assert!(
        raw.contains("Subject: Monthly readiness report\r\n"),
        "{raw}"
    );
    assert!(
        raw.contains("Content-Type: text/plain; charset=utf-8"),
        "{raw}"
    );
    assert!(!raw.contains("multipart"), "{raw}");
    assert!(raw.contains("The report is attached."));
}

#[test]
fn attachments_are_base64_parts_after_the_body() {
    let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let mut m = message(&["ada@example.co.uk", "Grace <grace@example.com>"]);
    m.html = Some("<p>The report is attached.</p>".into());
    m.attachments = vec![pdf(bytes.clone())];
    let raw = formatted(m);
    assert!(
        raw.contains("To: ada@example.co.uk, Grace <grace@example.com>\r\n"),
        "{raw}"
    );
    assert!(raw.contains("Content-Type: multipart/mixed;"), "{raw}");
    assert!(
        raw.contains("Content-Type: multipart/alternative;"),
        "{raw}"
    );
    assert!(
        raw.contains("Content-Type: text/html; charset=utf-8"),
        "{raw}"
    );
    // MIME parts are separated by lines starting `--boundary`.
    let part = raw
        .split("\r\n--")
        .find(|p| p.contains("filename=\"readiness.pdf\""))
        .expect("an attachment part named readiness.pdf");
    let (headers, body) = part.split_once("\r\n\r\n").unwrap();
    assert!(
        headers.contains("Content-Disposition: attachment; filename=\"readiness.pdf\""),
        "{headers}"
    );
    assert!(
        headers.contains("Content-Type: application/pdf"),
        "{headers}"
    );
    assert!(
        headers.contains("Content-Transfer-Encoding: base64"),
        "{headers}"
    );
    let encoded: String = body.split_whitespace().collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    assert_eq!(decoded, bytes);
}

#[test]
fn backoff_follows_the_schedule_then_repeats_its_last_step() {
    let policy = DeliveryPolicy::default();
    let minutes = |m: u64| Duration::from_secs(m * 60);
    assert_eq!(policy.delay_after(1), minutes(1));
    assert_eq!(policy.delay_after(2), minutes(5));
    assert_eq!(policy.delay_after(3), minutes(30));
    assert_eq!(policy.delay_after(4), minutes(120));
    assert_eq!(policy.delay_after(5), minutes(360));
    assert_eq!(policy.delay_after(50), minutes(360));
    assert_eq!(policy.max_attempts, 6);
    let empty = DeliveryPolicy {
        backoff: Vec::new(),
        ..DeliveryPolicy::default()
    };
    assert_eq!(
        empty.delay_after(1),
        minutes(1),
        "never zero, never a panic"
    );
}

#[test]
fn statuses_round_trip_their_names() {
    for s in MailStatus::ALL {
        assert_eq!(MailStatus::parse(s.as_str()), Some(s));
        assert_eq!(
            serde_json::to_value(s).unwrap(),
            serde_json::json!(s.as_str())
        );
    }
    assert_eq!(MailStatus::parse("sending"), None);
}

#[test]
fn smtp_settings_become_a_mailer_and_a_bad_from_is_named() {
    let smtp = ruleiq_config::SmtpSettings {
        host: "smtp.example.com".into(),
        port: 587,
        tls: ruleiq_config::SmtpTls::StartTls,
        username: Some("mailer".into()),
        password: Some("secret".to_owned().into()),
        hello_name: None,
    };
    let mailer = SmtpMailer::new(&smtp, "ruleIQ <no-reply@example.com>").unwrap();
    assert!(!format!("{mailer:?}").contains("secret"));
    let err = SmtpMailer::new(&smtp, "not an address").unwrap_err();
    assert!(err.contains("SMTP_FROM"), "{err}");
}
