//! The command line: `ruleiq [serve|worker|migrate|seed|secrets|verify|openapi|jobs|backup|restore|…]`.
//!
//! Exit codes: 0 success; 1 the command ran and failed (database unreachable, a check
//! failed); 2 the command could not start because the command line or a setting is
//! invalid. Errors are one line on standard error saying what to do next.

use clap::{Args, Parser, Subcommand};
use ruleiq_config::{Overrides, Settings, secrets};
use ruleiq_core::{JobId, SystemClock};
use ruleiq_db::repositories::jobs as jobs_repo;
use ruleiq_migration::{Migrator, MigratorTrait};
use ruleiq_services::backup::{Backups, Existing};
use std::{
    io::Write,
    path::PathBuf,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;

use crate::{
    startup::{Application, Components, StartupError, prepare_database},
    telemetry,
};

/// ruleIQ: compliance automation for UK small and medium businesses.
///
/// With no command, `ruleiq` serves (the same as `ruleiq serve`). Settings come from
/// the environment variables of the deployment roadmap (DATABASE_URL, REDIS_URL,
/// JWT_SECRET_KEY, …), optionally from ruleiq.toml, and from the flags below.
#[derive(Debug, Parser)]
#[command(name = "ruleiq", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// Settings file (default: ruleiq.toml in the working directory, or RULEIQ_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database, generated secrets and files (DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<String>,
    /// Database to use (DATABASE_URL): sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API, the web UI and (unless EMBEDDED_WORKER=false) a job worker.
    Serve(ServeArgs),
    /// Run a job worker on its own, for deployments that separate API and workers.
    Worker(WorkerArgs),
    /// Apply, roll back or list schema migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Write reference data (roles and the framework library). Safe to run again.
    Seed,
    /// The framework library: list, import and export OSCAL catalogs.
    #[command(subcommand)]
    Frameworks(FrameworksCommand),
    /// Check the content files (frameworks, questions, mappings) without a database.
    #[command(subcommand)]
    Content(ContentCommand),
    /// Generate secrets.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Check the deployment: database reachable, migrations current, data directory writable.
    Verify,
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
    /// Ask a running server whether it is alive (`GET /api/v1/health/live`); exit 1 if
    /// not. The container image's health check.
    Health {
        /// The server's address; by default this machine's server on `PORT`.
        #[arg(long)]
        url: Option<String>,
    },
    /// Check a running deployment from outside, as the roadmap's final checks: health,
    /// readiness, security headers, a sign-in round trip, rate-limit headers,
    /// monitoring, AI providers and response times. Prints a table; exits 1 when a
    /// check fails.
    Check(CheckArgs),
    /// Inspect and test background jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Operator tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Readiness history: take today's snapshot now (the server does it daily).
    #[command(subcommand)]
    Readiness(ReadinessCommand),
    /// Create a demo organisation with a profile, assessments, answers, plans and a
    /// readiness history, to try ruleIQ or to benchmark it.
    Demo(DemoArgs),
    /// Evidence storage: verify every stored file, expire and sweep now.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Reports: start the scheduled reports that are due, expire old files now (the
    /// server does both on its own).
    #[command(subcommand)]
    Reports(ReportsCommand),
    /// Notifications: run the daily sweep or the weekly digest now (the server does
    /// both on its own).
    #[command(subcommand)]
    Notifications(NotificationsCommand),
    /// Audit packs: check a downloaded pack against its manifest.
    #[command(subcommand, name = "audit-pack")]
    AuditPack(AuditPackCommand),
    /// Outgoing e-mail: read the outbox, send a failed message again, test SMTP.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Write one archive of every table and every stored file, consistent to one
    /// moment, while the server keeps running. Progress goes to standard error.
    Backup(BackupArgs),
    /// Load a backup into an empty database of either engine, and its files into
    /// storage. The whole archive is checked against its manifest before anything is
    /// written. Stop the servers on the target first.
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
struct BackupArgs {
    /// The archive to write (a .tar.gz); it must not exist yet.
    #[arg(long, short)]
    output: PathBuf,
}

#[derive(Debug, Args)]
struct RestoreArgs {
    /// The archive `ruleiq backup` wrote.
    file: PathBuf,
    /// When the target database already holds data, delete all of it first (in the
    /// same transaction as the load, so a failed restore leaves it as it was).
    /// Without this flag a non-empty target is refused.
    #[arg(long)]
    wipe_existing: bool,
    /// Only check the archive against its manifest; touch no database.
    #[arg(long, conflicts_with = "wipe_existing")]
    check: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The deployment's public address, such as https://ruleiq.example.co.uk.
    #[arg(long)]
    url: String,
    /// An account to sign in with (an owner or admin also checks monitoring). Its
    /// password is read from standard input with --password-stdin, else from
    /// RULEIQ_CHECK_PASSWORD.
    #[arg(long)]
    email: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    /// The deployment's API_V1_PREFIX, if not this machine's.
    #[arg(long, value_name = "PATH")]
    api_prefix: Option<String>,
    /// The slowest acceptable p95 of the response-time sample, in milliseconds.
    #[arg(long, default_value_t = 500, value_name = "MS")]
    max_ms: u64,
    /// How many liveness requests the response-time sample makes.
    #[arg(long, default_value_t = 20, value_name = "N")]
    samples: usize,
}

#[derive(Debug, Subcommand)]
enum MailCommand {
    /// List outgoing messages, newest first: every organisation's and account mail.
    List {
        /// Only messages in this state.
        #[arg(long, value_parser = ["queued", "sent", "failed", "logged"])]
        status: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=200))]
        limit: u64,
    },
    /// Send a failed or logged message again, with a fresh set of attempts.
    Retry {
        /// The message's id (from `ruleiq mail list`).
        id: String,
    },
    /// Send a test message through the configured SMTP server now and report what the
    /// server answered.
    Test {
        /// Where to send it.
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
enum ReportsCommand {
    /// Start every report whose schedule is due (each once, however many servers or
    /// commands run at the same moment); a worker then builds them.
    Tick,
    /// Mark reports past `REPORT_RETENTION_DAYS` expired now; `ruleiq evidence sweep`
    /// then removes their files.
    Expire,
}

#[derive(Debug, Subcommand)]
enum NotificationsCommand {
    /// Tell members of evidence expiring within 30 and 7 days and of tasks due or
    /// overdue. Safe to run again: nobody is told of the same thing twice.
    Sweep,
    /// Send this week's digest to every member with it on. Safe to run again: one
    /// digest per member per ISO week.
    Digest,
}

#[derive(Debug, Subcommand)]
enum AuditPackCommand {
    /// Check every file of an audit pack against the SHA-256 and size its manifest
    /// lists; exits 1 when anything is missing, changed or unlisted.
    Verify {
        /// The pack (a .zip downloaded from ruleIQ).
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum EvidenceCommand {
    /// Re-read every stored evidence file and check its SHA-256; exits 1 when any file
    /// is missing or has changed.
    Verify,
    /// Expire approved evidence past its date now (the server does it daily).
    Expire,
    /// Remove abandoned uploads and files no version refers to (the server does it
    /// daily).
    Sweep,
}

#[derive(Debug, Subcommand)]
enum ReadinessCommand {
    /// Record every assessed organisation's readiness for today. Safe to run again:
    /// a second run the same day keeps the later figures.
    Snapshot,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DemoSize {
    /// Two frameworks, one assessment each, two plans.
    Small,
    /// Every built-in framework, at least 2,000 answers and 500 tasks.
    Large,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// How much data to make.
    #[arg(long, value_enum, default_value = "small")]
    size: DemoSize,
    /// The demo owner's e-mail address.
    #[arg(long, default_value = "demo@ruleiq.example")]
    email: String,
    /// Read the password from standard input (one line). Without it, a strong password
    /// is generated and printed once.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, Subcommand)]
enum FrameworksCommand {
    /// List the library's frameworks with their control counts.
    List,
    /// Import an OSCAL 1.x catalog (JSON) into the shared library, for every
    /// organisation on this installation.
    Import {
        /// The catalog file.
        file: PathBuf,
    },
    /// Write a library framework as an OSCAL 1.1 catalog.
    Export {
        /// The framework's slug (see `ruleiq frameworks list`) or id.
        framework: String,
        /// Write here instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ContentCommand {
    /// Validate every content file; prints what is wrong with file, line and field.
    Check {
        /// A content/ directory (default: the content built into this binary).
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an organisation and its owner account. Does nothing, and says so, if the
    /// address already has an account.
    Create(AdminCreateArgs),
}

#[derive(Debug, Args)]
struct AdminCreateArgs {
    /// The owner's e-mail address.
    #[arg(long)]
    email: String,
    /// The organisation's name.
    #[arg(long)]
    organization: String,
    /// The owner's name (default: the part of the address before @).
    #[arg(long)]
    full_name: Option<String>,
    /// Read the password from standard input (one line). Without it, a strong password
    /// is generated and printed once.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, Args, Default)]
struct ServeArgs {
    /// Port to listen on (PORT; default 8000).
    #[arg(long)]
    port: Option<u16>,
    /// Address to listen on (BIND_ADDRESS; default 127.0.0.1).
    #[arg(long, value_name = "IP")]
    bind_address: Option<String>,
}

#[derive(Debug, Args)]
struct WorkerArgs {
    /// The worker's name in logs (default: worker-<pid>).
    #[arg(long)]
    name: Option<String>,
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// Apply pending migrations (all, or the next N).
    Up {
        /// How many to apply.
        #[arg(short = 'n', long = "steps", value_name = "N")]
        steps: Option<u32>,
    },
    /// Roll back the last applied migration (or the last N).
    Down {
        /// How many to roll back.
        #[arg(short = 'n', long = "steps", value_name = "N", default_value_t = 1)]
        steps: u32,
    },
    /// List every migration and whether it is applied.
    Status,
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Print a new JWT secret, SECRET_KEY and database password as environment lines.
    Generate,
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Queue a canary job and wait for a worker to finish it.
    Test(JobsTestArgs),
    /// List recent jobs, newest first.
    List(JobsListArgs),
    /// Run a failed or cancelled job again, with a fresh set of attempts.
    Retry {
        /// The job's id (from `ruleiq jobs list`).
        id: String,
    },
    /// Cancel a queued job.
    Cancel {
        /// The job's id (from `ruleiq jobs list`).
        id: String,
    },
}

#[derive(Debug, Args)]
struct JobsTestArgs {
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Also run a worker inside this command, for a single-machine check without a
    /// running server.
    #[arg(long)]
    local_worker: bool,
    /// Make the canary fail its first N attempts, to watch retries.
    #[arg(long, default_value_t = 0)]
    fail_attempts: u32,
    /// Attempts the canary gets.
    #[arg(long, default_value_t = 3)]
    max_attempts: i32,
}

#[derive(Debug, Args)]
struct JobsListArgs {
    /// Only jobs in this state.
    #[arg(long, value_parser = ["queued", "running", "succeeded", "failed", "cancelled"])]
    status: Option<String>,
    /// How many.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=200))]
    limit: u64,
}

/// A command's failure and its exit code.
#[derive(Debug)]
enum Failure {
    /// Could not start: invalid command line or settings (exit 2).
    Usage(String),
    /// Ran and failed (exit 1).
    Failed(String),
}

impl From<StartupError> for Failure {
    fn from(e: StartupError) -> Self {
        Self::Failed(e.to_string())
    }
}

/// Parses the command line and runs the command.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("ruleiq: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("ruleiq: error: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let command = cli.command.unwrap_or(Command::Serve(ServeArgs::default()));
    // Commands that need no settings at all.
    if let Command::AuditPack(AuditPackCommand::Verify { file }) = &command {
        return audit_pack_verify(file);
    }
    if let Command::Secrets(SecretsCommand::Generate) = command {
        let s = secrets::generate();
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "JWT_SECRET_KEY={}\nSECRET_KEY='{}'\nPOSTGRES_PASSWORD={}",
            s.jwt_secret_key, s.secret_key, s.database_password
        )
        .map_err(|e| Failure::Failed(e.to_string()))?;
        return Ok(());
    }

    let mut overrides = Overrides {
        config_file: cli.global.config,
        data_dir: cli.global.data_dir,
        database_url: cli.global.database_url,
        ..Overrides::default()
    };
    if let Command::Serve(args) = &command {
        overrides.port = args.port;
        overrides.bind_address.clone_from(&args.bind_address);
    }
    let mut settings = Settings::load(&overrides).map_err(|e| Failure::Usage(e.to_string()))?;

    if let Command::Restore(RestoreArgs {
        file, check: true, ..
    }) = &command
    {
        return restore_check(file);
    }

    if let Command::Content(ContentCommand::Check { dir }) = &command {
        return content_check(dir.as_deref());
    }

    if let Command::Health { url } = &command {
        return health(&settings, url.as_deref());
    }

    if let Command::Check(args) = &command {
        return check(&settings, args);
    }

    if let Command::Openapi = command {
        let doc = ruleiq_web::openapi(&settings.server.api_v1_prefix);
        let json = doc
            .to_pretty_json()
            .map_err(|e| Failure::Failed(e.to_string()))?;
        println!("{json}");
        return Ok(());
    }

    if matches!(
        command,
        Command::Serve(_)
            | Command::Worker(_)
            | Command::Jobs(_)
            | Command::Admin(_)
            | Command::Demo(_)
    ) {
        secrets::ensure_dev_secrets(&mut settings).map_err(|e| Failure::Failed(e.to_string()))?;
    }
    let _telemetry = telemetry::init(&settings);

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(workers) = settings.server.workers {
        runtime.worker_threads(workers);
    }
    let runtime = runtime
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        match command {
            Command::Serve(_) => serve(settings).await,
            Command::Worker(args) => worker(settings, args).await,
            Command::Migrate(cmd) => migrate(settings, cmd).await,
            Command::Seed => seed(settings).await,
            Command::Frameworks(cmd) => frameworks(settings, cmd).await,
            Command::Verify => verify(settings).await,
            Command::Jobs(JobsCommand::Test(args)) => jobs_test(settings, args).await,
            Command::Jobs(JobsCommand::List(args)) => jobs_list(settings, args).await,
            Command::Jobs(JobsCommand::Retry { id }) => jobs_act(settings, &id, true).await,
            Command::Jobs(JobsCommand::Cancel { id }) => jobs_act(settings, &id, false).await,
            Command::Admin(AdminCommand::Create(args)) => admin_create(settings, args).await,
            Command::Readiness(ReadinessCommand::Snapshot) => readiness_snapshot(settings).await,
            Command::Evidence(command) => evidence(settings, command).await,
            Command::Reports(command) => reports(settings, command).await,
            Command::Mail(command) => mail(settings, command).await,
            Command::Notifications(command) => notifications(settings, command).await,
            Command::Demo(args) => demo(settings, args).await,
            Command::Backup(args) => backup(settings, args).await,
            Command::Restore(args) => restore(settings, args).await,
            Command::Secrets(_)
            | Command::Openapi
            | Command::Health { .. }
            | Command::Check(_)
            | Command::Content(_)
            | Command::AuditPack(_) => Ok(()),
        }
    })
}

/// Cancels `token` on SIGINT or SIGTERM.
fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        token.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested; finishing in-flight work");
        token.cancel();
    });
}

async fn serve(settings: Settings) -> Result<(), Failure> {
    let app = Application::build(settings).await?;
    cancel_on_signal(app.shutdown_token());
    app.run_until_stopped().await?;
    Ok(())
}

async fn worker(settings: Settings, args: WorkerArgs) -> Result<(), Failure> {
    // A job that panics is reported like a request that does (SENTRY_DSN).
    let _reporter = ruleiq_web::error_reports::start_reporter(&settings);
    let components = Components::connect(settings).await?;
    require_current_schema(&components).await?;
    let token = CancellationToken::new();
    cancel_on_signal(token.clone());
    let name = args
        .name
        .unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let handle = components.spawn_worker(name, token.clone());
    // A deployment that separates workers from the API may run no `serve` that sends
    // mail, so the worker sends it too; the outbox's claim keeps each message to one
    // sender however many run.
    let mail_sender = components.spawn_mail_sender(token);
    handle
        .await
        .map_err(|e| Failure::Failed(format!("worker task failed: {e}")))?;
    if let Some(sender) = mail_sender {
        let _ = tokio::time::timeout(components.settings.server.shutdown_timeout, sender).await;
    }
    Ok(())
}

async fn require_current_schema(components: &Components) -> Result<(), Failure> {
    let pending = ruleiq_db::migrations_pending(&components.db)
        .await
        .map_err(|e| Failure::Failed(format!("cannot read migration state: {e}")))?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err(Failure::Failed(format!(
            "{} migrations are pending; run `ruleiq migrate up` (or start `ruleiq serve`) first",
            pending.len()
        )))
    }
}

async fn migrate(settings: Settings, cmd: MigrateCommand) -> Result<(), Failure> {
    let db = ruleiq_db::connect(&settings.database)
        .await
        .map_err(StartupError::from)?;
    let failed = |e: ruleiq_db::DbErr| Failure::Failed(format!("migration failed: {e}"));
    match cmd {
        MigrateCommand::Up { steps } => {
            let before = Migrator::get_pending_migrations(&db)
                .await
                .map_err(failed)?;
            Migrator::up(&db, steps).await.map_err(failed)?;
            let after = Migrator::get_pending_migrations(&db)
                .await
                .map_err(failed)?;
            // The job queue's own tables belong with the schema a deploy step prepares.
            ruleiq_jobs::ApalisQueue::in_database(&db, &settings.server.job_queue_name)
                .await
                .map_err(|e| Failure::Failed(e.to_string()))?;
            println!(
                "applied {} migration(s); {} pending",
                before.len() - after.len(),
                after.len()
            );
        }
        MigrateCommand::Down { steps } => {
            let before = Migrator::get_applied_migrations(&db)
                .await
                .map_err(failed)?;
            Migrator::down(&db, Some(steps)).await.map_err(failed)?;
            let after = Migrator::get_applied_migrations(&db)
                .await
                .map_err(failed)?;
            println!(
                "rolled back {} migration(s); {} applied",
                before.len() - after.len(),
                after.len()
            );
        }
        MigrateCommand::Status => {
            let all = Migrator::get_migration_with_status(&db)
                .await
                .map_err(failed)?;
            for m in &all {
                println!(
                    "{:<8} {}",
                    format!("{:?}", m.status()).to_lowercase(),
                    m.name()
                );
            }
        }
    }
    Ok(())
}

async fn seed(settings: Settings) -> Result<(), Failure> {
    let db = ruleiq_db::connect(&settings.database)
        .await
        .map_err(StartupError::from)?;
    let pending = ruleiq_db::migrations_pending(&db)
        .await
        .map_err(|e| Failure::Failed(e.to_string()))?;
    if !pending.is_empty() {
        return Err(Failure::Failed(format!(
            "{} migrations are pending; run `ruleiq migrate up` first",
            pending.len()
        )));
    }
    let report = ruleiq_services::seed::run(&db, &ruleiq_core::SystemClock)
        .await
        .map_err(|e| Failure::Failed(format!("seeding failed: {e}")))?;
    println!("seeded {} roles", report.roles);
    let l = &report.library;
    println!(
        "{} framework library: {} frameworks, {} controls, {} shared questions, {} mappings",
        if l.changed { "loaded" } else { "unchanged" },
        l.frameworks,
        l.controls,
        l.questions,
        l.mappings
    );
    Ok(())
}

fn content_check(dir: Option<&std::path::Path>) -> Result<(), Failure> {
    use ruleiq_services::frameworks::content;
    let files = match dir {
        Some(d) => {
            if !d.is_dir() {
                return Err(Failure::Usage(format!(
                    "{} is not a directory; pass the content/ directory",
                    d.display()
                )));
            }
            content::files_in(d).map_err(|e| Failure::Failed(e.to_string()))?
        }
        None => content::embedded_files(),
    };
    let library = content::load(&files).map_err(|e| Failure::Failed(e.to_string()))?;
    let templates = ruleiq_services::policies::templates::check(&files, &library)
        .map_err(|e| Failure::Failed(e.to_string()))?;
    for f in &library.frameworks {
        println!(
            "ok   {:<18} {:>4} controls  {} (content v{})",
            f.slug,
            f.controls.len(),
            f.version,
            f.content_version
        );
    }
    println!(
        "ok   {} shared questions, {} mapping files ({} pairs)",
        library.questions.len(),
        library.mappings.len(),
        library
            .mappings
            .iter()
            .map(|m| m.mappings.len())
            .sum::<usize>()
    );
    println!(
        "ok   {} policy templates ({} control links)",
        templates.len(),
        templates
            .iter()
            .flat_map(|t| &t.controls)
            .map(|c| c.refs.len())
            .sum::<usize>()
    );
    Ok(())
}

async fn ready_database(settings: &Settings) -> Result<ruleiq_db::DatabaseConnection, Failure> {
    let db = ruleiq_db::connect(&settings.database)
        .await
        .map_err(StartupError::from)?;
    let pending = ruleiq_db::migrations_pending(&db)
        .await
        .map_err(|e| Failure::Failed(e.to_string()))?;
    if !pending.is_empty() {
        return Err(Failure::Failed(format!(
            "{} migrations are pending; run `ruleiq migrate up` first",
            pending.len()
        )));
    }
    Ok(db)
}

async fn frameworks(settings: Settings, cmd: FrameworksCommand) -> Result<(), Failure> {
    use ruleiq_services::frameworks::{
        Catalog,
        oscal::{self, ImportError},
    };
    let db = ready_database(&settings).await?;
    let catalog = Catalog::new(db.clone());
    match cmd {
        FrameworksCommand::List => {
            let list = catalog
                .list(None)
                .await
                .map_err(|e| Failure::Failed(e.to_string()))?;
            if list.is_empty() {
                println!("the library is empty; run `ruleiq seed`");
            }
            for f in list {
                println!(
                    "{:<28} {:>5} controls  {} ({})",
                    f.slug, f.control_count, f.name, f.source
                );
            }
            Ok(())
        }
        FrameworksCommand::Import { file } => {
            let body = std::fs::read(&file)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
            let imported = oscal::import(&db, None, &body, chrono::Utc::now())
                .await
                .map_err(|e| match e {
                    ImportError::Invalid { path, message } => Failure::Failed(format!(
                        "{} is not a valid OSCAL catalog: {path}: {message}",
                        file.display()
                    )),
                    other => Failure::Failed(other.to_string()),
                })?;
            println!(
                "imported {} as {} ({} controls in {} groups, {} mappings)",
                file.display(),
                imported.slug,
                imported.controls,
                imported.groups,
                imported.mappings
            );
            Ok(())
        }
        FrameworksCommand::Export { framework, output } => {
            let f = catalog
                .find_model(None, &framework)
                .await
                .map_err(|e| Failure::Failed(e.to_string()))?
                .ok_or_else(|| {
                    Failure::Failed(format!(
                        "no library framework {framework:?}; `ruleiq frameworks list` shows them"
                    ))
                })?;
            let doc = oscal::export(&db, None, &f)
                .await
                .map_err(|e| Failure::Failed(e.to_string()))?;
            let json =
                serde_json::to_string_pretty(&doc).map_err(|e| Failure::Failed(e.to_string()))?;
            match output {
                Some(path) => {
                    std::fs::write(&path, json + "\n").map_err(|e| {
                        Failure::Failed(format!("cannot write {}: {e}", path.display()))
                    })?;
                    eprintln!("wrote {}", path.display());
                }
                None => println!("{json}"),
            }
            Ok(())
        }
    }
}

async fn verify(settings: Settings) -> Result<(), Failure> {
    let mut failures = Vec::new();
    let mut report = |ok: bool, what: &str, detail: String| {
        println!("{} {what}: {detail}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            failures.push(what.to_owned());
        }
    };

    match ruleiq_services::monitoring::probe_writable(&settings.data_dir) {
        Ok(()) => report(
            true,
            "data directory",
            format!("{} is writable", settings.data_dir.display()),
        ),
        Err(e) => report(false, "data directory", e),
    }
    // Evidence files: a probe object written and removed, on disk or in the bucket.
    let where_files = match &settings.uploads.storage {
        ruleiq_config::StorageSettings::Local { dir } => dir.display().to_string(),
        ruleiq_config::StorageSettings::S3 { bucket, .. } => format!("s3://{bucket}"),
    };
    match crate::startup::blob_store(&settings) {
        Err(e) => report(false, "file storage", e.to_string()),
        Ok(store) => match store.check_writable().await {
            Ok(()) => report(
                true,
                "file storage",
                format!("{where_files} accepts writes"),
            ),
            Err(e) => report(false, "file storage", format!("{where_files}: {e}")),
        },
    }
    match ruleiq_db::connect(&settings.database).await {
        Err(e) => {
            report(false, "database", e.to_string());
            report(false, "migrations", "not checked: no database".into());
        }
        Ok(db) => {
            let health = ruleiq_db::database_health(&db).await;
            report(
                health.ok,
                "database",
                match &health.error {
                    None => format!(
                        "{} answered in {:.1} ms",
                        settings.database.url.redacted(),
                        health.latency.as_secs_f64() * 1000.0
                    ),
                    Some(e) => e.clone(),
                },
            );
            match ruleiq_db::migrations_pending(&db).await {
                Ok(p) if p.is_empty() => {
                    report(
                        true,
                        "migrations",
                        format!("all {} applied", Migrator::migrations().len()),
                    );
                    for (ok, what, detail) in reference_data(&db).await {
                        report(ok, what, detail);
                    }
                }
                Ok(p) => report(
                    false,
                    "migrations",
                    format!(
                        "{} pending ({}); run `ruleiq migrate up`",
                        p.len(),
                        p.join(", ")
                    ),
                ),
                Err(e) => report(false, "migrations", e.to_string()),
            }
        }
    }
    // Production's refusals (weak or missing secrets, debug on, …) stop `Settings::load`
    // before this command runs, so reaching here means they passed.
    if settings.environment.is_production() {
        report(
            true,
            "secrets",
            "JWT_SECRET_KEY and SECRET_KEY are set and strong".into(),
        );
    } else {
        report(
            true,
            "secrets",
            format!(
                "not checked for strength (ENVIRONMENT={}; production refuses weak ones)",
                settings.environment
            ),
        );
    }
    if failures.is_empty() {
        println!("ruleIQ is ready to serve");
        Ok(())
    } else {
        Err(Failure::Failed(format!(
            "verification failed: {}",
            failures.join(", ")
        )))
    }
}

async fn jobs_test(settings: Settings, args: JobsTestArgs) -> Result<(), Failure> {
    let components = Components::connect(settings).await?;
    if args.local_worker {
        prepare_database(
            &components.db,
            &components.settings,
            components.clock.as_ref(),
        )
        .await?;
    } else {
        require_current_schema(&components).await?;
    }
    let token = CancellationToken::new();
    let local = args.local_worker.then(|| {
        components.spawn_worker(format!("jobs-test-{}", std::process::id()), token.clone())
    });
    let started = Instant::now();
    let id = components
        .jobs
        .enqueue(
            ruleiq_jobs::kinds::CANARY,
            serde_json::json!({ "message": "canary", "fail_attempts": args.fail_attempts }),
            None,
            args.max_attempts,
        )
        .await
        .map_err(|e| Failure::Failed(format!("cannot queue the canary: {e}")))?;
    println!(
        "queued canary job {id} on the {} queue; waiting for a worker…",
        components.queue_backend()
    );
    let outcome = wait_for(&components, id, Duration::from_secs(args.timeout)).await;
    token.cancel();
    if let Some(handle) = local {
        let _ = handle.await;
    }
    let record = outcome?;
    let elapsed = started.elapsed();
    match record.status.as_str() {
        "succeeded" => {
            println!(
                "succeeded after {} attempt(s) in {} ms: {}",
                record.attempts,
                elapsed.as_millis(),
                record.result.unwrap_or_default()
            );
            Ok(())
        }
        other => Err(Failure::Failed(format!(
            "canary job {id} ended `{other}` after {} attempt(s): {}",
            record.attempts,
            record.error.unwrap_or_default()
        ))),
    }
}

/// Polls a job's record until it finishes, printing each change of state.
async fn wait_for(
    components: &Components,
    id: JobId,
    timeout: Duration,
) -> Result<ruleiq_db::entities::job_run::Model, Failure> {
    let deadline = Instant::now() + timeout;
    let mut last = (String::new(), -1);
    loop {
        let record = jobs_repo::find(&components.db, id)
            .await
            .map_err(|e| Failure::Failed(e.to_string()))?
            .ok_or_else(|| Failure::Failed(format!("job {id} disappeared")))?;
        if (record.status.clone(), record.attempts) != last {
            println!(
                "  {} (attempt {}/{})",
                record.status, record.attempts, record.max_attempts
            );
            last = (record.status.clone(), record.attempts);
        }
        if matches!(record.status.as_str(), "succeeded" | "failed" | "cancelled") {
            return Ok(record);
        }
        if Instant::now() >= deadline {
            return Err(Failure::Failed(format!(
                "no worker finished job {id} within {} s (it is `{}`); start `ruleiq serve` or `ruleiq worker` against this database, or pass --local-worker",
                timeout.as_secs(),
                record.status
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn jobs_list(settings: Settings, args: JobsListArgs) -> Result<(), Failure> {
    let db = ruleiq_db::connect(&settings.database)
        .await
        .map_err(StartupError::from)?;
    let rows = jobs_repo::list(&db, args.status.as_deref(), None, args.limit)
        .await
        .map_err(|e| Failure::Failed(e.to_string()))?;
    if rows.is_empty() {
        println!("no jobs");
    }
    for r in rows {
        println!(
            "{}  {:<10} {:<9} attempts {}/{}  created {}{}",
            r.id,
            r.kind,
            r.status,
            r.attempts,
            r.max_attempts,
            r.created_at.format("%Y-%m-%d %H:%M:%S"),
            r.error.map(|e| format!("  error: {e}")).unwrap_or_default()
        );
    }
    Ok(())
}

async fn evidence(settings: Settings, command: EvidenceCommand) -> Result<(), Failure> {
    let components = Components::connect(settings).await?;
    require_current_schema(&components).await?;
    let upkeep = &components.upkeep;
    match command {
        EvidenceCommand::Verify => {
            let started = Instant::now();
            let mut last = Instant::now();
            let report = upkeep
                .verify(|n, bytes| {
                    // A line every two seconds, so a long run shows it is moving.
                    if last.elapsed().as_secs() >= 2 {
                        last = Instant::now();
                        eprintln!("  checked {n} file(s), {} MB", bytes / 1_000_000);
                    }
                })
                .await
                .map_err(|e| Failure::Failed(format!("evidence verify: {e}")))?;
            for sha in &report.mismatched {
                println!("MISMATCH  {sha}  content no longer has this SHA-256");
            }
            for sha in &report.missing {
                println!("MISSING   {sha}  not in storage");
            }
            println!(
                "verified {} file(s), {:.1} MB in {:.1} s: {} mismatched, {} missing",
                report.checked,
                report.bytes as f64 / 1e6,
                started.elapsed().as_secs_f64(),
                report.mismatched.len(),
                report.missing.len()
            );
            if report.ok() {
                Ok(())
            } else {
                Err(Failure::Failed(
                    "evidence storage has damaged or missing files; restore them from a backup"
                        .into(),
                ))
            }
        }
        EvidenceCommand::Expire => {
            let n = upkeep
                .expire_due()
                .await
                .map_err(|e| Failure::Failed(format!("evidence expiry: {e}")))?;
            println!("expired {n} item(s)");
            Ok(())
        }
        EvidenceCommand::Sweep => {
            let swept = upkeep
                .sweep()
                .await
                .map_err(|e| Failure::Failed(format!("evidence sweep: {e}")))?;
            println!(
                "removed {} abandoned upload(s) and {} unreferenced file(s)",
                swept.staging, swept.orphans
            );
            Ok(())
        }
    }
}

/// The backup service over the configured database and file storage.
async fn backups(settings: &Settings) -> Result<Backups, Failure> {
    let db = ruleiq_db::connect(&settings.database)
        .await
        .map_err(StartupError::from)?;
    let store = crate::startup::blob_store(settings)?;
    Ok(Backups::new(db, store, Arc::new(SystemClock)))
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

async fn backup(settings: Settings, args: BackupArgs) -> Result<(), Failure> {
    let backups = backups(&settings).await?;
    let started = Instant::now();
    let mut progress = |line: &str| eprintln!("{line}");
    let manifest = backups
        .create(&args.output, &mut progress)
        .await
        .map_err(|e| Failure::Failed(format!("backup: {e}")))?;
    let size = std::fs::metadata(&args.output).map_or(0, |m| m.len());
    println!(
        "backup written to {} ({:.1} MB) in {:.1} s: schema {}, {} tables, {} rows, {} files ({:.1} MB)",
        args.output.display(),
        megabytes(size),
        started.elapsed().as_secs_f64(),
        manifest.schema_version,
        manifest.tables.len(),
        manifest.rows(),
        manifest.blobs.len(),
        megabytes(manifest.blob_bytes()),
    );
    if !manifest.missing_blobs.is_empty() {
        eprintln!(
            "warning: {} file(s) the database refers to were already missing from storage; run `ruleiq evidence verify`",
            manifest.missing_blobs.len()
        );
    }
    Ok(())
}

async fn restore(settings: Settings, args: RestoreArgs) -> Result<(), Failure> {
    let backups = backups(&settings).await?;
    let started = Instant::now();
    let mut progress = |line: &str| eprintln!("{line}");
    let existing = if args.wipe_existing {
        Existing::Wipe
    } else {
        Existing::Refuse
    };
    let manifest = backups
        .restore(&args.file, existing, &mut progress)
        .await
        .map_err(|e| Failure::Failed(format!("restore: {e}")))?;
    println!(
        "restored {} ({} backup of {}) in {:.1} s: {} tables, {} rows, {} files ({:.1} MB)",
        args.file.display(),
        manifest.source_backend,
        manifest.created_at.to_rfc3339(),
        started.elapsed().as_secs_f64(),
        manifest.tables.len(),
        manifest.rows(),
        manifest.blobs.len(),
        megabytes(manifest.blob_bytes()),
    );
    Ok(())
}

fn restore_check(file: &std::path::Path) -> Result<(), Failure> {
    let mut progress = |line: &str| eprintln!("{line}");
    let manifest = Backups::verify(file, &mut progress)
        .map_err(|e| Failure::Failed(format!("restore --check: {e}")))?;
    println!(
        "{} is whole: {} backup of {}, schema {}, {} tables, {} rows, {} files ({:.1} MB)",
        file.display(),
        manifest.source_backend,
        manifest.created_at.to_rfc3339(),
        manifest.schema_version,
        manifest.tables.len(),
        manifest.rows(),
        manifest.blobs.len(),
        megabytes(manifest.blob_bytes()),
    );
    Ok(())
}

async fn readiness_snapshot(settings: Settings) -> Result<(), Failure> {
    let components = Components::connect(settings).await?;
    require_current_schema(&components).await?;
    let run =
        ruleiq_services::dashboard::Dashboard::new(components.db.clone(), components.clock.clone())
            .snapshot()
            .await
            .map_err(|e| Failure::Failed(format!("readiness snapshot: {e}")))?;
    println!(
        "recorded readiness for {}: {} organisation(s), {} framework(s)",
        run.day, run.organizations, run.frameworks
    );
    Ok(())
}

async fn demo(settings: Settings, args: DemoArgs) -> Result<(), Failure> {
    let (password, generated) = password_from(args.password_stdin)?;
    let components = Components::connect(settings).await?;
    require_current_schema(&components).await?;
    let identity = components.identity()?;
    let audit = identity.audit().clone();
    let demo = ruleiq_services::demo::Demo::new(
        components.db.clone(),
        identity,
        audit,
        components.clock.clone(),
    )
    .with_evidence(components.evidence.clone());
    let size = match args.size {
        DemoSize::Small => ruleiq_services::demo::Size::Small,
        DemoSize::Large => ruleiq_services::demo::Size::Large,
    };
    let started = Instant::now();
    let mut progress = |line: &str| println!("  {line}");
    let report = demo
        .create(size, &args.email, &password, &mut progress)
        .await
        .map_err(|e| match e {
            ruleiq_services::demo::DemoError::Exists(_)
            | ruleiq_services::demo::DemoError::Invalid(_) => Failure::Usage(e.to_string()),
            other => Failure::Failed(other.to_string()),
        })?;
    println!(
        "demo organisation {} ready in {:.1} s: {} assessments, {} answers, {} plans, {} tasks, {} readiness snapshots, {} evidence items",
        report.organization_id,
        started.elapsed().as_secs_f64(),
        report.assessments,
        report.answers,
        report.plans,
        report.tasks,
        report.snapshots,
        report.evidence
    );
    println!("sign in as {}", report.email);
    if let Some(password) = generated {
        println!("password (shown once): {password}");
    }
    Ok(())
}

/// A password from standard input, or a generated one (returned twice: to use, and
/// to print once).
fn password_from(stdin: bool) -> Result<(String, Option<String>), Failure> {
    if stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(|e| {
            Failure::Failed(format!("cannot read the password from standard input: {e}"))
        })?;
        Ok((line.trim_end_matches(['\r', '\n']).to_owned(), None))
    } else {
        let password = secrets::token_urlsafe(18);
        Ok((password.clone(), Some(password)))
    }
}

async fn admin_create(settings: Settings, args: AdminCreateArgs) -> Result<(), Failure> {
    let (password, generated) = password_from(args.password_stdin)?;
    let components = Components::connect(settings).await?;
    require_current_schema(&components).await?;
    let identity = components.identity()?;
    let full_name = args
        .full_name
        .unwrap_or_else(|| args.email.split('@').next().unwrap_or_default().to_owned());
    let input = ruleiq_services::identity::RegisterInput {
        email: args.email.clone(),
        password,
        full_name,
        organization_name: args.organization,
    };
    use ruleiq_services::identity::IdentityError;
    match identity.create_admin(input).await {
        Ok((user, org)) => {
            println!(
                "created {} as owner of \"{}\" (organisation {})",
                user.email, org.name, org.id
            );
            if let Some(password) = generated {
                println!("password (shown once; change it after signing in): {password}");
            }
            Ok(())
        }
        Err(IdentityError::EmailTaken) => {
            println!(
                "{} already has an account; nothing changed",
                args.email.trim()
            );
            Ok(())
        }
        Err(IdentityError::Invalid { field, message }) => {
            Err(Failure::Usage(format!("{field}: {message}")))
        }
        Err(e) => Err(Failure::Failed(e.to_string())),
    }
}

/// `ruleiq audit-pack verify FILE`: a table of what was checked, and the files that
/// are not as the manifest lists them.
fn audit_pack_verify(file: &std::path::Path) -> Result<(), Failure> {
    let f = std::fs::File::open(file)
        .map_err(|e| Failure::Failed(format!("cannot open {}: {e}", file.display())))?;
    let v = ruleiq_services::reports::pack::verify(std::io::BufReader::new(f))
        .map_err(|e| Failure::Failed(format!("{}: {e}", file.display())))?;
    println!("verified  {} files ({} bytes)", v.verified, v.bytes);
    for (label, names) in [
        ("missing", &v.missing),
        ("changed", &v.changed),
        ("unlisted", &v.unlisted),
    ] {
        for n in names {
            println!("{label:<9} {n}");
        }
    }
    if v.is_intact() {
        println!("ok        the pack matches its manifest");
        Ok(())
    } else {
        Err(Failure::Failed(format!(
            "{} does not match its manifest: {} missing, {} changed, {} unlisted",
            file.display(),
            v.missing.len(),
            v.changed.len(),
            v.unlisted.len()
        )))
    }
}

/// `ruleiq reports tick|expire`.
async fn reports(settings: Settings, command: ReportsCommand) -> Result<(), Failure> {
    let components = Components::connect(settings).await?;
    require_current_schema(&components).await?;
    match command {
        ReportsCommand::Tick => {
            let started = components
                .reports
                .tick()
                .await
                .map_err(|e| Failure::Failed(format!("report schedules: {e}")))?;
            println!("started {started} scheduled report(s)");
        }
        ReportsCommand::Expire => {
            let expired = components
                .reports
                .writer()
                .expire_due()
                .await
                .map_err(|e| Failure::Failed(format!("report expiry: {e}")))?;
            println!("expired {expired} report(s)");
        }
    }
    Ok(())
}

/// What a schema alone does not give a working deployment: the framework library, the
/// roles, and someone to administer it. Each as (ok, what, detail).
async fn reference_data(db: &ruleiq_db::DatabaseConnection) -> Vec<(bool, &'static str, String)> {
    use ruleiq_db::{
        entities::{framework, membership, role},
        sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter},
    };
    let roles_expected = ruleiq_core::Role::ALL.len() as u64;
    let roles_missing = format!("roles of {roles_expected}; run `ruleiq seed`");
    let frameworks = framework::Entity::find().count(db).await;
    let roles = role::Entity::find().count(db).await;
    let owners = membership::Entity::find()
        .filter(membership::Column::Role.eq(ruleiq_core::Role::Owner.as_str()))
        .count(db)
        .await;
    let line = |what,
                counted: Result<u64, ruleiq_db::DbErr>,
                ok: fn(u64) -> bool,
                good: &str,
                bad: &str| {
        match counted {
            Ok(n) if ok(n) => (true, what, format!("{n} {good}")),
            Ok(n) => (false, what, format!("{n} {bad}")),
            Err(e) => (false, what, e.to_string()),
        }
    };
    vec![
        line(
            "framework library",
            frameworks,
            |n| n > 0,
            "frameworks",
            "frameworks; run `ruleiq seed`",
        ),
        line(
            "roles",
            roles.map(|n| n.min(roles_expected)),
            |n| n == ruleiq_core::Role::ALL.len() as u64,
            "roles",
            &roles_missing,
        ),
        line(
            "owner",
            owners,
            |n| n > 0,
            "organisation owner(s)",
            "organisation owners; create one with `ruleiq admin create --email … --organization …`",
        ),
    ]
}

/// `ruleiq health`: one plain HTTP/1.1 request to the liveness endpoint, so that a
/// container image needs no HTTP client besides this binary.
fn check(settings: &Settings, args: &CheckArgs) -> Result<(), Failure> {
    use crate::check::{Target, Verdict, run, table};
    if !(args.url.starts_with("http://") || args.url.starts_with("https://")) {
        return Err(Failure::Usage(format!(
            "--url {:?} must start with http:// or https://",
            args.url
        )));
    }
    let credentials = match &args.email {
        None => None,
        Some(email) => {
            let password = if args.password_stdin {
                password_from(true)?.0
            } else {
                std::env::var("RULEIQ_CHECK_PASSWORD").map_err(|_| {
                    Failure::Usage(
                        "--email needs a password: pipe it with --password-stdin or set RULEIQ_CHECK_PASSWORD"
                            .into(),
                    )
                })?
            };
            Some((email.clone(), password))
        }
    };
    let target = Target {
        url: args.url.clone(),
        api_prefix: args
            .api_prefix
            .clone()
            .unwrap_or_else(|| settings.server.api_v1_prefix.clone()),
        credentials,
        max_ms: args.max_ms,
        samples: args.samples.clamp(1, 1_000),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the async runtime: {e}")))?;
    let findings = runtime.block_on(run(&target));
    print!("{}", table(&findings));
    let failed = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Fail)
        .count();
    if failed > 0 {
        return Err(Failure::Failed(format!(
            "{failed} check(s) failed against {}",
            args.url
        )));
    }
    println!("every check passed or only warned");
    Ok(())
}

fn health(settings: &Settings, url: Option<&str>) -> Result<(), Failure> {
    use std::{
        io::{Read, Write},
        net::{TcpStream, ToSocketAddrs},
    };
    let target = match url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            // A server bound to every address is reached on loopback.
            let host = if settings.server.bind_address.is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                settings.server.bind_address.to_string()
            };
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            format!("http://{host}:{}", settings.server.port)
        }
    };
    let Some(authority) = target.strip_prefix("http://") else {
        return Err(Failure::Usage(
            "--url must be an http:// address of the server itself (TLS ends at the proxy)".into(),
        ));
    };
    let authority = authority.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        // `host:port` or `[v6]:port`; a bare `[v6]` ends in `]`, not in digits.
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (
            h.trim_start_matches('[').trim_end_matches(']').to_owned(),
            p.parse::<u16>()
                .map_err(|_| Failure::Usage(format!("--url {target:?} has no valid port")))?,
        ),
        _ => (
            authority
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            80,
        ),
    };
    let path = format!("{}/health/live", settings.server.api_v1_prefix);
    let unreachable = |e: std::io::Error| Failure::Failed(format!("{target}{path}: {e}"));
    let timeout = Duration::from_secs(5);
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(unreachable)?
        .next()
        .ok_or_else(|| Failure::Failed(format!("{host} has no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(unreachable)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(unreachable)?;
    let mut head = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(unreachable)?;
    let head = String::from_utf8_lossy(&head);
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        println!("alive: {target}{path}");
        Ok(())
    } else {
        Err(Failure::Failed(format!(
            "{target}{path} answered {status:?}, not 200"
        )))
    }
}

async fn mail(settings: Settings, command: MailCommand) -> Result<(), Failure> {
    use ruleiq_services::mail::{MailStatus, Message, OutboxQuery, OutboxScope};
    let components = Components::connect(settings).await?;
    require_current_schema(&components).await?;
    let outbox = &components.outbox;
    let scope = OutboxScope::operator();
    let failed = |e: ruleiq_services::mail::MailError| Failure::Failed(format!("mail: {e}"));
    let print = |e: &ruleiq_services::mail::OutboxEntry| {
        println!(
            "{}  {:<6} attempts {}/{}  created {}  to {}  {:?}{}",
            e.id,
            e.status.as_str(),
            e.attempts,
            e.max_attempts,
            e.created_at.format("%Y-%m-%d %H:%M:%S"),
            e.recipients.join(", "),
            e.subject,
            e.last_error
                .as_deref()
                .map(|m| format!("  error: {m}"))
                .unwrap_or_default()
        );
    };
    match command {
        MailCommand::List { status, limit } => {
            let page = outbox
                .list_outbox(
                    &scope,
                    &OutboxQuery {
                        status: status.as_deref().and_then(MailStatus::parse),
                        cursor: None,
                        limit,
                    },
                )
                .await
                .map_err(failed)?;
            if page.items.is_empty() {
                println!("no messages");
            }
            page.items.iter().for_each(print);
        }
        MailCommand::Retry { id } => {
            let id: uuid::Uuid = id.trim().parse().map_err(|_| {
                Failure::Usage(format!(
                    "{id:?} is not a message id; see `ruleiq mail list`"
                ))
            })?;
            let entry = outbox.retry(&scope, id).await.map_err(failed)?;
            print(&entry);
            println!("queued again; a running server or worker sends it");
        }
        MailCommand::Test { to } => {
            let id = outbox
                .enqueue(Message {
                    organization_id: None,
                    to: vec![to],
                    subject: "ruleIQ: test message".into(),
                    text:
                        "This message checks that ruleIQ can send e-mail through its SMTP server. \
                           Nothing needs doing.\n"
                            .into(),
                    ..Message::default()
                })
                .await
                .map_err(failed)?;
            if !outbox.is_sending() {
                return Err(Failure::Failed(format!(
                    "no SMTP server is configured (set SMTP_HOST or SMTP_URL); message {id} was only logged"
                )));
            }
            outbox.deliver_due().await.map_err(failed)?;
            let entry = outbox.get(&scope, id).await.map_err(failed)?;
            print(&entry);
            if entry.status != MailStatus::Sent {
                return Err(Failure::Failed(format!(
                    "the SMTP server did not accept the test message: {}",
                    entry.last_error.as_deref().unwrap_or("no reason was given")
                )));
            }
            println!("sent: the SMTP server accepted the test message");
        }
    }
    Ok(())
}

/// `ruleiq notifications sweep|digest`. Mail is queued in the outbox; a running
/// server sends it (or it is kept as `logged` without an SMTP server).
async fn notifications(settings: Settings, command: NotificationsCommand) -> Result<(), Failure> {
    let components = Components::connect(settings).await?;
    require_current_schema(&components).await?;
    let n = &components.notifications;
    match command {
        NotificationsCommand::Sweep => {
            let r = n
                .sweep(n.now())
                .await
                .map_err(|e| Failure::Failed(format!("notification sweep: {e}")))?;
            println!(
                "evidence expiring: {} new notice(s), {} e-mail(s); tasks due: {} new, {} e-mail(s); tasks overdue: {} new, {} e-mail(s)",
                r.evidence_expiring.stored,
                r.evidence_expiring.emailed,
                r.task_due.stored,
                r.task_due.emailed,
                r.task_overdue.stored,
                r.task_overdue.emailed,
            );
        }
        NotificationsCommand::Digest => {
            let r = n
                .digest(n.now())
                .await
                .map_err(|e| Failure::Failed(format!("notification digest: {e}")))?;
            println!(
                "weekly digest: {} sent, {} already sent this week, {} skipped (e-mail off or nothing to report)",
                r.sent.stored, r.sent.duplicates, r.skipped
            );
        }
    }
    Ok(())
}

/// `ruleiq jobs retry ID` and `ruleiq jobs cancel ID`.
async fn jobs_act(settings: Settings, id: &str, retry: bool) -> Result<(), Failure> {
    let id: ruleiq_core::JobId = id
        .trim()
        .parse()
        .map_err(|_| Failure::Usage(format!("{id:?} is not a job id; see `ruleiq jobs list`")))?;
    let components = Components::connect(settings).await?;
    require_current_schema(&components).await?;
    let done = if retry {
        components.jobs.retry(None, id).await
    } else {
        components.jobs.cancel(None, id).await
    };
    match done {
        Ok(job) => {
            println!("{}  {}  {}", job.id, job.kind, job.status);
            Ok(())
        }
        Err(ruleiq_services::jobs::JobError::NotFound) => Err(Failure::Failed(format!(
            "no job {id}; see `ruleiq jobs list`"
        ))),
        Err(e) => Err(Failure::Failed(e.to_string())),
    }
}
