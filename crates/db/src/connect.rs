//! Opening the database chosen by `DATABASE_URL`.
//!
//! SQLite is opened in WAL mode with a busy timeout and foreign keys on, its file and
//! directory created if missing. PostgreSQL is retried with exponential backoff for
//! `DATABASE_CONNECT_TIMEOUT_SECONDS`, because in a container deployment the database
//! often starts after the application.

use ruleiq_config::{DatabaseBackend, DatabaseSettings};
use ruleiq_migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbErr,
    sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};
use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot create the SQLite directory {path}: {source}")]
    SqliteDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the SQLite database {url}: {source}")]
    Sqlite { url: String, source: DbErr },
    #[error(
        "PostgreSQL at {url} did not answer after {attempts} attempts over {waited:?} ({source}); check DATABASE_URL and that the server is running"
    )]
    Postgres {
        url: String,
        attempts: u32,
        waited: Duration,
        source: DbErr,
    },
}

/// How long one SQLite writer waits for another before giving up with "busy".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a pool on the configured database.
///
/// # Errors
/// [`ConnectError`] when SQLite cannot be opened, or PostgreSQL is still unreachable
/// once the retry window has passed.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, ConnectError> {
    match settings.url.backend() {
        DatabaseBackend::Sqlite => connect_sqlite(settings).await,
        DatabaseBackend::Postgres => connect_postgres(settings).await,
    }
}

async fn connect_sqlite(settings: &DatabaseSettings) -> Result<DatabaseConnection, ConnectError> {
    let url = settings.url.expose().to_owned();
    if let Some(dir) = sqlite_parent_dir(&url) {
        std::fs::create_dir_all(&dir).map_err(|source| ConnectError::SqliteDir {
            path: dir.clone(),
            source,
        })?;
    }
    // Negative: a size in KiB rather than in pages.
    let cache_size = format!("-{}", settings.sqlite_cache_kib);
    let mut options = ConnectOptions::new(url.clone());
    options
        // Readers run in parallel under WAL; writers queue on the busy timeout.
        .max_connections(settings.max_connections.unwrap_or(8))
        .min_connections(1)
        // A connection to a local file does not go stale; pinging it before every use
        // would double the cost of each query.
        .test_before_acquire(false)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |o: SqliteConnectOptions| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
                .pragma("cache_size", cache_size.clone())
        })
        .map_sqlx_sqlite_before_acquire(|conn, _| {
            Box::pin(async move { Ok(no_open_transaction(conn)) })
        });
    Database::connect(options)
        .await
        .map_err(|source| ConnectError::Sqlite {
            url: settings.url.redacted(),
            source,
        })
}

/// Whether a pooled connection may be handed out: not while a transaction is still
/// open on it.
///
/// A connection goes back to the pool when its borrower lets go of it; if that
/// borrower leaked a transaction (forgot it, or its rollback went astray), every later
/// borrower's statements would run inside it: reads from an old snapshot, and writes
/// reported as done that no one else sees until the connection closes. Once seen in CI
/// as a cancelled job that read back as queued, and not reproduced since; this check
/// makes that class of fault impossible, whatever its cause. Run when a connection
/// leaves the idle queue, after the release's own ping has flushed its pending
/// commands (a dropped transaction's rollback included), so the depth it reads is
/// settled and the check costs no round trip. A refused connection is closed, which
/// rolls the transaction back, and the pool opens another.
fn no_open_transaction<C: sea_orm::sqlx::Connection>(conn: &C) -> bool {
    if conn.is_in_transaction() {
        tracing::warn!(
            "closing a pooled database connection that was returned with a transaction still open"
        );
        return false;
    }
    true
}

async fn connect_postgres(settings: &DatabaseSettings) -> Result<DatabaseConnection, ConnectError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(200);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut options = ConnectOptions::new(settings.url.expose().to_owned());
        options
            .max_connections(settings.max_connections.unwrap_or(16))
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(10))
            // Check a connection only when it has sat idle long enough to have been
            // dropped by a proxy or a server restart, not before every query.
            .test_before_acquire_if_idle_for(Duration::from_secs(30))
            .sqlx_logging(false)
            .map_sqlx_postgres_before_acquire(|conn, _| {
                Box::pin(async move { Ok(no_open_transaction(conn)) })
            });
        match Database::connect(options).await {
            Ok(db) => return Ok(db),
            Err(source) => {
                let waited = started.elapsed();
                if waited + delay > settings.connect_timeout {
                    return Err(ConnectError::Postgres {
                        url: settings.url.redacted(),
                        attempts,
                        waited,
                        source,
                    });
                }
                tracing::warn!(
                    attempt = attempts,
                    retry_in_ms = delay.as_millis() as u64,
                    error = %source,
                    "PostgreSQL not reachable yet; retrying"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The directory holding a `sqlite://` file, if the URL names a file.
fn sqlite_parent_dir(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    PathBuf::from(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
}

/// The outcome of one database round trip.
#[derive(Debug, Clone)]
pub struct DatabaseHealth {
    pub ok: bool,
    pub latency: Duration,
    pub error: Option<String>,
}

/// Runs one round trip to the database and times it.
pub async fn database_health(db: &DatabaseConnection) -> DatabaseHealth {
    let started = Instant::now();
    let result = db.ping().await;
    DatabaseHealth {
        ok: result.is_ok(),
        latency: started.elapsed(),
        error: result.err().map(|e| e.to_string()),
    }
}

/// The connection pool's occupancy, read from the pool itself (no query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open, idle or in use.
    pub size: u32,
    pub idle: u32,
    pub in_use: u32,
    /// The most the pool will open (`DATABASE_MAX_CONNECTIONS`).
    pub max: u32,
}

/// The pool's occupancy; `None` for a connection that is not a sqlx pool.
#[must_use]
pub fn pool_stats(db: &DatabaseConnection) -> Option<PoolStats> {
    use sea_orm::DatabaseConnectionType as Inner;
    // Matching on the variant first: the pool getters panic on the wrong backend.
    match &db.inner {
        Inner::SqlxSqlitePoolConnection(_) => Some(stats_of(db.get_sqlite_connection_pool())),
        Inner::SqlxPostgresPoolConnection(_) => Some(stats_of(db.get_postgres_connection_pool())),
        _ => None,
    }
}

fn stats_of<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> PoolStats {
    let size = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
    PoolStats {
        size,
        idle,
        in_use: size - idle,
        max: pool.options().get_max_connections(),
    }
}

/// Names of migrations not yet applied, read without writing to the database.
///
/// # Errors
/// When the migration table cannot be read.
pub async fn migrations_pending(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    Ok(Migrator::get_pending_migrations_read_only(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sqlite_directory_is_found_in_the_url() {
        assert_eq!(
            sqlite_parent_dir("sqlite://./data/ruleiq.db?mode=rwc"),
            Some(PathBuf::from("./data"))
        );
        assert_eq!(sqlite_parent_dir("sqlite::memory:"), None);
        assert_eq!(sqlite_parent_dir("sqlite://ruleiq.db"), None);
    }

    /// Every pooled SQLite connection gets the configured page cache, not SQLite's own
    /// default of about 2 MiB.
    #[tokio::test]
    async fn each_sqlite_connection_has_the_configured_cache() {
        let dir = tempfile::tempdir().unwrap();
        let settings = DatabaseSettings {
            url: ruleiq_config::DatabaseUrl::sqlite_file(&dir.path().join("cache.db")),
            connect_timeout: Duration::from_secs(5),
            max_connections: Some(2),
            sqlite_cache_kib: 300,
        };
        let db = connect(&settings).await.unwrap();
        let pool = db.get_sqlite_connection_pool();
        // Both held at once, so the second is a connection the pool opened for it.
        let mut first = pool.acquire().await.unwrap();
        let mut second = pool.acquire().await.unwrap();
        for conn in [&mut first, &mut second] {
            let size: i64 = sea_orm::sqlx::query_scalar("PRAGMA cache_size")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            assert_eq!(size, -300);
        }
    }
}
