//! The integration-test harness.
//!
//! Every test gets its own database: a SQLite file in a temporary directory, or — with
//! `TEST_DATABASE=postgres` — a freshly created PostgreSQL database on the server at
//! `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped
//! when the test ends. [`TestApp`] runs the real application on port 0 over it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod smtp;

use ruleiq_config::{RawSettings, Settings};
use ruleiq_db::sea_orm::{ConnectionTrait, Database};
use ruleiq_server::startup::{Application, Components};
use std::{net::SocketAddr, time::Duration};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which engine the tests run on, from `TEST_DATABASE` (`sqlite`, the default, or
/// `postgres`).
#[must_use]
pub fn backend() -> &'static str {
    match std::env::var("TEST_DATABASE").as_deref() {
        Ok("postgres" | "postgresql" | "pg") => "postgres",
        _ => "sqlite",
    }
}

/// The administrative PostgreSQL URL tests create their databases through.
#[must_use]
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    pg_name: Option<String>,
    pub dir: TempDir,
}

impl TestDatabase {
    /// A fresh, empty database on the configured backend.
    pub async fn new() -> Self {
        Self::on(backend()).await
    }

    /// A fresh, empty database on `backend` (`sqlite` or `postgres`), whatever
    /// `TEST_DATABASE` says: for tests that move data between the engines.
    pub async fn on(backend: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        if backend == "postgres" {
            let name = format!("ruleiq_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(postgres_admin_url())
                .await
                .expect("TEST_DATABASE=postgres needs a PostgreSQL server at TEST_POSTGRES_URL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create test database");
            admin.close().await.ok();
            let mut url = url_with_database(&postgres_admin_url(), &name);
            url.push_str(if url.contains('?') { "&" } else { "?" });
            url.push_str("application_name=ruleiq-test");
            Self {
                url,
                pg_name: Some(name),
                dir,
            }
        } else {
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("ruleiq.db").display()
            );
            Self {
                url,
                pg_name: None,
                dir,
            }
        }
    }
}

fn url_with_database(admin: &str, name: &str) -> String {
    let mut url = reqwest::Url::parse(admin).expect("TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside async context: use a runtime of our own on a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(admin) = Database::connect(postgres_admin_url()).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    admin.close().await.ok();
                }
            });
        })
        .join();
    }
}

/// Settings for a test: port 0, the test's database and data directory, and the
/// development defaults otherwise. The process environment is not read, so a
/// developer's own `DATABASE_URL` cannot leak into a test.
#[must_use]
pub fn test_raw_settings(db: &TestDatabase) -> RawSettings {
    RawSettings {
        port: 0,
        environment: text("test"),
        database_url: Some(text(&db.url)),
        data_dir: text(&db.dir.path().join("data").display().to_string()),
        jwt_secret_key: Some(text(&"t".repeat(40))),
        secret_key: Some(text(&"s".repeat(40))),
        log_level: text("warn"),
        // Generous budgets: tests sign in many times from one address. The rate-limit
        // tests set their own.
        auth_rate_limit_per_minute: 100_000,
        rate_limit_per_minute: 100_000,
        ai_rate_limit_per_minute: 100_000,
        job_queue_name: text(&format!("test-{}", uuid::Uuid::new_v4().simple())),
        ..RawSettings::default()
    }
}

/// Text for a raw setting.
#[must_use]
pub fn text(s: &str) -> ruleiq_config::raw::Text {
    ruleiq_config::raw::Text(s.to_owned())
}

/// A running application.
#[derive(Debug)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub components: Components,
    pub shutdown: CancellationToken,
    pub server: Option<JoinHandle<()>>,
    pub db: TestDatabase,
}

impl TestApp {
    /// The application with default test settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// The application with settings adjusted by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut RawSettings)) -> Self {
        Self::spawn_on(TestDatabase::new().await, configure).await
    }

    /// The application over an existing database (and its data directory), with
    /// settings adjusted by `configure`.
    pub async fn spawn_on(db: TestDatabase, configure: impl FnOnce(&mut RawSettings)) -> Self {
        let mut raw = test_raw_settings(&db);
        configure(&mut raw);
        let settings = Settings::from_raw(raw).expect("valid test settings");
        let app = Application::build(settings)
            .await
            .expect("application starts");
        let addr = app.local_addr();
        let components = app.components().clone();
        let shutdown = app.shutdown_token();
        let server = tokio::spawn(async move {
            app.run_until_stopped().await.expect("serves");
        });
        Self {
            addr,
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            components,
            shutdown,
            server: Some(server),
            db,
        }
    }

    /// `base` + `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Stops the server and hands back its database, to use again (by the command
    /// line, or another server).
    pub async fn stop_keeping_database(mut self) -> TestDatabase {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .expect("stops in time")
                .expect("server task");
        }
        let placeholder = TestDatabase {
            url: String::new(),
            pg_name: None,
            dir: tempfile::tempdir().expect("temporary directory"),
        };
        std::mem::replace(&mut self.db, placeholder)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .expect("stops in time")
                .expect("server task");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
