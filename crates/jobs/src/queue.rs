//! The job queue over apalis storage.
//!
//! One named queue (`JOB_QUEUE_NAME`) carries every kind as a [`JobEnvelope`]; the kind inside
//! picks the handler. apalis is asked for a single attempt per delivery because
//! retries, with their backoff and status record, are the jobs service's.

use apalis::prelude::{
    BackoffConfig, BackoffStrategy, PollSnapshot, PollStrategy, TaskBuilder, TaskSink,
};
use apalis_postgres::PostgresStorage;
use apalis_redis::{ConnectionManager, RedisStorage};
use apalis_sqlite::SqliteStorage;
use async_trait::async_trait;
use futures::task::AtomicWaker;
use ruleiq_db::DatabaseConnection;
use ruleiq_db::sea_orm::{DbBackend, sqlx};
use ruleiq_services::jobs::{JobEnvelope, JobQueue, QueueError};
use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

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
pub struct ApalisQueue {
    pub(crate) storage: Storage,
    /// Rung after each push, so this process's worker takes the job at once instead of
    /// at its next poll (shared by every clone).
    pub(crate) pushed: Arc<Pushed>,
}

/// The storage a queue is kept in.
#[derive(Clone)]
pub(crate) enum Storage {
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
    fn new(storage: Storage) -> Self {
        Self {
            storage,
            pushed: Arc::default(),
        }
    }

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
                Ok(Self::new(Storage::Sqlite(
                    SqliteStorage::new(pool).with_config(config),
                )))
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
                Ok(Self::new(Storage::Postgres(
                    PostgresStorage::new(pool).with_config(config),
                )))
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
        Ok(Self::new(Storage::Redis(
            RedisStorage::new(conn).with_config(config),
        )))
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
        match self.storage.clone() {
            Storage::Sqlite(mut s) => s.push_task(task).await.map_err(|e| err(e.to_string())),
            Storage::Postgres(mut s) => s.push_task(task).await.map_err(|e| err(e.to_string())),
            Storage::Redis(mut s) => s.push_task(task).await.map_err(|e| err(e.to_string())),
        }?;
        // A delayed job is found by polling once it is due; waking now would find nothing.
        if delay.is_zero() {
            self.pushed.ring();
        }
        Ok(())
    }

    fn backend(&self) -> &'static str {
        match self.storage {
            Storage::Sqlite(_) => "sqlite",
            Storage::Postgres(_) => "postgres",
            Storage::Redis(_) => "redis",
        }
    }
}

/// A job was pushed by this process. Jobs pushed by another process (an API instance
/// beside a `ruleiq worker`, `ruleiq jobs test`) are still found by polling.
#[derive(Debug, Default)]
pub(crate) struct Pushed {
    rung: AtomicBool,
    waker: AtomicWaker,
}

impl Pushed {
    fn ring(&self) {
        self.rung.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// The worker's poll strategy: look when [`Pushed`] rings (once per ring since it last
/// looked) or when the interval, which backs off while the queue is idle, comes round.
///
/// One strategy rather than apalis's `Strategy` combinator, which passes each poll's
/// outcome to none of the strategies it combines: the interval never learnt that the
/// queue was idle and polled at its shortest, four times as often.
pub(crate) struct PushedOrDue {
    pushed: Arc<Pushed>,
    interval: BackoffStrategy,
}

impl PushedOrDue {
    pub(crate) fn new(pushed: Arc<Pushed>, interval: Duration, backoff: BackoffConfig) -> Self {
        Self {
            pushed,
            interval: BackoffStrategy::new(interval, backoff),
        }
    }
}

impl PollStrategy for PushedOrDue {
    fn poll_drive(&mut self, cx: &mut Context<'_>, snapshot: &PollSnapshot) -> Poll<Option<()>> {
        // Registered before the flag is read, so a ring between the two still wakes us.
        self.pushed.waker.register(cx.waker());
        let rung = self.pushed.rung.swap(false, Ordering::AcqRel);
        // Always driven, so its timer keeps a waker whichever woke us.
        let due = self.interval.poll_drive(cx, snapshot).is_ready();
        if rung || due {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }

    fn on_poll(&mut self, snapshot: &PollSnapshot) {
        self.interval.on_poll(snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleiq_config::{DatabaseSettings, DatabaseUrl};
    use std::task::Waker;

    struct Woken(AtomicBool);

    impl std::task::Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A worker waiting on [`PushedOrDue`] is woken by a push and polls once for it,
    /// long before its interval comes round.
    #[test]
    fn a_push_wakes_the_waiting_worker_once() {
        let pushed = Arc::new(Pushed::default());
        let hour = Duration::from_secs(3600);
        let mut strategy = PushedOrDue::new(pushed.clone(), hour, BackoffConfig::new(hour));
        let woken = Arc::new(Woken(AtomicBool::new(false)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let snapshot = PollSnapshot::default();

        assert!(strategy.poll_drive(&mut cx, &snapshot).is_pending());
        pushed.ring();
        assert!(
            woken.0.load(Ordering::SeqCst),
            "the waiting worker is woken"
        );
        assert_eq!(
            strategy.poll_drive(&mut cx, &snapshot),
            Poll::Ready(Some(()))
        );
        assert!(
            strategy.poll_drive(&mut cx, &snapshot).is_pending(),
            "one poll for one push"
        );
    }

    /// Pushing a job due now rings; a delayed job, found only once due, does not.
    #[tokio::test]
    async fn a_job_due_now_rings_and_a_delayed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let db = ruleiq_db::connect(&DatabaseSettings {
            url: DatabaseUrl::sqlite_file(&dir.path().join("queue.db")),
            connect_timeout: Duration::from_secs(5),
            max_connections: None,
            sqlite_cache_kib: DatabaseSettings::DEFAULT_SQLITE_CACHE_KIB,
        })
        .await
        .unwrap();
        let queue = ApalisQueue::in_database(&db, "test").await.unwrap();
        let rung = |q: &ApalisQueue| q.pushed.rung.swap(false, Ordering::AcqRel);
        let envelope = || JobEnvelope {
            job_id: ruleiq_core::JobId::new(),
            kind: "test".into(),
            payload: serde_json::json!({}),
        };

        queue
            .push(envelope(), Duration::from_secs(60))
            .await
            .unwrap();
        assert!(!rung(&queue));
        // Through a clone, as the jobs service holds it.
        queue
            .clone()
            .push(envelope(), Duration::ZERO)
            .await
            .unwrap();
        assert!(rung(&queue));
    }
}
