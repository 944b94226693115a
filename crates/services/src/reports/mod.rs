//! Reports: documents built by a job from the organisation's own data, kept in the
//! blob store for a retention period, and downloaded or mailed.
//!
//! A request records the report (`queued`) and queues a job; the job moves it through
//! `running` (with a percentage and a note on what it is doing) to `ready`, with the
//! file's size and SHA-256, or to `failed` with the reason. A ready report's file is
//! kept until `expires_at` (`REPORT_RETENTION_DAYS`); the sweep then marks it
//! `expired`, and the evidence store's orphan sweep removes the bytes once nothing
//! else refers to them. Downloads answer 409 while a report is being made and 410
//! once it has expired.

mod build;
pub mod delivery;
pub mod kinds;
pub mod pack;
pub mod schedules;
mod table;

use bytes::Bytes;
use chrono::{DateTime, Duration as Span, Utc};
use futures::Stream;
use ruleiq_core::{Clock, JobId, OrganizationId};
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::report,
    repositories::{
        frameworks as frameworks_repo, identity as identity_repo,
        reports::{self as repo, Stored},
    },
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

use crate::{
    audit::{Audit, AuditEvent, ClientInfo},
    dashboard::Dashboard,
    evidence::store::{BlobStore, StoreError},
    identity::Permit,
    jobs::Jobs,
    paging,
};
pub use kinds::{Format, ReportType, file_name};

/// The job kind that builds a report.
pub const GENERATE_JOB: &str = "report_generate";
/// The job kind that expires reports past their retention.
pub const EXPIRE_JOB: &str = "report_expire";

/// The largest report file kept: far above any real organisation's audit pack of
/// documents, and a bound on what one job may write.
pub const MAX_REPORT_BYTES: u64 = 20 * 1024 * 1024 * 1024;

/// Errors of the report service.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Still being made, or failed: there is no file (yet).
    #[error("{0}")]
    NotReady(String),
    /// Past its retention: the file has been removed.
    #[error("{0}")]
    Expired(String),
    #[error("{0}")]
    Queue(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn invalid(field: &'static str, message: impl Into<String>) -> ReportError {
    ReportError::Invalid {
        field,
        message: message.into(),
    }
}

/// What a member asks for.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReport {
    pub report_type: ReportType,
    pub format: Format,
    /// Limits the report to one framework, where the type allows it.
    pub framework_id: Option<Uuid>,
}

/// A report as shown.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReportView {
    pub id: Uuid,
    pub report_type: String,
    pub format: String,
    pub framework_id: Option<Uuid>,
    /// queued, running, ready, failed or expired.
    pub status: String,
    /// 0–100 while running; 100 when ready.
    pub progress: i32,
    /// What the job is doing now, or why it failed.
    pub progress_note: Option<String>,
    pub file_name: String,
    pub size_bytes: Option<i64>,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: Option<String>,
    pub error: Option<String>,
    pub job_id: Option<Uuid>,
    pub schedule_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When the file will be (or was) removed.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<report::Model> for ReportView {
    fn from(r: report::Model) -> Self {
        Self {
            id: r.id,
            report_type: r.report_type,
            format: r.format,
            framework_id: r.framework_id,
            status: r.status,
            progress: r.progress,
            progress_note: r.progress_note,
            file_name: r.file_name,
            size_bytes: r.size_bytes,
            sha256: r.sha256,
            error: r.error,
            job_id: r.job_id,
            schedule_id: r.schedule_id,
            created_at: r.created_at,
            finished_at: r.finished_at,
            expires_at: r.expires_at,
        }
    }
}

/// A page of reports.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportPage {
    pub items: Vec<ReportView>,
    pub next_cursor: Option<String>,
}

/// A report's file, streamed from storage.
pub struct Download {
    pub file_name: String,
    pub content_type: &'static str,
    pub size: u64,
    pub sha256: String,
    pub body: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, StoreError>> + Send>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("file_name", &self.file_name)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// The job's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateJob {
    pub report_id: Uuid,
}

/// Builds reports: what the job runs.
#[derive(Clone)]
pub struct ReportWriter {
    db: DatabaseConnection,
    store: BlobStore,
    dashboard: Dashboard,
    clock: Arc<dyn Clock>,
    retention: Span,
    /// Mails scheduled reports when ready; without it they are only kept.
    delivery: Option<delivery::Delivery>,
}

impl std::fmt::Debug for ReportWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportWriter").finish_non_exhaustive()
    }
}

impl ReportWriter {
    /// A writer keeping files for `retention_days`.
    #[must_use]
    pub fn new(
        db: DatabaseConnection,
        store: BlobStore,
        dashboard: Dashboard,
        clock: Arc<dyn Clock>,
        retention_days: u32,
    ) -> Self {
        Self {
            db,
            store,
            dashboard,
            clock,
            retention: Span::days(i64::from(retention_days)),
            delivery: None,
        }
    }

    /// Mails each scheduled report to its schedule's recipients through `outbox`, with
    /// a link under `public_url`, and tells the schedule's creator through
    /// `notifications`.
    #[must_use]
    pub fn with_delivery(
        mut self,
        outbox: crate::mail::Outbox,
        public_url: &str,
        notifications: crate::notifications::Notifications,
    ) -> Self {
        self.delivery = Some(delivery::Delivery {
            outbox,
            public_url: public_url.trim_end_matches('/').to_owned(),
            notifications,
        });
        self
    }

    /// Builds one report and stores its file. Safe to run again: a report already
    /// ready is left alone.
    ///
    /// # Errors
    /// A message for the job's record; the report is marked failed by
    /// [`Self::failed`] after the last attempt.
    pub async fn run(&self, job: &GenerateJob) -> Result<serde_json::Value, String> {
        let Some(row) = repo::find_for_job(&self.db, job.report_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            // Deleted while queued: nothing to do.
            return Ok(serde_json::json!({ "skipped": "the report no longer exists" }));
        };
        if row.status == "ready" || row.status == "expired" {
            return Ok(serde_json::json!({ "skipped": "already built" }));
        }
        let (Some(kind), Some(format)) = (
            ReportType::parse(&row.report_type),
            Format::parse(&row.format),
        ) else {
            return Err(format!(
                "unknown report {} / {}",
                row.report_type, row.format
            ));
        };
        repo::start(&self.db, row.id, self.clock.now())
            .await
            .map_err(|e| e.to_string())?;
        let progress = build::Progress::new(self.db.clone(), row.id);
        let ctx = build::Context {
            db: &self.db,
            store: &self.store,
            dashboard: &self.dashboard,
            organization_id: OrganizationId::from(row.organization_id),
            framework_id: row.framework_id,
            now: self.clock.now(),
            clock: self.clock.clone(),
        };
        let file = build::build(&ctx, kind, format, &progress)
            .await
            .map_err(|e| e.to_string())?;
        progress.at(95, "storing the file").await;
        let stored = self
            .store
            .put_stream(file.into_stream(), MAX_REPORT_BYTES)
            .await
            .map_err(|e| format!("storing the report: {e}"))?;
        let now = self.clock.now();
        repo::finish(
            &self.db,
            row.id,
            Stored {
                blob_key: stored.sha256.clone(),
                size_bytes: i64::try_from(stored.size).unwrap_or(i64::MAX),
                sha256: stored.sha256.clone(),
                expires_at: now + self.retention,
            },
            now,
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut result = serde_json::json!({
            "report_id": row.id,
            "size_bytes": stored.size,
            "sha256": stored.sha256,
        });
        if let Some(delivery) = &self.delivery {
            // The report is kept whatever becomes of its mail, and a rerun of this job
            // skips a ready report, so a failure to queue the mail is recorded on the
            // job rather than failing it (only a database error can cause one: the
            // recipients were checked when the schedule was saved).
            let row = repo::find_for_job(&self.db, row.id)
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or(row);
            match delivery
                .scheduled_report(&self.db, &self.store, &row, &stored.sha256, stored.size)
                .await
            {
                Ok(delivery::Mailed::Queued {
                    message_id,
                    attached,
                }) => {
                    result["mail"] =
                        serde_json::json!({ "message_id": message_id, "attached": attached });
                }
                Ok(delivery::Mailed::NotScheduled) => {}
                Err(e) => {
                    tracing::error!(report = %row.id, error = %e, "could not queue a scheduled report's mail");
                    result["mail_error"] = serde_json::json!(e);
                }
            }
        }
        Ok(result)
    }

    /// Marks a report failed after its job's last attempt.
    ///
    /// # Errors
    /// On a database error.
    pub async fn failed(&self, job: &GenerateJob, error: &str) -> Result<(), DbErr> {
        repo::fail(&self.db, job.report_id, error, self.clock.now()).await
    }

    /// Marks every report past its retention `expired`; the orphan sweep removes the
    /// files. Returns how many expired.
    ///
    /// # Errors
    /// On a database error.
    pub async fn expire_due(&self) -> Result<usize, DbErr> {
        let mut expired = 0;
        loop {
            let due = repo::expired_due(&self.db, self.clock.now(), 500).await?;
            if due.is_empty() {
                return Ok(expired);
            }
            for r in due {
                if repo::mark_expired(&self.db, r.id).await? {
                    expired += 1;
                }
            }
        }
    }
}

/// The report service the API and pages use.
#[derive(Clone)]
pub struct Reports {
    db: DatabaseConnection,
    writer: ReportWriter,
    jobs: Jobs,
    audit: Audit,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports").finish_non_exhaustive()
    }
}

impl Reports {
    #[must_use]
    pub fn new(writer: ReportWriter, jobs: Jobs, audit: Audit) -> Self {
        Self {
            db: writer.db.clone(),
            writer,
            jobs,
            audit,
        }
    }

    /// The writer, for the job handlers.
    #[must_use]
    pub fn writer(&self) -> &ReportWriter {
        &self.writer
    }

    /// Checks a request: the format is one the type comes in, and a framework is one
    /// the organisation can see (404 otherwise, as for any object not its own).
    ///
    /// # Errors
    /// [`ReportError::Invalid`]; [`ReportError::NotFound`].
    pub async fn check(&self, org: OrganizationId, req: &CreateReport) -> Result<(), ReportError> {
        if !req.report_type.formats().contains(&req.format) {
            let offered: Vec<&str> = req
                .report_type
                .formats()
                .iter()
                .map(|f| f.as_str())
                .collect();
            return Err(invalid(
                "format",
                format!(
                    "a {} comes as {}",
                    req.report_type.title().to_lowercase(),
                    offered.join(", ")
                ),
            ));
        }
        if let Some(id) = req.framework_id {
            if !req.report_type.takes_framework() {
                return Err(invalid(
                    "framework_id",
                    format!(
                        "a {} covers {}; leave framework_id out",
                        req.report_type.title().to_lowercase(),
                        if req.report_type == ReportType::StatementOfApplicability {
                            "ISO/IEC 27001:2022 Annex A"
                        } else {
                            "the whole organisation"
                        }
                    ),
                ));
            }
            frameworks_repo::find_visible(&self.db, Some(org.as_uuid()), &id.to_string())
                .await?
                .ok_or(ReportError::NotFound("no such framework"))?;
        }
        Ok(())
    }

    /// Records a report and queues the job that builds it.
    ///
    /// # Errors
    /// As [`Self::check`]; [`ReportError::Queue`] when the job cannot be queued.
    pub async fn create(
        &self,
        permit: &Permit<'_>,
        req: CreateReport,
        client: &ClientInfo,
    ) -> Result<(ReportView, JobId), ReportError> {
        let org = permit.organization_id();
        let by = permit.principal().user_id.as_uuid();
        self.check(org, &req).await?;
        let (view, job) = self.start(org, req, Some(by), None).await?;
        self.audit
            .record(
                AuditEvent::new("report.requested", Some(org.as_uuid()), Some(by))
                    .target("report", view.id)
                    .details(serde_json::json!({
                        "report_type": view.report_type,
                        "format": view.format,
                    })),
                client,
            )
            .await?;
        Ok((view, job))
    }

    /// Records and queues a checked request (a member's or a schedule's).
    ///
    /// # Errors
    /// On a database or queue error.
    pub async fn start(
        &self,
        org: OrganizationId,
        req: CreateReport,
        by: Option<Uuid>,
        schedule_id: Option<Uuid>,
    ) -> Result<(ReportView, JobId), ReportError> {
        let now = self.writer.clock.now();
        let organisation = identity_repo::find_organization(&self.db, org.as_uuid())
            .await?
            .map(|o| o.name)
            .unwrap_or_default();
        let row = report::Model {
            id: Uuid::now_v7(),
            organization_id: org.as_uuid(),
            report_type: req.report_type.as_str().to_owned(),
            format: req.format.as_str().to_owned(),
            framework_id: req.framework_id,
            status: "queued".into(),
            job_id: None,
            schedule_id,
            requested_by: by,
            progress: 0,
            progress_note: Some("waiting for a worker".into()),
            file_name: file_name(
                req.report_type,
                req.format,
                &organisation,
                &now.format("%Y-%m-%d").to_string(),
            ),
            blob_key: None,
            size_bytes: None,
            sha256: None,
            error: None,
            created_at: now,
            started_at: None,
            finished_at: None,
            expires_at: None,
        };
        repo::insert(&self.db, row.clone()).await?;
        let job = self
            .jobs
            .enqueue(
                GENERATE_JOB,
                serde_json::to_value(GenerateJob { report_id: row.id }).unwrap_or_default(),
                Some(org.as_uuid()),
                3,
            )
            .await;
        let job = match job {
            Ok(j) => j,
            Err(e) => {
                let reason = format!("could not queue the report: {e}");
                repo::fail(&self.db, row.id, &reason, now).await?;
                return Err(ReportError::Queue(reason));
            }
        };
        repo::set_job(&self.db, row.id, job.as_uuid()).await?;
        let mut view = ReportView::from(row);
        view.job_id = Some(job.as_uuid());
        Ok((view, job))
    }

    /// One of the organisation's reports.
    ///
    /// # Errors
    /// [`ReportError::NotFound`].
    pub async fn get(&self, org: OrganizationId, id: Uuid) -> Result<ReportView, ReportError> {
        repo::find(&self.db, org.as_uuid(), id)
            .await?
            .map(ReportView::from)
            .ok_or(ReportError::NotFound("no such report"))
    }

    /// The organisation's reports, newest first.
    ///
    /// # Errors
    /// [`ReportError::Invalid`] for a cursor this server did not give.
    pub async fn list(
        &self,
        org: OrganizationId,
        limit: Option<u64>,
        cursor: Option<&str>,
    ) -> Result<ReportPage, ReportError> {
        let limit = limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(invalid("limit", "between 1 and 200"));
        }
        let before = match cursor {
            Some(c) => Some(paging::decode(c).ok_or_else(|| invalid("cursor", "not a cursor"))?),
            None => None,
        };
        let mut rows = repo::list(&self.db, org.as_uuid(), before, limit + 1).await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            rows.last().map(|r| paging::encode(r.created_at, r.id))
        } else {
            None
        };
        Ok(ReportPage {
            items: rows.into_iter().map(ReportView::from).collect(),
            next_cursor,
        })
    }

    /// A ready report's file.
    ///
    /// # Errors
    /// [`ReportError::NotFound`]; [`ReportError::NotReady`] (409) while queued or
    /// running, or after it failed; [`ReportError::Expired`] (410) past retention.
    pub async fn download(&self, org: OrganizationId, id: Uuid) -> Result<Download, ReportError> {
        let r = repo::find(&self.db, org.as_uuid(), id)
            .await?
            .ok_or(ReportError::NotFound("no such report"))?;
        let format = Format::parse(&r.format).unwrap_or(Format::Json);
        // Past its retention the file is gone to the reader at once, whether or not
        // the expiry job has run yet.
        let past = r.expires_at.is_some_and(|t| t <= self.writer.clock.now());
        match r.status.as_str() {
            "ready" if !past => {}
            "ready" | "expired" => {
                return Err(ReportError::Expired(format!(
                    "this report's file was removed at the end of its retention period{}; generate it again",
                    r.expires_at
                        .map(|t| format!(" ({})", t.format("%Y-%m-%d")))
                        .unwrap_or_default()
                )));
            }
            "failed" => {
                return Err(ReportError::NotReady(format!(
                    "this report failed: {}; generate it again",
                    r.error.as_deref().unwrap_or("no reason was recorded")
                )));
            }
            _ => {
                return Err(ReportError::NotReady(format!(
                    "this report is still being made ({} %); try again when its status is ready",
                    r.progress
                )));
            }
        }
        let (Some(sha), Some(size)) = (r.sha256.clone(), r.size_bytes) else {
            return Err(ReportError::NotReady("this report has no file".into()));
        };
        let body = self.writer.store.get(&sha).await?;
        Ok(Download {
            file_name: r.file_name,
            content_type: format.content_type(),
            size: u64::try_from(size).unwrap_or(0),
            sha256: sha,
            body: Box::pin(body),
        })
    }

    /// Deletes one of the organisation's reports (its file goes with the next sweep).
    ///
    /// # Errors
    /// [`ReportError::NotFound`].
    pub async fn delete(
        &self,
        permit: &Permit<'_>,
        id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), ReportError> {
        let org = permit.organization_id().as_uuid();
        repo::delete(&self.db, org, id)
            .await?
            .ok_or(ReportError::NotFound("no such report"))?;
        self.audit
            .record(
                AuditEvent::new(
                    "report.deleted",
                    Some(org),
                    Some(permit.principal().user_id.as_uuid()),
                )
                .target("report", id),
                client,
            )
            .await?;
        Ok(())
    }
}
