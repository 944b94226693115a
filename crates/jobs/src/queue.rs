//! The job queue over apalis storage.
//!
//! One named queue (`JOB_QUEUE_NAME`) carries every kind as a [`JobEnvelope`]; the kind inside
//! picks the handler. apalis is asked for a single attempt per delivery because
//! retries, with their backoff and status record, are the jobs service's.

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_postgres::PostgresStorage;
use apalis_redis::{ConnectionManager, RedisStorage};
use apalis_sqlite::SqliteStorage;
use async_trait::async_trait;
use ruleiq_db::DatabaseConnection;
use ruleiq_db::sea_orm::{DbBackend, sqlx};
use ruleiq_services::jobs::{JobEnvelope, JobQueue, QueueError};
use std::{fmt, time::Duration};

/// How often a worker reports itself alive. apalis's default is 30 s; under load a
/// delayed retry was seen waiting for the next heartbeat before being picked up, so a
/// shorter beat bounds that wait (and the time to notice a dead worker, below).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A worker silent for three heartbeats (15 s) is dead: another worker's heartbeat puts
/// its tasks back in the queue, and `Jobs::execute` takes over their records (which it
/// does for records silent longer than `ruleiq_services::jobs::ORPHANED_AFTER`, 8 s).
const MISSED_HEARTBEATS: usize = 3;

/// Connections of the queue's own pool: a poll, a heartbeat and an acknowledgement at
/// once, per process.
const QUEUE_CONNECTIONS: u32 = 3;

/// Why the queue could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum QueueSetupError {
    #[error("cannot prepare the job tables in the database: {0}")]
    Storage(String),
    #[error("cannot connect to Redis at REDIS_URL: {0}")]
    Redis(String),
    #[error("the database backend {0:?} cannot hold a job queue")]
    Unsupported(DbBackend),
}

/// The apalis storage in use.
#[derive(Clone)]
pub enum ApalisQueue {
    Sqlite(SqliteStorage<JobEnvelope>),
    Postgres(PostgresStorage<JobEnvelope>),
    Redis(RedisStorage<JobEnvelope, ConnectionManager>),
}

impl fmt::Debug for ApalisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApalisQueue({})", self.backend())
    }
}

impl ApalisQueue {
    /// The queue in the application database, its tables created if missing.
    ///
    /// # Errors
    /// When apalis's tables cannot be created.
    pub async fn in_database(
        db: &DatabaseConnection,
        queue: &str,
    ) -> Result<Self, QueueSetupError> {
        match db.get_database_backend() {
            // apalis gets a pool of its own on the same database: it starts
            // transactions through sqlx directly, and a worker stopping mid-poll can
            // leave one open on its connection (see `ruleiq_db::transaction`); that
            // connection must not come back to serve the application's writes.
            DbBackend::Sqlite => {
                let shared = db.get_sqlite_connection_pool();
                let pool = &sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(QUEUE_CONNECTIONS)
                    .connect_with((*shared.connect_options()).clone())
                    .await
                    .map_err(|e| QueueSetupError::Storage(e.to_string()))?;
                // Only the migrations: `SqliteStorage::setup` would also switch the
                // connection to `synchronous = OFF`, trading durability for speed.
                SqliteStorage::migrations()
                    .run(pool)
                    .await
                    .map_err(|e| QueueSetupError::Storage(e.to_string()))?;
                let config = apalis_sqlite::Config::default()
                    .queue(queue)
                    .heartbeat_interval(HEARTBEAT)
                    .missed_heartbeats(MISSED_HEARTBEATS);
                Ok(Self::Sqlite(SqliteStorage::new(pool).with_config(config)))
            }
            DbBackend::Postgres => {
                let shared = db.get_postgres_connection_pool();
                let pool = &sqlx::postgres::PgPoolOptions::new()
                    .max_connections(QUEUE_CONNECTIONS)
                    .connect_with((*shared.connect_options()).clone())
                    .await
                    .map_err(|e| QueueSetupError::Storage(e.to_string()))?;
                PostgresStorage::setup(pool)
                    .await
                    .map_err(|e| QueueSetupError::Storage(e.to_string()))?;
                let config = apalis_postgres::Config::default()
                    .queue(queue)
                    .heartbeat_interval(HEARTBEAT)
                    .missed_heartbeats(MISSED_HEARTBEATS);
                Ok(Self::Postgres(
                    PostgresStorage::new(pool).with_config(config),
                ))
            }
            other => Err(QueueSetupError::Unsupported(other)),
        }
    }

    /// The queue in Redis.
    ///
    /// # Errors
    /// When Redis cannot be reached within a few seconds.
    pub async fn in_redis(url: &str, queue: &str) -> Result<Self, QueueSetupError> {
        let conn = tokio::time::timeout(Duration::from_secs(5), apalis_redis::connect(url))
            .await
            .map_err(|_| QueueSetupError::Redis("no answer within 5 s".into()))?
            .map_err(|e| QueueSetupError::Redis(e.to_string()))?;
        let config = apalis_redis::Config::default()
            .queue(queue)
            .heartbeat_interval(HEARTBEAT)
            .missed_heartbeats(MISSED_HEARTBEATS);
        Ok(Self::Redis(RedisStorage::new(conn).with_config(config)))
    }

    /// Redis when a URL is given, else the application database.
    ///
    /// # Errors
    /// As [`Self::in_redis`] and [`Self::in_database`].
    pub async fn connect(
        db: &DatabaseConnection,
        redis_url: Option<&str>,
        queue: &str,
    ) -> Result<Self, QueueSetupError> {
        match redis_url {
            Some(url) => Self::in_redis(url, queue).await,
            None => Self::in_database(db, queue).await,
        }
    }
}

fn task(envelope: JobEnvelope, delay: Duration) -> apalis::prelude::Task<JobEnvelope> {
    let builder = TaskBuilder::new(envelope).max_attempts(1);
    if delay.is_zero() {
        builder.build()
    } else {
        builder.run_after(delay).build()
    }
}

#[async_trait]
impl JobQueue for ApalisQueue {
    async fn push(&self, envelope: JobEnvelope, delay: Duration) -> Result<(), QueueError> {
        let backend = self.backend();
        let err = |e: String| QueueError {
            backend,
            message: e,
        };
        let task = task(envelope, delay);
        match self.clone() {
            Self::Sqlite(mut s) => s.push_task(task).await.map_err(|e| err(e.to_string())),
            Self::Postgres(mut s) => s.push_task(task).await.map_err(|e| err(e.to_string())),
            Self::Redis(mut s) => s.push_task(task).await.map_err(|e| err(e.to_string())),
        }
    }

    fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
            Self::Redis(_) => "redis",
        }
    }
}
