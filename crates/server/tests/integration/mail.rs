//! The e-mail outbox over a real SMTP conversation: a small SMTP server in this file
//! receives what the outbox sends, and can answer with temporary (4xx) or permanent
//! (5xx) refusals to show the retries. Runs on SQLite and, with
//! `TEST_DATABASE=postgres`, on PostgreSQL.

use base64::Engine;
use reqwest::StatusCode;
use ruleiq_config::{Settings, SmtpSettings, SmtpTls};
use ruleiq_core::{Clock, OrganizationId, Permission, Role, SystemClock, UserId};
use ruleiq_db::{
    DatabaseConnection,
    entities::{mail_outbox::attachment, organization},
    sea_orm::{ActiveValue::Set, EntityTrait, PaginatorTrait},
};
use ruleiq_migration::{Migrator, MigratorTrait};
use ruleiq_services::{
    identity::Principal,
    mail::{
        Attachment, DeliveryPolicy, MailError, MailStatus, Message, Outbox, OutboxEntry,
        OutboxQuery, OutboxScope, SmtpMailer,
    },
};
use ruleiq_test_support::{TestApp, TestDatabase, test_raw_settings, text};
use serde_json::json;
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};
use uuid::Uuid;

const FROM: &str = "ruleIQ <no-reply@ruleiq.example>";

/// How the sink answers `MAIL FROM` in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accept,
    /// 451: try again later.
    Transient,
    /// 550: never.
    Permanent,
}

/// One received message: the envelope and the raw DATA (dot-stuffing undone).
#[derive(Debug, Clone, Default)]
struct Received {
    mail_from: String,
    rcpt_to: Vec<String>,
    data: String,
}

impl Received {
    /// The value of the first top-level header `name`.
    fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        // Unfold continuation lines first.
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

/// An SMTP server speaking just enough of RFC 5321 for lettre: greeting, EHLO, MAIL,
/// RCPT, DATA, RSET, NOOP, QUIT. `script` answers each transaction by its number.
#[derive(Clone)]
struct Sink {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    transactions: Arc<AtomicUsize>,
}

impl Sink {
    async fn start(script: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = Self {
            port,
            received: Arc::default(),
            transactions: Arc::default(),
        };
        let script = Arc::new(script);
        let shared = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (sink, script) = (shared.clone(), script.clone());
                tokio::spawn(async move { sink.converse(stream, &*script).await });
            }
        });
        sink
    }

    async fn accepting() -> Self {
        Self::start(|_| Answer::Accept).await
    }

    async fn converse(
        &self,
        stream: tokio::net::TcpStream,
        script: &(dyn Fn(usize) -> Answer + Send + Sync),
    ) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let _ = write.write_all(b"220 sink.test ESMTP\r\n").await;
        let mut current = Received::default();
        while let Ok(Some(line)) = lines.next_line().await {
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-sink.test\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n"
            } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
                b"250 OK\r\n"
            } else if upper.starts_with("RSET") {
                current = Received::default();
                b"250 OK\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                let n = self.transactions.fetch_add(1, Ordering::SeqCst);
                match script(n) {
                    Answer::Accept => {
                        current = Received {
                            mail_from: address_in(&line),
                            ..Received::default()
                        };
                        b"250 OK\r\n"
                    }
                    Answer::Transient => b"451 4.3.0 Mailbox busy, try again later\r\n",
                    Answer::Permanent => b"550 5.7.1 Relaying denied\r\n",
                }
            } else if upper.starts_with("RCPT TO:") {
                current.rcpt_to.push(address_in(&line));
                b"250 OK\r\n"
            } else if upper == "DATA" {
                let _ = write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await;
                while let Ok(Some(data_line)) = lines.next_line().await {
                    if data_line == "." {
                        break;
                    }
                    // Undo dot-stuffing (RFC 5321 4.5.2).
                    let data_line =
                        data_line
                            .strip_prefix('.')
                            .map_or(data_line.as_str(), |rest| {
                                if rest.starts_with('.') {
                                    rest
                                } else {
                                    data_line.as_str()
                                }
                            });
                    current.data.push_str(data_line);
                    current.data.push_str("\r\n");
                }
                self.received
                    .lock()
                    .unwrap()
                    .push(std::mem::take(&mut current));
                b"250 OK: queued\r\n"
            } else if upper.starts_with("QUIT") {
                let _ = write.write_all(b"221 Bye\r\n").await;
                break;
            } else {
                b"502 Command not implemented\r\n"
            };
            if write.write_all(reply).await.is_err() {
                break;
            }
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits up to ten seconds for `n` messages.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            if self.received().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.received()
    }

    fn smtp(&self) -> SmtpSettings {
        smtp_at(self.port)
    }
}

fn smtp_at(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        hello_name: None,
    }
}

/// `<a@b>` in `MAIL FROM:<a@b> SIZE=…`.
fn address_in(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(addr, _)| addr.to_owned())
        .unwrap_or_default()
}

/// A migrated database of its own.
async fn database() -> (TestDatabase, DatabaseConnection) {
    let test_db = TestDatabase::new().await;
    let settings = Settings::from_raw(test_raw_settings(&test_db)).unwrap();
    let db = ruleiq_db::connect(&settings.database).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    (test_db, db)
}

async fn organization(db: &DatabaseConnection, name: &str) -> OrganizationId {
    let id = OrganizationId::new();
    let now = SystemClock.now();
    organization::Entity::insert(organization::ActiveModel {
        id: Set(id.as_uuid()),
        name: Set(name.into()),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(db)
    .await
    .unwrap();
    id
}

fn admin_of(org: OrganizationId) -> Principal {
    Principal {
        user_id: UserId::new(),
        organization_id: org,
        role: Role::Admin,
        session_id: Uuid::now_v7(),
    }
}

/// Quick retries, so the tests see several attempts in well under a second.
fn quick(max_attempts: u32) -> DeliveryPolicy {
    DeliveryPolicy {
        backoff: vec![Duration::from_millis(150), Duration::from_millis(300)],
        max_attempts,
        poll_interval: Duration::from_millis(50),
    }
}

fn outbox(db: &DatabaseConnection, smtp: Option<SmtpSettings>, policy: DeliveryPolicy) -> Outbox {
    let mailer = smtp.map(|s| SmtpMailer::new(&s, FROM).unwrap());
    Outbox::new(db.clone(), Arc::new(SystemClock), mailer, true).with_policy(policy)
}

fn report(org: Option<OrganizationId>, to: &[&str]) -> Message {
    Message {
        organization_id: org,
        to: to.iter().map(|s| (*s).to_owned()).collect(),
        subject: "Readiness report, November".into(),
        text: "Your monthly readiness report is attached.".into(),
        html: None,
        attachments: Vec::new(),
    }
}

async fn entry(outbox: &Outbox, id: Uuid) -> OutboxEntry {
    outbox.get(&OutboxScope::operator(), id).await.unwrap()
}

#[tokio::test]
async fn a_report_reaches_every_recipient_with_its_attachment() {
    let (_guard, db) = database().await;
    let sink = Sink::accepting().await;
    let outbox = outbox(&db, Some(sink.smtp()), quick(3));
    let org = organization(&db, "Engines").await;
    let pdf: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let mut message = report(
        Some(org),
        &[
            "Ada Lovelace <ada@example.co.uk>",
            "grace@example.com",
            "cy@example.org",
        ],
    );
    message.attachments = vec![Attachment {
        filename: "readiness-2026-11.pdf".into(),
        content_type: "application/pdf".into(),
        bytes: pdf.clone().into(),
    }];
    let id = outbox.enqueue(message).await.unwrap();
    assert_eq!(entry(&outbox, id).await.status, MailStatus::Queued);

    assert_eq!(outbox.deliver_due().await.unwrap(), 1);
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let mail = &got[0];
    assert_eq!(mail.mail_from, "no-reply@ruleiq.example");
    assert_eq!(
        mail.rcpt_to,
        ["ada@example.co.uk", "grace@example.com", "cy@example.org"]
    );
    assert_eq!(mail.header("From").unwrap(), FROM);
    assert_eq!(
        mail.header("To").unwrap(),
        "\"Ada Lovelace\" <ada@example.co.uk>, grace@example.com, cy@example.org"
    );
    assert_eq!(
        mail.header("Subject").unwrap(),
        "Readiness report, November"
    );
    assert!(
        mail.header("Content-Type")
            .unwrap()
            .starts_with("multipart/mixed"),
        "{}",
        mail.data
    );

    let (headers, decoded) = attachment(&mail.data, "readiness-2026-11.pdf");
    assert!(
        headers.contains("Content-Disposition: attachment"),
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
    assert_eq!(decoded, pdf, "the attachment arrives byte for byte");

    let sent = entry(&outbox, id).await;
    assert_eq!(sent.status, MailStatus::Sent);
    assert_eq!(sent.attempts, 1);
    assert!(sent.sent_at.is_some() && sent.last_error.is_none());
    assert_eq!(sent.body, None, "a delivered body is not kept");
    assert_eq!(sent.attachments.len(), 1, "but what was attached is");
    assert_eq!(sent.attachments[0].filename, "readiness-2026-11.pdf");
    assert_eq!(sent.attachments[0].size_bytes, 70_000);
    assert_eq!(
        attachment::Entity::find().count(&db).await.unwrap(),
        0,
        "nor are the attachment bytes"
    );
    assert_eq!(outbox.deliver_due().await.unwrap(), 0, "sent once");
}

#[tokio::test]
async fn a_temporary_refusal_is_retried_after_its_backoff_with_the_error_kept() {
    let (_guard, db) = database().await;
    // The first two transactions are refused with 451, the third accepted.
    let sink = Sink::start(|n| {
        if n < 2 {
            Answer::Transient
        } else {
            Answer::Accept
        }
    })
    .await;
    let policy = DeliveryPolicy {
        backoff: vec![Duration::from_millis(400), Duration::from_millis(800)],
        ..quick(3)
    };
    let outbox = outbox(&db, Some(sink.smtp()), policy);
    let id = outbox
        .enqueue(report(None, &["ada@example.co.uk"]))
        .await
        .unwrap();
    let ms = chrono::Duration::milliseconds;

    // Bounds rather than exact times: the attempt is recorded somewhere in between
    // (less a millisecond: PostgreSQL keeps only microseconds).
    let before = SystemClock.now();
    assert_eq!(outbox.deliver_due().await.unwrap(), 1);
    let after = SystemClock.now();
    let first = entry(&outbox, id).await;
    assert_eq!(first.status, MailStatus::Queued);
    assert_eq!(first.attempts, 1);
    let error = first.last_error.clone().unwrap();
    assert!(error.contains("451"), "{error}");
    let next = first.next_attempt_at.unwrap();
    assert!(
        next >= before + ms(399) && next <= after + ms(400),
        "the first retry waits its 400 ms"
    );
    if SystemClock.now() + ms(50) < next {
        assert_eq!(
            outbox.deliver_due().await.unwrap(),
            0,
            "not tried again before its time"
        );
    }

    tokio::time::sleep((next - SystemClock.now()).to_std().unwrap_or_default()).await;
    let before = SystemClock.now();
    assert_eq!(outbox.deliver_due().await.unwrap(), 1);
    let after = SystemClock.now();
    let second = entry(&outbox, id).await;
    assert_eq!((second.status, second.attempts), (MailStatus::Queued, 2));
    let next = second.next_attempt_at.unwrap();
    assert!(
        next >= before + ms(799) && next <= after + ms(800),
        "the second waits longer, 800 ms"
    );

    tokio::time::sleep((next - SystemClock.now()).to_std().unwrap_or_default()).await;
    assert_eq!(outbox.deliver_due().await.unwrap(), 1);
    let third = entry(&outbox, id).await;
    assert_eq!((third.status, third.attempts), (MailStatus::Sent, 3));
    assert!(third.last_error.is_none());
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn after_its_last_attempt_a_message_has_failed_and_stays_failed() {
    let (_guard, db) = database().await;
    let sink = Sink::start(|_| Answer::Transient).await;
    let outbox = outbox(&db, Some(sink.smtp()), quick(3));
    let id = outbox
        .enqueue(report(None, &["ada@example.co.uk"]))
        .await
        .unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let sender = tokio::spawn(outbox.clone().run(token.clone().cancelled_owned()));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let e = entry(&outbox, id).await;
        if e.status != MailStatus::Queued {
            break e;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {e:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(failed.status, MailStatus::Failed);
    assert_eq!((failed.attempts, failed.max_attempts), (3, 3));
    assert!(failed.last_error.as_deref().unwrap().contains("451"));
    assert!(failed.next_attempt_at.is_none());
    assert!(failed.body.is_some(), "kept, to be sent again");

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        entry(&outbox, id).await.attempts,
        3,
        "nothing tries it again"
    );
    assert_eq!(sink.transactions.load(Ordering::SeqCst), 3);
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), sender)
        .await
        .expect("the sender stops when told")
        .unwrap();
}

#[tokio::test]
async fn a_permanent_refusal_fails_at_once() {
    let (_guard, db) = database().await;
    let sink = Sink::start(|_| Answer::Permanent).await;
    let outbox = outbox(&db, Some(sink.smtp()), quick(5));
    let id = outbox
        .enqueue(report(None, &["ada@example.co.uk"]))
        .await
        .unwrap();
    assert_eq!(outbox.deliver_due().await.unwrap(), 1);
    let e = entry(&outbox, id).await;
    assert_eq!((e.status, e.attempts), (MailStatus::Failed, 1));
    assert!(e.last_error.as_deref().unwrap().contains("550"), "{e:?}");
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_its_error_recorded() {
    let (_guard, db) = database().await;
    // A port nothing listens on: bind one, then let it go.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let outbox = outbox(&db, Some(smtp_at(port)), quick(3));
    let id = outbox
        .enqueue(report(None, &["ada@example.co.uk"]))
        .await
        .unwrap();
    assert_eq!(outbox.deliver_due().await.unwrap(), 1);
    let e = entry(&outbox, id).await;
    assert_eq!((e.status, e.attempts), (MailStatus::Queued, 1));
    let error = e.last_error.unwrap();
    assert!(error.to_lowercase().contains("connection"), "{error}");
    assert!(e.next_attempt_at.unwrap() > SystemClock.now());
}

#[tokio::test]
async fn without_smtp_a_message_is_logged_and_kept_to_be_read() {
    let (_guard, db) = database().await;
    let outbox = outbox(&db, None, quick(3));
    assert!(!outbox.is_sending());
    let id = outbox
        .enqueue(report(None, &["ada@example.co.uk"]))
        .await
        .unwrap();
    let e = entry(&outbox, id).await;
    assert_eq!(e.status, MailStatus::Logged);
    assert_eq!(e.attempts, 0);
    assert_eq!(
        e.body.as_deref(),
        Some("Your monthly readiness report is attached.")
    );
    assert_eq!(outbox.deliver_due().await.unwrap(), 0);
    // The sender has nothing to do and says so by returning at once.
    tokio::time::timeout(
        Duration::from_secs(1),
        outbox.clone().run(std::future::pending()),
    )
    .await
    .expect("returns without an SMTP server");
    assert!(matches!(
        outbox.retry(&OutboxScope::operator(), id).await,
        Err(MailError::NotConfigured)
    ));
}

#[tokio::test]
async fn bad_messages_are_refused_before_anything_is_stored() {
    let (_guard, db) = database().await;
    let outbox = outbox(&db, None, quick(3));
    let err = outbox
        .enqueue(report(None, &["ada@example.co.uk", "bob@@example.com"]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bob@@example.com"), "{err}");
    let mut big = report(None, &["ada@example.co.uk"]);
    big.attachments = vec![Attachment {
        filename: "huge.pdf".into(),
        content_type: "application/pdf".into(),
        bytes: vec![0u8; 20 * 1024 * 1024 + 1].into(),
    }];
    assert!(matches!(
        outbox.enqueue(big).await,
        Err(MailError::TooLarge { .. })
    ));
    let page = outbox
        .list_outbox(&OutboxScope::operator(), &OutboxQuery::default())
        .await
        .unwrap();
    assert!(page.items.is_empty());
}

#[tokio::test]
async fn two_senders_never_send_one_message_twice() {
    let (_guard, db) = database().await;
    let sink = Sink::accepting().await;
    let a = outbox(&db, Some(sink.smtp()), quick(3));
    let b = outbox(&db, Some(sink.smtp()), quick(3));
    let mut ids = Vec::new();
    for i in 0..12 {
        let to = format!("member{i}@example.com");
        ids.push(a.enqueue(report(None, &[to.as_str()])).await.unwrap());
    }
    let (x, y) = tokio::join!(a.deliver_due(), b.deliver_due());
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(
        x + y,
        12,
        "each message attempted once between them ({x} + {y})"
    );
    let got = sink.wait_for(12).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sink.received().len(), 12);
    let mut rcpts: Vec<String> = got.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    rcpts.sort();
    rcpts.dedup();
    assert_eq!(rcpts.len(), 12, "no message twice");
    for id in ids {
        let e = entry(&a, id).await;
        assert_eq!((e.status, e.attempts), (MailStatus::Sent, 1));
    }
}

#[tokio::test]
async fn administrators_see_their_organisations_mail_only_newest_first() {
    let (_guard, db) = database().await;
    let outbox = outbox(&db, None, quick(3));
    let engines = organization(&db, "Engines").await;
    let looms = organization(&db, "Looms").await;
    let mut ours = Vec::new();
    for n in 0..3 {
        let mut m = report(Some(engines), &["ada@example.co.uk"]);
        m.subject = format!("Engines {n}");
        ours.push(outbox.enqueue(m).await.unwrap());
    }
    let theirs = outbox
        .enqueue(report(Some(looms), &["jacquard@example.com"]))
        .await
        .unwrap();
    let reset = outbox
        .enqueue(report(None, &["ada@example.co.uk"]))
        .await
        .unwrap();

    let admin = admin_of(engines);
    let permit = admin.require(Permission::OrganizationManage).unwrap();
    let scope = OutboxScope::organization(&permit);
    let first = outbox
        .list_outbox(
            &scope,
            &OutboxQuery {
                limit: 2,
                ..OutboxQuery::default()
            },
        )
        .await
        .unwrap();
    let subjects: Vec<&str> = first.items.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(subjects, ["Engines 2", "Engines 1"]);
    let second = outbox
        .list_outbox(
            &scope,
            &OutboxQuery {
                limit: 2,
                cursor: first.next_cursor.clone(),
                ..OutboxQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0].id, ours[0]);
    assert!(second.next_cursor.is_none());

    for id in [theirs, reset] {
        assert!(matches!(
            outbox.get(&scope, id).await,
            Err(MailError::NotFound)
        ));
        assert!(matches!(
            outbox.retry(&scope, id).await,
            Err(MailError::NotFound)
        ));
    }
    let everything = outbox
        .list_outbox(&OutboxScope::operator(), &OutboxQuery::default())
        .await
        .unwrap();
    assert_eq!(everything.items.len(), 5, "the operator sees all");
    assert_eq!(everything.items[0].id, reset);

    let logged = outbox
        .list_outbox(
            &OutboxScope::operator(),
            &OutboxQuery {
                status: Some(MailStatus::Sent),
                ..OutboxQuery::default()
            },
        )
        .await
        .unwrap();
    assert!(logged.items.is_empty(), "filtered by status");
    assert!(matches!(
        outbox
            .list_outbox(
                &scope,
                &OutboxQuery {
                    cursor: Some("not-a-cursor".into()),
                    ..OutboxQuery::default()
                },
            )
            .await,
        Err(MailError::Invalid {
            field: "cursor",
            ..
        })
    ));
}

#[tokio::test]
async fn a_failed_message_can_be_sent_again() {
    let (_guard, db) = database().await;
    // Refused for good once, then accepted.
    let sink = Sink::start(|n| {
        if n == 0 {
            Answer::Permanent
        } else {
            Answer::Accept
        }
    })
    .await;
    let outbox = outbox(&db, Some(sink.smtp()), quick(3));
    let org = organization(&db, "Engines").await;
    let id = outbox
        .enqueue(report(Some(org), &["ada@example.co.uk"]))
        .await
        .unwrap();
    outbox.deliver_due().await.unwrap();
    assert_eq!(entry(&outbox, id).await.status, MailStatus::Failed);

    let admin = admin_of(org);
    let scope = OutboxScope::organization(&admin.require(Permission::OrganizationManage).unwrap());
    let again = outbox.retry(&scope, id).await.unwrap();
    assert_eq!((again.status, again.attempts), (MailStatus::Queued, 0));
    assert!(again.last_error.is_some(), "the last error stays visible");
    outbox.deliver_due().await.unwrap();
    let sent = entry(&outbox, id).await;
    assert_eq!((sent.status, sent.attempts), (MailStatus::Sent, 1));
    assert!(matches!(
        outbox.retry(&scope, id).await,
        Err(MailError::NotRetryable(MailStatus::Sent))
    ));
}

#[tokio::test]
async fn without_smtp_a_reset_link_waits_in_the_outbox_as_logged() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "ada@example.co.uk", "password": "otter lantern quarry velvet", "full_name": "Ada", "organization_name": "Engines"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .client
        .post(app.url("/api/v1/auth/forgot-password"))
        .json(&json!({"email": "ada@example.co.uk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let outbox = &app.components.outbox;
    let mut items = Vec::new();
    for _ in 0..250 {
        items = outbox
            .list_outbox(&OutboxScope::operator(), &OutboxQuery::default())
            .await
            .unwrap()
            .items;
        if !items.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(items.len(), 1, "{items:?}");
    let mail = &items[0];
    assert_eq!(mail.status, MailStatus::Logged);
    assert_eq!(mail.recipients, ["ada@example.co.uk"]);
    assert_eq!(
        mail.organization_id, None,
        "account mail belongs to no organisation"
    );
    assert!(
        mail.body
            .as_deref()
            .unwrap()
            .contains("reset-password?token=")
    );
}

#[tokio::test]
async fn the_server_delivers_through_smtp_host_and_port() {
    let sink = Sink::accepting().await;
    let port = sink.port;
    let app = TestApp::spawn_with(move |raw| {
        raw.smtp_host = Some(text("127.0.0.1"));
        raw.smtp_port = Some(port);
        raw.smtp_tls = Some(text("none"));
        raw.smtp_from = Some(text("Compliance <compliance@ruleiq.example>"));
    })
    .await;
    app.client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "ada@example.co.uk", "password": "otter lantern quarry velvet", "full_name": "Ada", "organization_name": "Engines"}))
        .send()
        .await
        .unwrap();
    app.client
        .post(app.url("/api/v1/auth/forgot-password"))
        .json(&json!({"email": "ada@example.co.uk"}))
        .send()
        .await
        .unwrap();
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, "compliance@ruleiq.example");
    assert_eq!(got[0].rcpt_to, ["ada@example.co.uk"]);
    assert_eq!(
        got[0].header("Subject").unwrap(),
        "Reset your ruleIQ password"
    );
    let items = app
        .components
        .outbox
        .list_outbox(&OutboxScope::operator(), &OutboxQuery::default())
        .await
        .unwrap()
        .items;
    // The sender records the outcome just after the server's reply.
    let mut status = items[0].status;
    for _ in 0..100 {
        status = app
            .components
            .outbox
            .get(&OutboxScope::operator(), items[0].id)
            .await
            .unwrap()
            .status;
        if status == MailStatus::Sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, MailStatus::Sent);
    app.stop().await;
}

/// A scheduled report reaches its schedule's recipients with the file attached, and the
/// organisation's administrators (only they, and only theirs) read it in the outbox.
#[tokio::test]
async fn a_scheduled_report_is_mailed_with_its_file_and_listed_for_administrators() {
    use crate::{
        assessments::send,
        members::{join, owner},
    };
    use reqwest::Method;
    let sink = Sink::accepting().await;
    let port = sink.port;
    let app = TestApp::spawn_with(move |raw| {
        raw.smtp_host = Some(text("127.0.0.1"));
        raw.smtp_port = Some(port);
        raw.smtp_tls = Some(text("none"));
        raw.smtp_from = Some(text("Compliance <compliance@ruleiq.example>"));
    })
    .await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let eve = owner(&app, "eve@example.co.uk", "Eve Ltd").await;
    let (status, schedule) = send(
        &app,
        Method::POST,
        "/report-schedules",
        &ann.token,
        Some(json!({
            "report_type": "executive_summary", "format": "pdf", "cron": "0 8 * * 1",
            "timezone": "Europe/London", "recipients": ["board@ann.example", "cfo@ann.example"]
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{schedule}");
    // Make it due and tick, as the server does each minute.
    use ruleiq_db::{
        entities::report_schedule,
        sea_orm::{ColumnTrait, QueryFilter},
    };
    report_schedule::Entity::update_many()
        .set(report_schedule::ActiveModel {
            next_run_at: Set(chrono::DateTime::parse_from_rfc3339("2020-01-06T08:00:00Z")
                .unwrap()
                .to_utc()),
            ..Default::default()
        })
        .filter(
            report_schedule::Column::Id
                .eq(Uuid::parse_str(schedule["id"].as_str().unwrap()).unwrap()),
        )
        .exec(&app.components.db)
        .await
        .unwrap();
    app.components.reports.tick().await.unwrap();

    // The message: both recipients, the subject, the PDF attached and whole.
    let got = loop_until(|| {
        sink.received()
            .into_iter()
            .find(|r| r.rcpt_to.iter().any(|t| t == "board@ann.example"))
    })
    .await;
    assert_eq!(got.mail_from, "compliance@ruleiq.example");
    let mut to = got.rcpt_to.clone();
    to.sort();
    assert_eq!(to, ["board@ann.example", "cfo@ann.example"]);
    assert_eq!(
        got.header("Subject").unwrap(),
        "ruleIQ: your scheduled Executive summary is ready"
    );
    let (_, page) = send(&app, Method::GET, "/reports", &ann.token, None).await;
    let report = &page["items"][0];
    assert_eq!(report["status"], "ready", "{page}");
    let file_name = report["file_name"].as_str().unwrap();
    assert!(
        got.data
            .contains(&format!("/reports/{}", report["id"].as_str().unwrap())),
        "the message links to the report's page"
    );
    let (headers, attached) = attachment(&got.data, file_name);
    assert!(
        headers.contains("Content-Type: application/pdf"),
        "{headers}"
    );
    assert!(attached.starts_with(b"%PDF-"), "the attachment is the PDF");
    assert_eq!(
        attached.len() as u64,
        report["size_bytes"].as_u64().unwrap()
    );

    // The outbox over HTTP: Ann's administrators see the message and its status.
    let mut entry = json!(null);
    for _ in 0..200 {
        let (status, outbox) = send(&app, Method::GET, "/mail/outbox", &ann.token, None).await;
        assert_eq!(status, StatusCode::OK, "{outbox}");
        let items = outbox["items"].as_array().unwrap();
        entry = items
            .iter()
            .find(|m| m["subject"] == "ruleIQ: your scheduled Executive summary is ready")
            .cloned()
            .unwrap_or_else(|| panic!("{outbox}"));
        if entry["status"] == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(entry["status"], "sent", "{entry}");
    assert_eq!(entry["attachments"][0]["filename"], file_name);
    let id = entry["id"].as_str().unwrap().to_owned();
    // Ann set the schedule up: she is told in the app (and by e-mail, her default).
    let (_, notices) = send(&app, Method::GET, "/notifications", &ann.token, None).await;
    let notice = notices["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "report_ready")
        .unwrap_or_else(|| panic!("{notices}"));
    assert_eq!(
        notice["link"],
        format!("/reports/{}", report["id"].as_str().unwrap())
    );
    let told = loop_until(|| {
        sink.received()
            .into_iter()
            .find(|r| r.rcpt_to == ["ann@example.co.uk"])
    })
    .await;
    assert!(
        told.header("Subject").unwrap().contains("Report ready"),
        "{}",
        told.data
    );
    let (status, one) = send(
        &app,
        Method::GET,
        &format!("/mail/outbox/{id}"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["subject"], entry["subject"]);

    // Bad input: another organisation, a member without organisation:manage, a sent
    // message retried, an unknown status, a malformed id, no token.
    let (_, theirs) = send(&app, Method::GET, "/mail/outbox", &eve.token, None).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0, "{theirs}");
    for (method, path) in [
        (Method::GET, format!("/mail/outbox/{id}")),
        (Method::POST, format!("/mail/outbox/{id}/retry")),
        (Method::GET, "/mail/outbox/not-a-uuid".to_owned()),
    ] {
        let (status, problem) = send(&app, method, &path, &eve.token, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} → {problem}");
    }
    let viewer = join(&app, &ann, "val@example.co.uk", "viewer").await;
    let (status, _) = send(&app, Method::GET, "/mail/outbox", &viewer.token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, problem) = send(
        &app,
        Method::POST,
        &format!("/mail/outbox/{id}/retry"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, problem) = send(
        &app,
        Method::GET,
        "/mail/outbox?status=lost",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "status");
    let res = app
        .client
        .get(app.url("/api/v1/mail/outbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// Polls `found` for up to ten seconds.
async fn loop_until<T>(found: impl Fn() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(t) = found() {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not seen within ten seconds");
}

/// The headers and decoded bytes of the MIME part attaching `filename`.
fn attachment(data: &str, filename: &str) -> (String, Vec<u8>) {
    let part = data
        .split("\r\n--")
        // lettre writes a long name as an RFC 2231 parameter, `filename*0="…"`.
        .find(|p| {
            p.contains(&format!("filename=\"{filename}\""))
                || p.contains(&format!("filename*0=\"{filename}\""))
        })
        .unwrap_or_else(|| {
            panic!(
                "no MIME part attaches {filename}:\n{}",
                &data[..data.len().min(3000)]
            )
        });
    let (headers, body) = part.split_once("\r\n\r\n").unwrap();
    let encoded: String = body.split_whitespace().collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("a base64 body");
    (headers.to_owned(), decoded)
}

/// The operator's commands: `ruleiq mail test` sends through the configured server and
/// says what it answered; `ruleiq mail list` shows the message; mistakes exit non-zero
/// with what to do.
#[tokio::test]
async fn the_mail_commands_test_smtp_and_list_the_outbox() {
    let sink = Sink::accepting().await;
    let app = TestApp::spawn().await;
    // Run with tokio's process API: the sink answering SMTP runs on this runtime.
    let ruleiq = async |smtp: bool, args: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ruleiq"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &app.db.url)
            .env("DATA_DIR", app.db.dir.path().join("data"))
            .env("LOG_LEVEL", "warn")
            .args(args);
        if smtp {
            cmd.env("SMTP_HOST", "127.0.0.1")
                .env("SMTP_PORT", sink.port.to_string())
                .env("SMTP_TLS", "none");
        }
        let out = cmd.output().await.unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = ruleiq(true, &["mail", "test", "--to", "ops@example.co.uk"]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("sent: the SMTP server accepted the test message"),
        "{stdout}"
    );
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].rcpt_to, ["ops@example.co.uk"]);
    assert_eq!(got[0].header("Subject").unwrap(), "ruleIQ: test message");

    let (code, stdout, _) = ruleiq(false, &["mail", "list"]).await;
    assert_eq!(code, Some(0));
    let line = stdout
        .lines()
        .find(|l| l.contains("ruleIQ: test message"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains(" sent ") && line.contains("ops@example.co.uk"),
        "{line}"
    );
    let id = line.split_whitespace().next().unwrap().to_owned();
    let (_, failed_only, _) = ruleiq(false, &["mail", "list", "--status", "failed"]).await;
    assert_eq!(failed_only.trim(), "no messages");

    // A sent message cannot be sent again; nor can anything without a server.
    let (code, _, stderr) = ruleiq(true, &["mail", "retry", &id]).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("only failed or logged messages"),
        "{stderr}"
    );
    let (code, _, stderr) = ruleiq(false, &["mail", "test", "--to", "ops@example.co.uk"]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no SMTP server is configured"), "{stderr}");
    let (code, _, stderr) = ruleiq(false, &["mail", "retry", "nope"]).await;
    assert_eq!(code, Some(2));
    assert!(stderr.contains("see `ruleiq mail list`"), "{stderr}");
    let (code, _, stderr) = ruleiq(true, &["mail", "test", "--to", "not an address"]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("ruleiq: error: mail:"), "{stderr}");
    app.stop().await;
}
