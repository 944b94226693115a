//! Building and running the application.

use ruleiq_config::ExposeSecret;
use ruleiq_config::{Settings, StorageSettings};
use ruleiq_core::{Clock, SystemClock};
use ruleiq_db::{ConnectError, DatabaseConnection};
use ruleiq_jobs::{ApalisQueue, queue::QueueSetupError};
use ruleiq_migration::{Migrator, MigratorTrait};
use ruleiq_services::{
    audit::Audit,
    evidence::{Evidence, jobs::Upkeep, store::BlobStore},
    frameworks::Catalog,
    identity::Identity,
    jobs::{Jobs, RetryPolicy},
    mail::{Mailer, Outbox, SmtpMailer},
    monitoring::{Monitor, queries::QueryLog},
    notifications::Notifications,
    profiles::Profiles,
    ratelimit::{FallbackLimiter, MemoryLimiter, RateLimiter},
    search::{DbSearchIndex, SearchIndex},
};
use ruleiq_web::{AppState, metrics::Metrics, state::AppParts};
use std::{net::SocketAddr, sync::Arc, time::Instant};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// Why the application could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] ConnectError),
    #[error("migrations failed: {0}")]
    Migrate(ruleiq_db::DbErr),
    #[error(
        "the database schema is behind this build ({0} migrations pending) and RUN_MIGRATIONS=false; run `ruleiq migrate up`"
    )]
    MigrationsPending(usize),
    #[error("seeding reference data failed: {0}")]
    Seed(ruleiq_services::seed::SeedError),
    #[error(transparent)]
    Queue(#[from] QueueSetupError),
    #[error("cannot listen on {addr}: {source}; set PORT or BIND_ADDRESS to a free address")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot connect to Redis at REDIS_URL: {0}")]
    Redis(String),
    #[error("cannot set up e-mail: {0}")]
    Mail(String),
    #[error("{0} is not set")]
    MissingSecret(&'static str),
    #[error("cannot open file storage: {0}")]
    Storage(String),
    #[error("cannot set up the AI providers: {0}")]
    Ai(String),
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// The connected parts every command shares.
#[derive(Debug, Clone)]
pub struct Components {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub queue: ApalisQueue,
    pub jobs: Jobs,
    pub clock: Arc<dyn Clock>,
    pub catalog: Catalog,
    pub search: Arc<dyn SearchIndex>,
    pub audit: Audit,
    pub evidence: Evidence,
    pub upkeep: Upkeep,
    pub ai: ruleiq_services::ai::AiService,
    pub policies: ruleiq_services::policies::Policies,
    pub chat: ruleiq_services::chat::Chat,
    pub reports: ruleiq_services::reports::Reports,
    /// Outgoing e-mail: every message is stored here, then sent by [`Outbox::run`].
    pub outbox: Outbox,
    /// Notices in the app and by e-mail, and the sweeps that produce them.
    pub notifications: Notifications,
}

impl Components {
    /// Connects to the database and the job queue. Does not migrate.
    ///
    /// # Errors
    /// When the database or queue cannot be reached.
    pub async fn connect(settings: Settings) -> Result<Self, StartupError> {
        let db = ruleiq_db::connect(&settings.database).await?;
        Self::with_db(settings, db).await
    }

    async fn with_db(settings: Settings, db: DatabaseConnection) -> Result<Self, StartupError> {
        let redis = settings
            .redis_url
            .as_ref()
            .map(|u| u.expose_secret().to_owned());
        let queue =
            ApalisQueue::connect(&db, redis.as_deref(), &settings.server.job_queue_name).await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store = blob_store(&settings)?;
        let catalog = Catalog::new(db.clone());
        let search: Arc<dyn SearchIndex> =
            Arc::new(DbSearchIndex::new(db.clone(), catalog.revisions()));
        let audit = Audit::new(db.clone(), clock.clone());
        let upkeep = Upkeep::new(
            db.clone(),
            store.clone(),
            search.clone(),
            audit.clone(),
            clock.clone(),
        );
        let ai =
            ruleiq_services::ai::AiService::from_settings(db.clone(), &settings.ai, clock.clone())
                .map_err(StartupError::Ai)?;
        let writer = ruleiq_services::policies::PolicyWriter::new(
            db.clone(),
            ai.clone(),
            search.clone(),
            clock.clone(),
        );
        let dashboard = ruleiq_services::dashboard::Dashboard::new(db.clone(), clock.clone());
        // Before the services that notify (policies, evidence, the jobs that sweep).
        let outbox = mail_outbox(&settings, db.clone(), clock.clone())?;
        let notifications = Notifications::new(
            db.clone(),
            outbox.clone(),
            clock.clone(),
            &settings.mail.public_url,
        );
        let report_writer = ruleiq_services::reports::ReportWriter::new(
            db.clone(),
            store.clone(),
            dashboard.clone(),
            clock.clone(),
            settings.uploads.report_retention_days,
        )
        .with_delivery(
            outbox.clone(),
            &settings.mail.public_url,
            notifications.clone(),
        );
        let jobs = Jobs::new(
            db.clone(),
            Arc::new(queue.clone()),
            clock.clone(),
            ruleiq_jobs::kinds::handlers(
                dashboard,
                upkeep.clone(),
                writer.clone(),
                report_writer.clone(),
                notifications.clone(),
            ),
            RetryPolicy::default(),
        );
        let policies = ruleiq_services::policies::Policies::new(
            writer,
            jobs.clone(),
            audit.clone(),
            notifications.clone(),
        );
        let chat =
            ruleiq_services::chat::Chat::new(db.clone(), ai.clone(), search.clone(), clock.clone());
        let reports =
            ruleiq_services::reports::Reports::new(report_writer, jobs.clone(), audit.clone());
        let evidence = Evidence::new(
            db.clone(),
            store,
            jobs.clone(),
            audit.clone(),
            search.clone(),
            clock.clone(),
            settings.uploads.max_upload_size,
            settings.uploads.allowed_extensions.clone(),
            notifications.clone(),
        );
        Ok(Self {
            settings: Arc::new(settings),
            db,
            queue,
            jobs,
            clock,
            catalog,
            search,
            audit,
            evidence,
            upkeep,
            ai,
            policies,
            chat,
            reports,
            outbox,
            notifications,
        })
    }

    /// Runs a job worker until `shutdown` is cancelled.
    #[must_use]
    pub fn spawn_worker(&self, name: String, shutdown: CancellationToken) -> JoinHandle<()> {
        let queue = self.queue.clone();
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            if let Err(e) =
                ruleiq_jobs::worker::run(&name, queue, jobs, shutdown.cancelled_owned()).await
            {
                tracing::error!(error = %e, worker = %name, "job worker stopped with an error");
            }
        })
    }
}

/// Largest read buffer of one HTTP/1 connection. hyper's default (about 400 KB) is
/// what one connection can hold of an upload in flight; 64 KB keeps twenty concurrent
/// uploads within the memory target and costs nothing measurable in throughput.
const READ_BUFFER: usize = 64 * 1024;

/// Serves `router` on `listener` until `shutdown`, then lets in-flight requests finish
/// for up to `grace`. hyper's builder is used directly (rather than `axum::serve`) for
/// its read-buffer limit; each request carries its peer address as axum's
/// `ConnectInfo`.
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
    grace: std::time::Duration,
) -> Result<(), StartupError> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tower::ServiceExt;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(READ_BUFFER);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = watched.await;
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => Ok(()),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(grace_seconds = grace.as_secs(), "in-flight requests did not finish in time; closing them");
            Ok(())
        }
    }
}

/// The outbox, delivering through the configured SMTP server, or keeping messages as
/// `logged` (with their content in the log outside production) when there is none.
///
/// # Errors
/// When the `From` address or the server's TLS set-up is unusable.
pub fn mail_outbox(
    settings: &Settings,
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
) -> Result<Outbox, StartupError> {
    let mail = &settings.mail;
    let smtp = match &mail.smtp {
        Some(smtp) => {
            if smtp.tls == ruleiq_config::SmtpTls::None && !smtp.is_loopback() {
                tracing::warn!(host = %smtp.host, "SMTP_TLS=none: mail to this server travels unencrypted");
            }
            Some(SmtpMailer::new(smtp, &mail.from).map_err(StartupError::Mail)?)
        }
        None => None,
    };
    Ok(Outbox::new(
        db,
        clock,
        smtp,
        !settings.environment.is_production(),
    ))
}

/// The file store the settings name: a directory under `DATA_DIR`, or an S3 bucket.
///
/// # Errors
/// When the directory cannot be created or the S3 settings are incomplete.
pub fn blob_store(settings: &Settings) -> Result<BlobStore, StartupError> {
    match &settings.uploads.storage {
        StorageSettings::Local { dir } => {
            BlobStore::local(dir).map_err(|e| StartupError::Storage(e.to_string()))
        }
        StorageSettings::S3 {
            bucket,
            region,
            endpoint,
        } => BlobStore::s3(bucket, region, endpoint.as_deref())
            .map_err(|e| StartupError::Storage(e.to_string())),
    }
}

/// Applies pending migrations and seeds reference data, or, with migrations turned off,
/// refuses to run on an out-of-date schema.
///
/// # Errors
/// When a migration or the seed fails, or migrations are pending and turned off.
pub async fn prepare_database(
    db: &DatabaseConnection,
    settings: &Settings,
    clock: &dyn Clock,
) -> Result<(), StartupError> {
    if settings.server.run_migrations {
        let pending = Migrator::get_pending_migrations(db)
            .await
            .map_err(StartupError::Migrate)?;
        if !pending.is_empty() {
            tracing::info!(count = pending.len(), "applying migrations");
            Migrator::up(db, None)
                .await
                .map_err(StartupError::Migrate)?;
        }
        ruleiq_services::seed::run(db, clock)
            .await
            .map_err(StartupError::Seed)?;
    } else {
        let pending = ruleiq_db::migrations_pending(db)
            .await
            .map_err(StartupError::Migrate)?;
        if !pending.is_empty() {
            return Err(StartupError::MigrationsPending(pending.len()));
        }
    }
    Ok(())
}

/// A built server, bound and ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    components: Components,
    shutdown: CancellationToken,
    started_at: Instant,
}

impl Application {
    /// Connects, migrates, seeds and binds; nothing is served until
    /// [`Self::run_until_stopped`].
    ///
    /// # Errors
    /// [`StartupError`] naming what failed.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let started_at = Instant::now();
        let mut db = ruleiq_db::connect(&settings.database).await?;
        prepare_database(&db, &settings, &SystemClock).await?;
        // Installed before the connection is cloned into any service (each clone
        // carries the callback it was made with), and after migrating and seeding, so
        // that start-up work does not crowd the slow-query list.
        let queries = Arc::new(QueryLog::default());
        if settings.monitoring.database {
            let log = queries.clone();
            db.set_metric_callback(move |info| {
                log.observe(info.elapsed, &info.statement.sql, info.failed);
            });
        }
        let components = Components::with_db(settings, db).await?;
        let settings = components.settings.clone();
        let addr = settings.listen_addr();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let limiter: Arc<dyn RateLimiter> = match &settings.redis_url {
            Some(url) => Arc::new(
                FallbackLimiter::connect(
                    url.expose_secret(),
                    &format!("{}:ratelimit:", settings.server.job_queue_name),
                )
                .await
                .map_err(StartupError::Redis)?,
            ),
            None => Arc::new(MemoryLimiter::default()),
        };
        let monitor = Monitor::new(
            components.db.clone(),
            settings.database.url.backend().as_str(),
            settings.data_dir.clone(),
            components.jobs.clone(),
        )
        .with_rate_limiter(limiter.clone())
        .with_files(components.evidence.store().clone());
        let identity = components.identity()?;
        let shutdown = CancellationToken::new();
        let audit = identity.audit().clone();
        let catalog = components.catalog.clone();
        listen_for_changes(
            &settings,
            identity.session_cache(),
            catalog.revisions(),
            shutdown.clone(),
        );
        let profiles = Profiles::new(
            components.db.clone(),
            audit.clone(),
            components.clock.clone(),
        );
        let search = components.search.clone();
        let state = AppState::new(AppParts {
            settings: settings.clone(),
            db: components.db.clone(),
            db_gate: ruleiq_web::db_gate::DbGate::new(components.db.clone()),
            shedder: ruleiq_web::shed::Shedder::new(settings.server.max_concurrent_requests),
            jobs: components.jobs.clone(),
            monitor,
            identity,
            audit: audit.clone(),
            catalog,
            responses: ruleiq_web::cache::ResponseCache::default(),
            profiles,
            assessments: ruleiq_services::assessments::Assessments::new(
                components.db.clone(),
                components.clock.clone(),
            ),
            plans: ruleiq_services::plans::Plans::new(
                components.db.clone(),
                audit.clone(),
                components.clock.clone(),
            ),
            dashboard: ruleiq_services::dashboard::Dashboard::new(
                components.db.clone(),
                components.clock.clone(),
            ),
            evidence: components.evidence.clone(),
            policies: components.policies.clone(),
            chat: components.chat.clone(),
            reports: components.reports.clone(),
            outbox: components.outbox.clone(),
            notifications: components.notifications.clone(),
            ai: components.ai.clone(),
            search,
            limiter,
            metrics: Metrics::new().with_performance(settings.monitoring.performance),
            queries,
            started_at,
        });
        Ok(Self {
            listener,
            router: ruleiq_web::router(state),
            components,
            shutdown,
            started_at,
        })
    }

    /// The bound address (useful with port 0).
    ///
    /// # Panics
    /// Never in practice: a bound listener always has a local address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        #[allow(clippy::expect_used)]
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Cancelling this token stops the server gracefully.
    #[must_use]
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The connected components, for tests and commands that share them.
    #[must_use]
    pub fn components(&self) -> &Components {
        &self.components
    }

    /// Serves until the shutdown token is cancelled, then stops accepting, lets
    /// in-flight requests finish for up to `SHUTDOWN_TIMEOUT_SECONDS`, and stops the
    /// embedded worker after its current job.
    ///
    /// # Errors
    /// When the server fails while serving.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let settings = self.components.settings.clone();
        let worker = settings.server.embedded_worker.then(|| {
            self.components.spawn_worker(
                format!("serve-{}", std::process::id()),
                self.shutdown.clone(),
            )
        });
        tracing::info!(
            addr = %self.local_addr(),
            database = settings.database.url.backend().as_str(),
            queue = self.components.queue_backend(),
            environment = %settings.environment,
            worker = worker.is_some(),
            startup_ms = self.started_at.elapsed().as_millis() as u64,
            "ruleIQ is ready"
        );
        schedule_daily_snapshot(&self.components, self.shutdown.clone());
        schedule_reports(&self.components, self.shutdown.clone());
        let mail_sender = self.components.spawn_mail_sender(self.shutdown.clone());
        let shutdown = self.shutdown.clone();
        let grace = settings.server.shutdown_timeout;
        let result = serve(self.listener, self.router, shutdown, grace).await;
        if let Some(worker) = worker {
            let _ = tokio::time::timeout(grace, worker).await;
        }
        if let Some(sender) = mail_sender {
            // A send cut short here is retried when its hold ends (see the outbox).
            let _ = tokio::time::timeout(grace, sender).await;
        }
        self.components.db.clone().close().await.ok();
        tracing::info!("ruleIQ stopped");
        result
    }
}

impl Components {
    /// The identity service (with its audit trail), signing with `JWT_SECRET_KEY`.
    ///
    /// # Errors
    /// When no JWT secret is configured.
    pub fn identity(&self) -> Result<Identity, StartupError> {
        let secret = self
            .settings
            .auth
            .jwt_secret_key
            .as_ref()
            .ok_or(StartupError::MissingSecret("JWT_SECRET_KEY"))?;
        let audit = Audit::new(self.db.clone(), self.clock.clone());
        // Identity's resets and invitations go through the outbox like all mail.
        let mailer: Arc<dyn Mailer> = Arc::new(self.outbox.clone());
        Ok(Identity::new(
            self.db.clone(),
            self.clock.clone(),
            secret.expose_secret().as_bytes(),
            self.settings.auth.access_token_expire_minutes,
            audit,
        )
        .with_mailer(mailer, &self.settings.mail.public_url)
        .with_session_cache(self.settings.auth.session_cache))
    }

    /// Starts the e-mail sender ([`Outbox::run`]) until `shutdown`; `None` when no
    /// SMTP server is configured, as there is nothing to send. Safe on every instance
    /// at once: each message is claimed by one sender.
    #[must_use]
    pub fn spawn_mail_sender(&self, shutdown: CancellationToken) -> Option<JoinHandle<()>> {
        self.outbox.is_sending().then(|| {
            let outbox = self.outbox.clone();
            tokio::spawn(outbox.run(shutdown.cancelled_owned()))
        })
    }

    /// The job queue's backend name.
    #[must_use]
    pub fn queue_backend(&self) -> &'static str {
        self.jobs.queue_backend()
    }
}

/// Starts the reports whose schedules are due, once a minute (just after each minute
/// starts, when cron expressions fire). Every instance ticks; each schedule's run is
/// claimed by one of them (see `ruleiq_services::reports::schedules`).
fn schedule_reports(components: &Components, shutdown: CancellationToken) {
    let reports = components.reports.clone();
    let clock = components.clock.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = reports.tick().await {
                tracing::warn!(error = %e, "could not check report schedules");
            }
            let now = clock.now();
            let into_minute = u64::from(chrono::Timelike::second(&now));
            let wait = std::time::Duration::from_secs(61 - into_minute.min(59));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    });
}

/// Queues the readiness snapshot when today's has not been taken (at start-up, so a
/// server that was down at midnight catches up) and again just after each UTC
/// midnight, with the evidence expiry and sweep jobs. Two instances may both queue
/// them; every one of the jobs is idempotent.
fn schedule_daily_snapshot(components: &Components, shutdown: CancellationToken) {
    let dashboard =
        ruleiq_services::dashboard::Dashboard::new(components.db.clone(), components.clock.clone());
    let jobs = components.jobs.clone();
    let clock = components.clock.clone();
    tokio::spawn(async move {
        loop {
            match dashboard.snapshot_due().await {
                Ok(false) => {}
                Ok(true) => {
                    if let Err(e) = jobs
                        .enqueue(
                            ruleiq_jobs::kinds::READINESS_SNAPSHOT,
                            serde_json::json!({}),
                            None,
                            ruleiq_services::jobs::DEFAULT_MAX_ATTEMPTS,
                        )
                        .await
                    {
                        tracing::warn!(error = %e, "could not queue the readiness snapshot");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not check today's readiness snapshot"),
            }
            // Evidence and report upkeep and the notification sweep: every job is
            // idempotent, so two instances queueing them, or a restart queueing them
            // again, does no harm. The digest goes on Mondays (UTC); its dedupe key is
            // the ISO week, so a restart on a Monday sends nothing twice.
            let monday = chrono::Datelike::weekday(&clock.now()) == chrono::Weekday::Mon;
            let digest = monday.then_some(ruleiq_services::notifications::DIGEST_JOB);
            for kind in [
                ruleiq_services::evidence::EXPIRE_JOB,
                ruleiq_services::reports::EXPIRE_JOB,
                ruleiq_services::evidence::SWEEP_JOB,
                ruleiq_services::notifications::SWEEP_JOB,
            ]
            .into_iter()
            .chain(digest)
            {
                if let Err(e) = jobs
                    .enqueue(
                        kind,
                        serde_json::json!({}),
                        None,
                        ruleiq_services::jobs::DEFAULT_MAX_ATTEMPTS,
                    )
                    .await
                {
                    tracing::warn!(error = %e, kind, "could not queue evidence upkeep");
                }
            }
            let now = clock.now();
            let next = (now.date_naive() + chrono::Days::new(1))
                .and_hms_opt(0, 1, 0)
                .map_or(now, |t| t.and_utc());
            let wait = (next - now)
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(3600));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    });
}

/// Clears the session cache and the catalogue's remembered revisions whenever another
/// instance announces a change (PostgreSQL `LISTEN`). While the listener is not
/// connected both caches are off, so a change can never go unheard; SQLite serves one
/// instance and needs no listener.
fn listen_for_changes(
    settings: &Settings,
    sessions: Arc<ruleiq_services::identity::sessions::SessionCache>,
    revisions: Arc<ruleiq_services::frameworks::revisions::RevisionCache>,
    shutdown: CancellationToken,
) {
    use ruleiq_db::repositories::frameworks::CATALOG_CHANNEL;
    use ruleiq_services::identity::sessions::CHANNEL as IDENTITY_CHANNEL;
    if settings.database.url.backend() != ruleiq_config::DatabaseBackend::Postgres {
        return;
    }
    let off = {
        let (sessions, revisions) = (sessions.clone(), revisions.clone());
        move || {
            sessions.disable();
            revisions.disable();
        }
    };
    off();
    // Its own connection, outside the pool, so listening never takes one from requests.
    let url = settings.database.url.expose().to_owned();
    tokio::spawn(async move {
        loop {
            let connected = match sqlx::postgres::PgListener::connect(&url).await {
                Ok(mut l) => match l.listen_all([IDENTITY_CHANNEL, CATALOG_CHANNEL]).await {
                    Ok(()) => Some(l),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot LISTEN for changes; caches off");
                        None
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "change listener cannot connect; caches off");
                    None
                }
            };
            let Some(mut listener) = connected else {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                }
            };
            sessions.enable();
            revisions.enable();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    message = listener.try_recv() => match message {
                        Ok(Some(n)) if n.channel() == CATALOG_CHANNEL => revisions.clear(),
                        Ok(Some(_)) => sessions.clear(),
                        // Disconnected (notifications may have been missed), or failed.
                        Ok(None) | Err(_) => {
                            off();
                            break;
                        }
                    },
                }
            }
        }
    });
}
