//! Background jobs: recording, queueing, running with retries.
//!
//! A job is first recorded in `job_runs` (what users and operators read), then handed
//! to a [`JobQueue`] (the transport: apalis over SQLite, PostgreSQL or Redis). A worker
//! receiving a [`JobEnvelope`] calls [`Jobs::execute`], which moves the record through
//! its states, calls the [`JobHandler`] for the kind, and on failure either pushes the
//! job again after an exponential backoff or, after the last attempt, marks it
//! `failed` for good (the dead state).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ruleiq_core::{Clock, JobId};
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::job_run,
    repositories::jobs::{self as repo, JobCounts, NewJob},
};
use serde::{Deserialize, Serialize};
use std::{collections::HashMap, fmt, sync::Arc, time::Duration};
use uuid::Uuid;

/// What travels through the queue: enough to find the record and run the handler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEnvelope {
    pub job_id: JobId,
    pub kind: String,
    pub payload: serde_json::Value,
}

/// A queue transport failure.
#[derive(Debug, thiserror::Error)]
#[error("job queue ({backend}): {message}")]
pub struct QueueError {
    pub backend: &'static str,
    pub message: String,
}

/// The transport that carries envelopes to workers.
#[async_trait]
pub trait JobQueue: Send + Sync + fmt::Debug {
    /// Queues `envelope` to be run no sooner than `delay` from now.
    async fn push(&self, envelope: JobEnvelope, delay: Duration) -> Result<(), QueueError>;

    /// The storage's name, for health and logs: `sqlite`, `postgres` or `redis`.
    fn backend(&self) -> &'static str;
}

/// Which delivery of which job a handler is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub job_id: JobId,
    /// 1 for the first attempt.
    pub number: u32,
    pub max_attempts: u32,
}

/// A job kind's work. Returns the result to record, or an error message.
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// Runs one attempt.
    async fn run(
        &self,
        attempt: Attempt,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, String>;

    /// Called once a queued job of this kind has been cancelled, so that what it was
    /// to make (a report, a policy) is marked as such rather than looking queued for
    /// ever. Does nothing by default.
    async fn cancelled(&self, _payload: serde_json::Value) -> Result<(), String> {
        Ok(())
    }
}

/// When to try a failed job again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay before the second attempt; each later one doubles it.
    pub base_delay: Duration,
    /// The longest delay between attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// The delay after attempt number `attempt` (1-based) has failed.
    #[must_use]
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Errors of the jobs service.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("job kind `{0}` is not known to this server")]
    UnknownKind(String),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("no such job")]
    NotFound,
    /// The job is in a state the action does not apply to.
    #[error("{0}")]
    Conflict(String),
}

/// The most a worker waits for a retry that arrived before its due time.
const MAX_EARLY_DELIVERY: Duration = Duration::from_secs(2);

/// How often a running job's record is refreshed.
const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// A `running` record not refreshed for this long belongs to a worker that died (a
/// `kill -9`, a lost machine): the queue's next delivery of it starts a new attempt.
/// Shorter than the queue's own orphan timeout (`ruleiq_jobs::queue`, 15 s), so that
/// delivery is never ignored, and several refreshes long, so a live worker is never
/// taken over.
pub const ORPHANED_AFTER: Duration = Duration::from_secs(8);

/// The default number of attempts a job gets.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 3;

/// A job's status as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStatus {
    pub id: JobId,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub error: Option<String>,
    pub result: Option<serde_json::Value>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<job_run::Model> for JobStatus {
    fn from(m: job_run::Model) -> Self {
        Self {
            id: m.id.into(),
            kind: m.kind,
            status: m.status,
            attempts: m.attempts,
            max_attempts: m.max_attempts,
            error: m.error,
            result: m.result,
            next_attempt_at: m.next_attempt_at,
            created_at: m.created_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
        }
    }
}

/// The jobs service: shared by the API (enqueue, read) and the workers (execute).
#[derive(Clone)]
pub struct Jobs {
    db: DatabaseConnection,
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
    handlers: Arc<HashMap<String, Arc<dyn JobHandler>>>,
    retry: RetryPolicy,
}

impl fmt::Debug for Jobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jobs")
            .field("queue", &self.queue)
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Jobs {
    /// A service over `queue`, running the given handlers.
    #[must_use]
    pub fn new(
        db: DatabaseConnection,
        queue: Arc<dyn JobQueue>,
        clock: Arc<dyn Clock>,
        handlers: HashMap<String, Arc<dyn JobHandler>>,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            db,
            queue,
            clock,
            handlers: Arc::new(handlers),
            retry,
        }
    }

    /// The transport's name.
    #[must_use]
    pub fn queue_backend(&self) -> &'static str {
        self.queue.backend()
    }

    /// Records a job and queues it.
    ///
    /// # Errors
    /// [`JobError::UnknownKind`] for a kind with no handler; a queue or database error
    /// otherwise. When queueing fails the record is marked `failed` with the reason, so
    /// no record claims to be queued that no worker will ever see.
    pub async fn enqueue(
        &self,
        kind: &str,
        payload: serde_json::Value,
        organization_id: Option<Uuid>,
        max_attempts: i32,
    ) -> Result<JobId, JobError> {
        if !self.handlers.contains_key(kind) {
            return Err(JobError::UnknownKind(kind.to_owned()));
        }
        let id = JobId::new();
        repo::insert(
            &self.db,
            NewJob {
                id,
                organization_id,
                kind: kind.to_owned(),
                payload: payload.clone(),
                max_attempts: max_attempts.max(1),
            },
            self.clock.now(),
        )
        .await?;
        let envelope = JobEnvelope {
            job_id: id,
            kind: kind.to_owned(),
            payload,
        };
        if let Err(e) = self.queue.push(envelope, Duration::ZERO).await {
            repo::fail(&self.db, id, &e.to_string(), self.clock.now()).await?;
            return Err(e.into());
        }
        Ok(id)
    }

    /// One job's status.
    ///
    /// # Errors
    /// On a database error.
    pub async fn get(&self, id: JobId) -> Result<Option<JobStatus>, JobError> {
        Ok(repo::find(&self.db, id).await?.map(JobStatus::from))
    }

    /// One of the organisation's jobs.
    ///
    /// # Errors
    /// On a database error.
    pub async fn get_in_org(
        &self,
        organization_id: Uuid,
        id: JobId,
    ) -> Result<Option<JobStatus>, JobError> {
        Ok(repo::find_in_org(&self.db, organization_id, id)
            .await?
            .map(JobStatus::from))
    }

    /// The organisation's jobs, newest first.
    ///
    /// # Errors
    /// On a database error.
    pub async fn list_in_org(
        &self,
        organization_id: Uuid,
        status: Option<&str>,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<JobStatus>, JobError> {
        Ok(
            repo::list_in_org(&self.db, organization_id, status, before, limit)
                .await?
                .into_iter()
                .map(JobStatus::from)
                .collect(),
        )
    }

    /// Cancels a queued job (of `organization_id`, when given): a worker that
    /// receives it later leaves it alone.
    ///
    /// # Errors
    /// [`JobError::NotFound`]; [`JobError::Conflict`] when it is running or finished.
    pub async fn cancel(
        &self,
        organization_id: Option<Uuid>,
        id: JobId,
    ) -> Result<JobStatus, JobError> {
        let record = self.scoped(organization_id, id).await?;
        if !repo::cancel(&self.db, id, self.clock.now()).await? {
            return Err(JobError::Conflict(format!(
                "the job is {}; only a queued job can be cancelled",
                record.status
            )));
        }
        if let Some(handler) = self.handlers.get(&record.kind)
            && let Err(e) = handler.cancelled(record.payload.clone()).await
        {
            // The job stays cancelled; what it was making shows its last state.
            tracing::warn!(job = %id, kind = %record.kind, error = %e, "could not record a cancelled job's outcome");
        }
        repo::find(&self.db, id)
            .await?
            .map(JobStatus::from)
            .ok_or(JobError::NotFound)
    }

    /// Runs a failed or cancelled job again, with a fresh set of attempts.
    ///
    /// # Errors
    /// [`JobError::NotFound`]; [`JobError::Conflict`] when it is not failed or
    /// cancelled; a queue error.
    pub async fn retry(
        &self,
        organization_id: Option<Uuid>,
        id: JobId,
    ) -> Result<JobStatus, JobError> {
        let record = self.scoped(organization_id, id).await?;
        let Some(again) = repo::requeue(&self.db, id, self.clock.now()).await? else {
            return Err(JobError::Conflict(format!(
                "the job is {}; only a failed or cancelled job can be retried",
                record.status
            )));
        };
        let envelope = JobEnvelope {
            job_id: id,
            kind: again.kind.clone(),
            payload: again.payload.clone(),
        };
        if let Err(e) = self.queue.push(envelope, Duration::ZERO).await {
            repo::fail(&self.db, id, &e.to_string(), self.clock.now()).await?;
            return Err(e.into());
        }
        Ok(JobStatus::from(again))
    }

    async fn scoped(
        &self,
        organization_id: Option<Uuid>,
        id: JobId,
    ) -> Result<job_run::Model, JobError> {
        let found = match organization_id {
            Some(org) => repo::find_in_org(&self.db, org, id).await?,
            None => repo::find(&self.db, id).await?,
        };
        found.ok_or(JobError::NotFound)
    }

    /// Counts by state.
    ///
    /// # Errors
    /// On a database error.
    pub async fn counts(&self) -> Result<JobCounts, JobError> {
        Ok(repo::counts(&self.db).await?)
    }

    /// Runs one delivery of a job: the worker's whole job.
    ///
    /// Returns `Ok` whether the handler succeeded or failed, because retries are ours
    /// (with backoff and a status record), not the transport's. An `Err` means the
    /// record could not be updated, and the transport should deliver again.
    ///
    /// # Errors
    /// On a database or queue error while recording the outcome.
    pub async fn execute(&self, envelope: JobEnvelope) -> Result<(), JobError> {
        let id = envelope.job_id;
        // Some transports schedule in whole seconds and may deliver a retry early;
        // keep the backoff the record promised.
        if let Some(due) = repo::find(&self.db, id)
            .await?
            .and_then(|r| r.next_attempt_at)
        {
            let early = (due - self.clock.now()).to_std().unwrap_or_default();
            if !early.is_zero() {
                tokio::time::sleep(early.min(MAX_EARLY_DELIVERY)).await;
            }
        }
        let now = self.clock.now();
        let orphaned_before = now - chrono::Duration::from_std(ORPHANED_AFTER).unwrap_or_default();
        let Some(record) = repo::start_attempt(&self.db, id, now, orphaned_before).await? else {
            tracing::debug!(job_id = %id, "job is not queued any more; delivery ignored");
            return Ok(());
        };
        let attempt = u32::try_from(record.attempts).unwrap_or(u32::MAX);
        let context = Attempt {
            job_id: id,
            number: attempt,
            max_attempts: u32::try_from(record.max_attempts).unwrap_or(1),
        };
        // While the handler runs, the record says so every few seconds; a record that
        // stops saying so belongs to a worker that died, and a re-delivery takes over.
        // The refresher stops with this attempt, also when the attempt itself is
        // dropped (a worker shutting down): otherwise it would keep an abandoned record
        // looking alive and no other worker could take it over.
        let keep_alive = {
            let (db, clock) = (self.db.clone(), Arc::clone(&self.clock));
            AbortOnDrop(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(KEEP_ALIVE).await;
                    if let Err(e) = repo::keep_alive(&db, id, clock.now()).await {
                        tracing::warn!(job_id = %id, error = %e, "could not refresh a running job");
                    }
                }
            }))
        };
        let outcome = match self.handlers.get(&envelope.kind) {
            Some(handler) => {
                // A panicking handler must not take the worker down or leave the record
                // `running` for ever: run it as a task and treat a panic as a failure.
                let handler = Arc::clone(handler);
                let payload = envelope.payload.clone();
                match tokio::spawn(async move { handler.run(context, payload).await }).await {
                    Ok(result) => result,
                    Err(join) => Err(format!("the job panicked: {join}")),
                }
            }
            None => Err(format!("no handler for job kind `{}`", envelope.kind)),
        };
        drop(keep_alive);
        match outcome {
            Ok(result) => {
                tracing::info!(job_id = %id, kind = %envelope.kind, attempt, "job succeeded");
                repo::succeed(&self.db, id, result, self.clock.now()).await?;
            }
            Err(error) if record.attempts < record.max_attempts => {
                let delay = self.retry.delay_after(attempt);
                tracing::warn!(job_id = %id, kind = %envelope.kind, attempt, %error, retry_in_ms = delay.as_millis() as u64, "job failed; will retry");
                let now = self.clock.now();
                let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
                repo::retry_later(&self.db, id, &error, next, now).await?;
                self.queue.push(envelope, delay).await?;
            }
            Err(error) => {
                tracing::error!(job_id = %id, kind = %envelope.kind, attempt, %error, "job failed on its last attempt");
                repo::fail(&self.db, id, &error, self.clock.now()).await?;
            }
        }
        Ok(())
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(10),
        };
        assert_eq!(p.delay_after(1), Duration::from_secs(2));
        assert_eq!(p.delay_after(2), Duration::from_secs(4));
        assert_eq!(p.delay_after(3), Duration::from_secs(8));
        assert_eq!(p.delay_after(4), Duration::from_secs(10));
        assert_eq!(p.delay_after(60), Duration::from_secs(10));
    }
}
