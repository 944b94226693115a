//! Evidence: files and links that show a control is in place, with their versions,
//! the controls they back (in any number of frameworks), an approval workflow and
//! expiry.
//!
//! Invariants:
//! - bytes are stored (hashed while they stream, checked against their extension)
//!   before any row refers to them, so nothing half-written is ever visible;
//! - every version keeps its SHA-256, size, uploader and time, and blobs are named by
//!   their hash, so one file uploaded fifty times is stored once;
//! - status changes only through [`workflow::Status::apply`], guarded by a
//!   compare-and-set on the stored status, and each is written to the item's history
//!   and the audit log;
//! - the approver is never the person who submitted;
//! - delete is soft: the row stays for the audit trail, and the item disappears from
//!   every read.

pub mod demo;
pub mod extract;
pub mod jobs;
pub mod sniff;
pub mod store;
pub mod workflow;

use bytes::Bytes;
use chrono::{DateTime, Days, NaiveDate, Utc};
use futures::Stream;
use ruleiq_core::{Clock, OrganizationId, UserId};
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::{evidence_event, evidence_item, evidence_version},
    repositories::evidence as repo,
};
use serde::Serialize;
use std::{collections::BTreeMap, sync::Arc};
use uuid::Uuid;

use crate::{
    audit::{Audit, AuditEvent, ClientInfo},
    identity::Permit,
    jobs::Jobs,
    notifications::{
        Notifications,
        producers::{Decision, Review, Reviewed},
    },
    search::{SearchDocument, SearchIndex, SearchKind},
};
use store::{BlobStore, StoreError};
use workflow::{Action, Status};

/// The job kind that extracts a version's text.
pub const EXTRACT_JOB: &str = "evidence_extract";
/// The job kind that expires approved evidence past its date.
pub const EXPIRE_JOB: &str = "evidence_expire";
/// The job kind that removes abandoned uploads and unreferenced blobs.
pub const SWEEP_JOB: &str = "evidence_sweep";

/// Kinds of evidence.
pub const TYPES: [&str; 9] = [
    "policy",
    "procedure",
    "log",
    "certificate",
    "configuration",
    "screenshot",
    "report",
    "training_record",
    "other",
];

/// Longest title, in characters.
const MAX_TITLE: usize = 300;
/// Longest description or comment, in characters.
const MAX_TEXT: usize = 10_000;
/// Most controls one item may back.
pub const MAX_CONTROLS: usize = 500;
/// How much extracted text goes into the search index (all of it is kept for the
/// assistant).
const SEARCH_TEXT: usize = 20_000;

/// Why an evidence operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The upload itself is malformed (no file, two files, a broken body).
    #[error("{0}")]
    BadUpload(String),
    #[error("the file is larger than the limit of {limit} bytes (MAX_UPLOAD_SIZE)")]
    TooLarge { limit: u64 },
    #[error("{0}")]
    Unsupported(String),
    #[error("the file is empty")]
    Empty,
    #[error("storage: {0}")]
    Store(StoreError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl From<StoreError> for EvidenceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::TooLarge { limit } => Self::TooLarge { limit },
            StoreError::Empty => Self::Empty,
            StoreError::Refused(reason) => Self::Unsupported(reason),
            StoreError::Source(reason) => {
                Self::BadUpload(format!("the upload broke off: {reason}"))
            }
            other => Self::Store(other),
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> EvidenceError {
    EvidenceError::Invalid {
        field,
        message: message.into(),
    }
}

/// A file that has been stored and checked, not yet referred to by any row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    pub file_name: String,
    pub extension: String,
    pub content_type: String,
    pub sha256: String,
    pub size_bytes: u64,
}

/// The fields of a new item.
#[derive(Debug, Clone, Default)]
pub struct NewEvidence {
    pub title: String,
    pub description: Option<String>,
    pub evidence_type: String,
    pub url: Option<String>,
    pub control_ids: Vec<Uuid>,
    pub effective_date: Option<NaiveDate>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A change to an item's fields; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct EvidenceChange {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub evidence_type: Option<String>,
    pub effective_date: Option<Option<NaiveDate>>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

/// A file as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FileView {
    pub name: String,
    pub size_bytes: u64,
    pub content_type: String,
    pub sha256: String,
}

/// A control an item backs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ControlRef {
    pub id: Uuid,
    #[serde(rename = "ref")]
    pub reference: String,
    pub title: String,
    pub framework_id: Uuid,
    pub framework_slug: String,
}

/// An item as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EvidenceView {
    pub id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub evidence_type: String,
    /// `file` or `link`.
    pub kind: String,
    pub url: Option<String>,
    pub status: Status,
    /// 0 for a link.
    pub version: i32,
    pub file: Option<FileView>,
    pub controls: Vec<ControlRef>,
    pub effective_date: Option<NaiveDate>,
    pub expires_at: Option<DateTime<Utc>>,
    /// `pending`, `done`, `failed` or `not_applicable`.
    pub extraction: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_by: Option<Uuid>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_comment: Option<String>,
}

/// One version of an item's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = EvidenceVersionView)]
pub struct VersionView {
    pub version: i32,
    pub file: FileView,
    pub uploaded_by: Option<Uuid>,
    pub uploaded_at: DateTime<Utc>,
    pub extraction: String,
    pub extraction_error: Option<String>,
}

/// One entry of an item's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub actor_id: Option<Uuid>,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub status: Option<Status>,
    pub evidence_type: Option<String>,
    pub control_id: Option<Uuid>,
    pub framework_id: Option<Uuid>,
    pub q: Option<String>,
    pub expiring_within_days: Option<u32>,
    /// Only items submitted by someone else, awaiting this user's decision.
    pub awaiting_approval_by: Option<Uuid>,
    pub cursor: Option<String>,
    pub limit: u64,
}

/// A page of items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<EvidenceView>,
    pub next_cursor: Option<String>,
}

/// `GET /evidence/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Stats {
    pub total: i64,
    pub by_status: BTreeMap<String, i64>,
    pub by_type: BTreeMap<String, i64>,
    pub expiring_30d: u64,
    /// Controls with approved, unexpired evidence, in the frameworks counted below.
    pub controls_covered: i64,
    /// Controls of every framework the organisation has assessed or linked evidence to.
    pub controls_total: i64,
}

/// The evidence service.
#[derive(Debug, Clone)]
pub struct Evidence {
    db: DatabaseConnection,
    store: BlobStore,
    jobs: Jobs,
    audit: Audit,
    search: Arc<dyn SearchIndex>,
    clock: Arc<dyn Clock>,
    max_upload_size: u64,
    allowed_extensions: Arc<Vec<String>>,
    /// Stats by organisation, with the data version they were computed at.
    kept_stats: Arc<std::sync::Mutex<std::collections::HashMap<Uuid, (String, Stats)>>>,
    computing_stats: Arc<tokio::sync::Mutex<()>>,
    notifications: Notifications,
}

impl Evidence {
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: DatabaseConnection,
        store: BlobStore,
        jobs: Jobs,
        audit: Audit,
        search: Arc<dyn SearchIndex>,
        clock: Arc<dyn Clock>,
        max_upload_size: u64,
        allowed_extensions: Vec<String>,
        notifications: Notifications,
    ) -> Self {
        Self {
            db,
            store,
            jobs,
            audit,
            search,
            clock,
            max_upload_size,
            allowed_extensions: Arc::new(allowed_extensions),
            kept_stats: Arc::default(),
            computing_stats: Arc::default(),
            notifications,
        }
    }

    /// The blob store, for the verification command and health checks.
    #[must_use]
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// The search index evidence is written to.
    #[must_use]
    pub fn search(&self) -> &dyn SearchIndex {
        self.search.as_ref()
    }

    /// `MAX_UPLOAD_SIZE`.
    #[must_use]
    pub fn max_upload_size(&self) -> u64 {
        self.max_upload_size
    }

    /// Stores an uploaded file as it streams: the name is made safe, the extension
    /// must be allowed, the content must agree with it, and the size must stay within
    /// `MAX_UPLOAD_SIZE`. Nothing refers to the stored bytes yet; a file no row ever
    /// claims is removed by the orphan sweep.
    ///
    /// # Errors
    /// [`EvidenceError::Unsupported`], [`EvidenceError::TooLarge`],
    /// [`EvidenceError::Empty`], [`EvidenceError::BadUpload`] when the body breaks.
    pub async fn store_upload<S, E>(
        &self,
        file_name: &str,
        body: S,
    ) -> Result<UploadedFile, EvidenceError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let file_name = sniff::sanitize_file_name(file_name);
        let extension = sniff::extension_of(&file_name).ok_or_else(|| {
            EvidenceError::Unsupported(format!(
                "the file name has no extension; accepted: {}",
                self.allowed_extensions.join(", ")
            ))
        })?;
        let inspector =
            sniff::Inspector::new(&extension, &self.allowed_extensions).map_err(|r| {
                EvidenceError::Unsupported(format!(
                    "{r}; accepted: {}",
                    self.allowed_extensions.join(", ")
                ))
            })?;
        let mut inspector = Some(inspector);
        let mut verdict = None;
        let mut watch = |chunk: Option<&[u8]>| -> Result<(), String> {
            match chunk {
                Some(bytes) => {
                    if let Some(i) = inspector.as_mut() {
                        i.update(bytes);
                        if let Some(r) = i.early_refusal() {
                            return Err(r.to_string());
                        }
                    }
                    Ok(())
                }
                None => match inspector.take().map(sniff::Inspector::finish) {
                    Some(Ok(v)) => {
                        verdict = Some(v.content_type);
                        Ok(())
                    }
                    Some(Err(r)) => Err(r.to_string()),
                    None => Ok(()),
                },
            }
        };
        let stored = self
            .store
            .put_watched(body, self.max_upload_size, &mut watch)
            .await?;
        Ok(UploadedFile {
            file_name,
            extension,
            content_type: verdict.unwrap_or("application/octet-stream").to_owned(),
            sha256: stored.sha256,
            size_bytes: stored.size,
        })
    }

    /// Creates an item from a stored file, or a link when `file` is `None` (then
    /// `url` is required).
    ///
    /// # Errors
    /// [`EvidenceError::Invalid`] naming the field; a database error.
    pub async fn create(
        &self,
        permit: &Permit<'_>,
        new: NewEvidence,
        file: Option<UploadedFile>,
        client: &ClientInfo,
    ) -> Result<EvidenceView, EvidenceError> {
        let org = permit.organization_id().as_uuid();
        let by = permit.principal().user_id.as_uuid();
        let title = clean_title(&new.title)?;
        let description = clean_text("description", new.description)?;
        let evidence_type = clean_type(&new.evidence_type)?;
        let url = match (&file, new.url) {
            (Some(_), Some(_)) => {
                return Err(invalid("url", "send either a file or a url, not both"));
            }
            (None, None) => return Err(invalid("url", "a link needs a url; or upload a file")),
            (None, Some(u)) => Some(clean_url(&u)?),
            (Some(_), None) => None,
        };
        let controls = self.check_controls(org, &new.control_ids).await?;
        let now = self.clock.now();
        check_dates(new.effective_date, new.expires_at, now)?;
        let id = Uuid::now_v7();
        let extraction = match &file {
            Some(f) if extract::Format::from_extension(&f.extension).is_some() => "pending",
            _ => "not_applicable",
        };
        let item = evidence_item::Model {
            id,
            organization_id: org,
            title,
            description,
            evidence_type,
            kind: if file.is_some() { "file" } else { "link" }.to_owned(),
            url,
            status: Status::Draft.as_str().to_owned(),
            current_version: i32::from(file.is_some()),
            file_name: file.as_ref().map(|f| f.file_name.clone()),
            content_type: file.as_ref().map(|f| f.content_type.clone()),
            size_bytes: file.as_ref().map(|f| size_i64(f.size_bytes)),
            sha256: file.as_ref().map(|f| f.sha256.clone()),
            effective_date: new.effective_date,
            expires_at: new.expires_at,
            extraction: extraction.to_owned(),
            created_by: Some(by),
            submitted_by: None,
            submitted_at: None,
            decided_by: None,
            decided_at: None,
            decision_comment: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        let version = file
            .as_ref()
            .map(|f| version_row(org, id, 1, f, by, now, extraction));
        let event = event_row(
            org,
            id,
            "created",
            None,
            Some(Status::Draft),
            Some(by),
            None,
            now,
        );
        let txn = ruleiq_db::begin(&self.db).await?;
        repo::insert(&txn, item.clone(), version, &controls, event).await?;
        txn.commit().await?;
        self.audit
            .record(
                AuditEvent::new("evidence.created", Some(org), Some(by))
                    .target("evidence", id)
                    .details(serde_json::json!({
                        "title": item.title,
                        "kind": item.kind,
                        "sha256": item.sha256,
                        "size_bytes": item.size_bytes,
                        "controls": controls.len(),
                    })),
                client,
            )
            .await?;
        self.after_file_change(&item, file.as_ref()).await;
        self.view(org, item).await
    }

    /// Adds a new version of an item's file; the item returns to `draft`.
    ///
    /// # Errors
    /// [`EvidenceError::NotFound`] for an item not in the organisation (or deleted),
    /// [`EvidenceError::Conflict`] for a link or a concurrent new version.
    pub async fn add_version(
        &self,
        permit: &Permit<'_>,
        id: Uuid,
        file: UploadedFile,
        client: &ClientInfo,
    ) -> Result<EvidenceView, EvidenceError> {
        let org = permit.organization_id().as_uuid();
        let by = permit.principal().user_id.as_uuid();
        let before = self.find(org, id).await?;
        if before.kind != "file" {
            return Err(EvidenceError::Conflict(
                "this evidence is a link; it has no file to replace".into(),
            ));
        }
        let from = stored_status(&before);
        let to = from
            .apply(Action::Revise)
            .map_err(|e| EvidenceError::Conflict(e.0))?;
        let now = self.clock.now();
        let number = before.current_version + 1;
        let extraction = if extract::Format::from_extension(&file.extension).is_some() {
            "pending"
        } else {
            "not_applicable"
        };
        let mut row = before.clone();
        row.current_version = number;
        row.file_name = Some(file.file_name.clone());
        row.content_type = Some(file.content_type.clone());
        row.size_bytes = Some(size_i64(file.size_bytes));
        row.sha256 = Some(file.sha256.clone());
        row.extraction = extraction.to_owned();
        row.status = to.as_str().to_owned();
        clear_review(&mut row);
        row.updated_at = now;
        let txn = ruleiq_db::begin(&self.db).await?;
        if !repo::update_if_unchanged(&txn, &before, row.clone()).await? {
            return Err(EvidenceError::Conflict(
                "another version was added at the same moment; reload and try again".into(),
            ));
        }
        repo::insert_version(
            &txn,
            version_row(org, id, number, &file, by, now, extraction),
        )
        .await?;
        repo::insert_event(
            &txn,
            event_row(
                org,
                id,
                "new_version",
                Some(from),
                Some(to),
                Some(by),
                Some(format!("version {number}: {}", file.file_name)),
                now,
            ),
        )
        .await?;
        txn.commit().await?;
        self.audit
            .record(
                AuditEvent::new("evidence.version_added", Some(org), Some(by))
                    .target("evidence", id)
                    .details(serde_json::json!({
                        "version": number,
                        "sha256": file.sha256,
                        "size_bytes": file.size_bytes,
                        "from": from.as_str(),
                        "to": to.as_str(),
                    })),
                client,
            )
            .await?;
        self.after_file_change(&row, Some(&file)).await;
        self.view(org, row).await
    }

    /// Queues text extraction for a new file and refreshes the search entry. Neither
    /// is allowed to fail the request that stored the file: a job that cannot be
    /// queued is logged and the item keeps `extraction: pending` until
    /// `ruleiq evidence reextract` (or the next version) queues it again.
    async fn after_file_change(&self, item: &evidence_item::Model, file: Option<&UploadedFile>) {
        self.index(item, None).await;
        if item.extraction == "pending"
            && let Some(f) = file
            && let Err(e) = self
                .jobs
                .enqueue(
                    EXTRACT_JOB,
                    serde_json::json!({
                        "evidence_id": item.id,
                        "version": item.current_version,
                        "extension": f.extension,
                    }),
                    Some(item.organization_id),
                    2,
                )
                .await
        {
            tracing::warn!(error = %e, evidence = %item.id, "could not queue text extraction");
        }
    }

    async fn index(&self, item: &evidence_item::Model, text: Option<&str>) {
        if let Err(e) = self.search.index(vec![search_document(item, text)]).await {
            tracing::warn!(error = %e, evidence = %item.id, "could not index evidence for search");
        }
    }

    /// One item.
    ///
    /// # Errors
    /// [`EvidenceError::NotFound`] for an item not in the organisation, or deleted.
    pub async fn get(&self, org: OrganizationId, id: Uuid) -> Result<EvidenceView, EvidenceError> {
        let org = org.as_uuid();
        let row = self.find(org, id).await?;
        self.view(org, row).await
    }

    async fn find(&self, org: Uuid, id: Uuid) -> Result<evidence_item::Model, EvidenceError> {
        repo::find(&self.db, org, id)
            .await?
            .ok_or(EvidenceError::NotFound(
                "no such evidence in your organisation",
            ))
    }

    async fn view(
        &self,
        org: Uuid,
        row: evidence_item::Model,
    ) -> Result<EvidenceView, EvidenceError> {
        let mut views = self.views(org, vec![row]).await?;
        views
            .pop()
            .ok_or(EvidenceError::NotFound("no such evidence"))
    }

    async fn views(
        &self,
        org: Uuid,
        rows: Vec<evidence_item::Model>,
    ) -> Result<Vec<EvidenceView>, EvidenceError> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut links: BTreeMap<Uuid, Vec<ControlRef>> = BTreeMap::new();
        for l in repo::linked_controls(&self.db, org, &ids).await? {
            links.entry(l.evidence_id).or_default().push(ControlRef {
                id: l.control_id,
                reference: l.reference,
                title: l.title,
                framework_id: l.framework_id,
                framework_slug: l.framework_slug,
            });
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let controls = links.remove(&r.id).unwrap_or_default();
                item_view(r, controls)
            })
            .collect())
    }

    /// A page of the organisation's items, newest first.
    ///
    /// # Errors
    /// [`EvidenceError::Invalid`] for a bad cursor; a database error.
    pub async fn list(&self, org: OrganizationId, query: ListQuery) -> Result<Page, EvidenceError> {
        let org = org.as_uuid();
        let now = self.clock.now();
        let before = query.cursor.as_deref().map(parse_cursor).transpose()?;
        let limit = query.limit.clamp(1, 200);
        let text = query
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty());
        if text.as_ref().is_some_and(|q| q.chars().count() > 200) {
            return Err(invalid("q", "must be at most 200 characters"));
        }
        if let Some(t) = &query.evidence_type {
            clean_type(t)?;
        }
        let filter = repo::ListFilter {
            status: query.status.map(|s| s.as_str().to_owned()),
            evidence_type: query.evidence_type,
            control_id: query.control_id,
            framework_id: query.framework_id,
            text,
            expiring_before: query
                .expiring_within_days
                .map(|d| now + chrono::Duration::days(i64::from(d.min(3650)))),
            awaiting_approval_by: query.awaiting_approval_by,
            before,
            limit: limit + 1,
        };
        let mut rows = repo::list(&self.db, org, &filter).await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            rows.last().map(|r| cursor_of(r.created_at, r.id))
        } else {
            None
        };
        Ok(Page {
            items: self.views(org, rows).await?,
            next_cursor,
        })
    }

    /// Changes an item's fields. A change to an item under review or approved sends
    /// it back to `draft`: what the approver judged is no longer what is there.
    ///
    /// # Errors
    /// [`EvidenceError::NotFound`], [`EvidenceError::Invalid`], or
    /// [`EvidenceError::Conflict`] when the item changed state meanwhile.
    pub async fn update(
        &self,
        permit: &Permit<'_>,
        id: Uuid,
        change: EvidenceChange,
        client: &ClientInfo,
    ) -> Result<EvidenceView, EvidenceError> {
        let org = permit.organization_id().as_uuid();
        let by = permit.principal().user_id.as_uuid();
        let before = self.find(org, id).await?;
        let mut row = before.clone();
        if let Some(t) = change.title {
            row.title = clean_title(&t)?;
        }
        if let Some(d) = change.description {
            row.description = clean_text("description", d)?;
        }
        if let Some(t) = change.evidence_type {
            row.evidence_type = clean_type(&t)?;
        }
        if let Some(d) = change.effective_date {
            row.effective_date = d;
        }
        if let Some(e) = change.expires_at {
            row.expires_at = e;
        }
        let now = self.clock.now();
        if row.expires_at != before.expires_at || row.effective_date != before.effective_date {
            check_dates(row.effective_date, row.expires_at, now)?;
        }
        if row == before {
            return self.view(org, row).await;
        }
        let from = stored_status(&before);
        let to = if matches!(from, Status::Submitted | Status::Approved | Status::Expired) {
            from.apply(Action::Revise)
                .map_err(|e| EvidenceError::Conflict(e.0))?
        } else {
            from
        };
        row.status = to.as_str().to_owned();
        if to != from {
            clear_review(&mut row);
        }
        row.updated_at = now;
        let txn = ruleiq_db::begin(&self.db).await?;
        if !repo::update_if_unchanged(&txn, &before, row.clone()).await? {
            return Err(EvidenceError::Conflict(
                "the evidence changed while you edited it; reload and try again".into(),
            ));
        }
        repo::insert_event(
            &txn,
            event_row(org, id, "edited", Some(from), Some(to), Some(by), None, now),
        )
        .await?;
        txn.commit().await?;
        self.audit
            .record(
                AuditEvent::new("evidence.updated", Some(org), Some(by))
                    .target("evidence", id)
                    .details(serde_json::json!({
                        "from": from.as_str(),
                        "to": to.as_str(),
                        "fields": changed_fields(&before, &row),
                    })),
                client,
            )
            .await?;
        self.index(&row, None).await;
        self.view(org, row).await
    }

    /// Replaces the controls an item backs.
    ///
    /// # Errors
    /// [`EvidenceError::Invalid`] for controls that do not exist (none is linked).
    pub async fn set_controls(
        &self,
        permit: &Permit<'_>,
        id: Uuid,
        control_ids: Vec<Uuid>,
        client: &ClientInfo,
    ) -> Result<EvidenceView, EvidenceError> {
        let org = permit.organization_id().as_uuid();
        let by = permit.principal().user_id.as_uuid();
        let before = self.find(org, id).await?;
        let mut row = before.clone();
        let controls = self.check_controls(org, &control_ids).await?;
        let now = self.clock.now();
        row.updated_at = now;
        let txn = ruleiq_db::begin(&self.db).await?;
        repo::set_controls(&txn, org, id, &controls, now).await?;
        repo::update_if_unchanged(&txn, &before, row.clone()).await?;
        txn.commit().await?;
        self.audit
            .record(
                AuditEvent::new("evidence.controls_set", Some(org), Some(by))
                    .target("evidence", id)
                    .details(serde_json::json!({ "controls": controls })),
                client,
            )
            .await?;
        self.view(org, row).await
    }

    /// `submit`, `approve` or `reject`, with an optional comment (required to reject).
    /// The approver must not be the person who submitted (or, failing that, created)
    /// the item.
    ///
    /// # Errors
    /// [`EvidenceError::Conflict`] for an illegal move or a self-approval;
    /// [`EvidenceError::Invalid`] for a missing or overlong comment.
    pub async fn transition(
        &self,
        permit: &Permit<'_>,
        id: Uuid,
        action: Action,
        comment: Option<String>,
        client: &ClientInfo,
    ) -> Result<EvidenceView, EvidenceError> {
        let org = permit.organization_id().as_uuid();
        let by = permit.principal().user_id;
        let comment = clean_text("comment", comment)?;
        if action == Action::Reject && comment.is_none() {
            return Err(invalid("comment", "say why the evidence is rejected"));
        }
        let before = self.find(org, id).await?;
        let from = stored_status(&before);
        let to = from
            .apply(action)
            .map_err(|e| EvidenceError::Conflict(e.0))?;
        if matches!(action, Action::Approve | Action::Reject) {
            let author = before.submitted_by.or(before.created_by);
            if let Some(author) = author {
                permit.approve_work_of(UserId::from(author)).map_err(|_| {
                    EvidenceError::Conflict(
                        "you submitted this evidence; another member must decide on it".into(),
                    )
                })?;
            }
        }
        let now = self.clock.now();
        let mut row = before.clone();
        row.status = to.as_str().to_owned();
        row.updated_at = now;
        match action {
            Action::Submit => {
                clear_review(&mut row);
                row.submitted_by = Some(by.as_uuid());
                row.submitted_at = Some(now);
            }
            Action::Approve | Action::Reject => {
                row.decided_by = Some(by.as_uuid());
                row.decided_at = Some(now);
                row.decision_comment.clone_from(&comment);
            }
            Action::Expire | Action::Revise => {}
        }
        let name = action_name(action);
        let txn = ruleiq_db::begin(&self.db).await?;
        if !repo::update_if_unchanged(&txn, &before, row.clone()).await? {
            return Err(EvidenceError::Conflict(
                "the evidence changed state meanwhile; reload and try again".into(),
            ));
        }
        repo::insert_event(
            &txn,
            event_row(
                org,
                id,
                name,
                Some(from),
                Some(to),
                Some(by.as_uuid()),
                comment.clone(),
                now,
            ),
        )
        .await?;
        txn.commit().await?;
        self.audit
            .record(
                AuditEvent::new(
                    match action {
                        Action::Submit => "evidence.submitted",
                        Action::Approve => "evidence.approved",
                        Action::Reject => "evidence.rejected",
                        Action::Expire => "evidence.expired",
                        Action::Revise => "evidence.revised",
                    },
                    Some(org),
                    Some(by.as_uuid()),
                )
                .target("evidence", id)
                .details(serde_json::json!({
                    "from": from.as_str(),
                    "to": to.as_str(),
                    "comment": comment,
                })),
                client,
            )
            .await?;
        self.tell_reviewers(&before, &row, action, by).await;
        self.view(org, row).await
    }

    /// After a committed move by `by`: a submission tells those who may approve the
    /// item, and a decision tells whoever submitted and added it. Never fails the
    /// move (see [`Notifications`]).
    async fn tell_reviewers(
        &self,
        before: &evidence_item::Model,
        after: &evidence_item::Model,
        action: Action,
        by: UserId,
    ) {
        let org = OrganizationId::from(after.organization_id);
        let review = Review {
            what: Reviewed::Evidence,
            id: after.id,
            title: after.title.clone(),
            by,
            at: after.updated_at,
        };
        let decision = match action {
            Action::Submit => {
                self.notifications
                    .approval_requested(org, &review, &[])
                    .await;
                return;
            }
            Action::Approve => Decision::Approved,
            Action::Reject => Decision::Rejected {
                comment: after.decision_comment.clone(),
            },
            Action::Expire | Action::Revise => return,
        };
        let authors: Vec<Uuid> = before
            .submitted_by
            .into_iter()
            .chain(before.created_by)
            .collect();
        self.notifications
            .approval_decided(org, &review, &decision, &authors)
            .await;
    }

    /// Soft-deletes an item: it leaves every list, search and download; its rows and
    /// blobs stay for the audit trail.
    ///
    /// # Errors
    /// [`EvidenceError::NotFound`].
    pub async fn delete(
        &self,
        permit: &Permit<'_>,
        id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), EvidenceError> {
        let org = permit.organization_id().as_uuid();
        let by = permit.principal().user_id.as_uuid();
        let before = self.find(org, id).await?;
        let now = self.clock.now();
        let mut row = before.clone();
        row.deleted_at = Some(now);
        row.updated_at = now;
        let txn = ruleiq_db::begin(&self.db).await?;
        if !repo::update_if_unchanged(&txn, &before, row).await? {
            return Err(EvidenceError::Conflict(
                "the evidence changed state meanwhile; reload and try again".into(),
            ));
        }
        repo::insert_event(
            &txn,
            event_row(org, id, "deleted", None, None, Some(by), None, now),
        )
        .await?;
        txn.commit().await?;
        self.audit
            .record(
                AuditEvent::new("evidence.deleted", Some(org), Some(by))
                    .target("evidence", id)
                    .details(serde_json::json!({ "title": before.title })),
                client,
            )
            .await?;
        if let Err(e) = self
            .search
            .remove(Some(org), SearchKind::Evidence, &[id])
            .await
        {
            tracing::warn!(error = %e, evidence = %id, "could not remove evidence from search");
        }
        Ok(())
    }

    /// An item's versions, newest first.
    ///
    /// # Errors
    /// [`EvidenceError::NotFound`].
    pub async fn versions(
        &self,
        org: OrganizationId,
        id: Uuid,
    ) -> Result<Vec<VersionView>, EvidenceError> {
        let org = org.as_uuid();
        self.find(org, id).await?;
        Ok(repo::versions(&self.db, org, id)
            .await?
            .into_iter()
            .map(|v| VersionView {
                version: v.version,
                file: FileView {
                    name: v.file_name,
                    size_bytes: u64::try_from(v.size_bytes).unwrap_or(0),
                    content_type: v.content_type,
                    sha256: v.sha256,
                },
                uploaded_by: v.uploaded_by,
                uploaded_at: v.uploaded_at,
                extraction: v.extraction,
                extraction_error: v.extraction_error,
            })
            .collect())
    }

    /// An item's history, oldest first.
    ///
    /// # Errors
    /// [`EvidenceError::NotFound`].
    pub async fn history(
        &self,
        org: OrganizationId,
        id: Uuid,
    ) -> Result<Vec<EventView>, EvidenceError> {
        let org = org.as_uuid();
        self.find(org, id).await?;
        Ok(repo::events(&self.db, org, id)
            .await?
            .into_iter()
            .map(|e| EventView {
                action: e.action,
                from_status: e.from_status,
                to_status: e.to_status,
                actor_id: e.actor_id,
                comment: e.comment,
                created_at: e.created_at,
            })
            .collect())
    }

    /// The file of a version (the current one by default) and a stream of its bytes,
    /// or of `range` of them.
    ///
    /// # Errors
    /// [`EvidenceError::NotFound`] for a link, a deleted item or a missing version;
    /// [`EvidenceError::Store`] when the blob is missing from storage.
    pub async fn download(
        &self,
        org: OrganizationId,
        id: Uuid,
        version: Option<i32>,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<
        (
            FileView,
            impl Stream<Item = Result<Bytes, StoreError>> + use<>,
        ),
        EvidenceError,
    > {
        let file = self.file(org, id, version).await?;
        let stream = self.store.get_range(&file.sha256, range).await?;
        Ok((file, stream))
    }

    /// The file facts of a version (the current one by default).
    ///
    /// # Errors
    /// [`EvidenceError::NotFound`] for a link, a deleted item or a missing version.
    pub async fn file(
        &self,
        org: OrganizationId,
        id: Uuid,
        version: Option<i32>,
    ) -> Result<FileView, EvidenceError> {
        let item = self.find(org.as_uuid(), id).await?;
        if item.kind != "file" {
            return Err(EvidenceError::NotFound(
                "this evidence is a link; it has no file to download",
            ));
        }
        let v = repo::find_version(&self.db, id, version.unwrap_or(item.current_version))
            .await?
            .ok_or(EvidenceError::NotFound("no such version of this evidence"))?;
        Ok(FileView {
            name: v.file_name,
            size_bytes: u64::try_from(v.size_bytes).unwrap_or(0),
            content_type: v.content_type,
            sha256: v.sha256,
        })
    }

    /// Counts for `GET /evidence/stats`. Coverage joins every approved item's links,
    /// so the figures are kept per organisation until its data changes (one indexed
    /// query to tell) or the minute turns (expiry is a matter of time).
    ///
    /// # Errors
    /// On a database error.
    pub async fn stats(&self, org: OrganizationId) -> Result<Stats, EvidenceError> {
        let key = org.as_uuid();
        let now = self.clock.now();
        let version = format!(
            "{:?}@{}",
            ruleiq_db::repositories::readiness::dashboard_version(&self.db, key)
                .await?
                .without_activity(),
            now.timestamp() / 60
        );
        if let Some(stats) = self.kept(key, &version) {
            return Ok(stats);
        }
        // One computation at a time, in a task of its own: a crowd of first readers
        // waits for one result instead of each computing it, and a reader that gives
        // up does not throw the work away.
        let _turn = self.computing_stats.lock().await;
        if let Some(stats) = self.kept(key, &version) {
            return Ok(stats);
        }
        let this = self.clone();
        tokio::spawn(async move {
            let stats = this.compute_stats(key, now).await?;
            if let Ok(mut kept) = this.kept_stats.lock() {
                if kept.len() >= 10_000 {
                    kept.clear();
                }
                kept.insert(key, (version, stats.clone()));
            }
            Ok(stats)
        })
        .await
        .map_err(|e| EvidenceError::Db(DbErr::Custom(format!("evidence stats: {e}"))))?
    }

    fn kept(&self, org: Uuid, version: &str) -> Option<Stats> {
        let kept = self.kept_stats.lock().ok()?;
        kept.get(&org)
            .filter(|(v, _)| v == version)
            .map(|(_, s)| s.clone())
    }

    async fn compute_stats(&self, org: Uuid, now: DateTime<Utc>) -> Result<Stats, EvidenceError> {
        let mut by_status: BTreeMap<String, i64> = Status::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), 0))
            .collect();
        let mut by_type: BTreeMap<String, i64> = BTreeMap::new();
        let mut total = 0;
        for (status, kind, n) in repo::counts(&self.db, org).await? {
            total += n;
            *by_status.entry(status).or_default() += n;
            *by_type.entry(kind).or_default() += n;
        }
        let expiring_30d =
            repo::expiring_and_pending(&self.db, org, now, now + chrono::Duration::days(30))
                .await?
                .0;
        let covered = repo::coverage(&self.db, org, now).await?;
        let mut frameworks: Vec<Uuid> = repo::assessed_frameworks(&self.db, org).await?;
        frameworks.extend(repo::linked_frameworks(&self.db, org).await?);
        frameworks.sort_unstable();
        frameworks.dedup();
        let totals = repo::control_totals(&self.db, &frameworks).await?;
        Ok(Stats {
            total,
            by_status,
            by_type,
            expiring_30d,
            controls_covered: covered
                .iter()
                .filter(|(f, _)| frameworks.contains(f))
                .map(|(_, n)| n)
                .sum(),
            controls_total: totals.iter().map(|(_, n)| n).sum(),
        })
    }

    async fn check_controls(&self, org: Uuid, ids: &[Uuid]) -> Result<Vec<Uuid>, EvidenceError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() > MAX_CONTROLS {
            return Err(invalid(
                "control_ids",
                format!("at most {MAX_CONTROLS} controls per item"),
            ));
        }
        let found = repo::existing_controls(&self.db, org, &ids).await?;
        if let Some(missing) = ids.iter().find(|i| !found.contains(i)) {
            return Err(invalid(
                "control_ids",
                format!("no control {missing} in the library or your organisation's frameworks"),
            ));
        }
        Ok(ids)
    }
}

/// Evidence coverage per framework, as a percentage to one decimal (controls with
/// approved, unexpired evidence over the framework's controls), for readiness: two
/// queries.
///
/// # Errors
/// On a database error.
pub async fn coverage(
    db: &DatabaseConnection,
    org: Uuid,
    framework_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<(BTreeMap<Uuid, f64>, BTreeMap<Uuid, i64>), DbErr> {
    let covered: BTreeMap<Uuid, i64> = repo::coverage(db, org, now).await?.into_iter().collect();
    let totals: BTreeMap<Uuid, i64> = repo::control_totals(db, framework_ids)
        .await?
        .into_iter()
        .collect();
    Ok((share(&covered, &totals), totals))
}

/// Covered controls as a percentage of each framework's, to one decimal place.
#[must_use]
pub fn share(covered: &BTreeMap<Uuid, i64>, totals: &BTreeMap<Uuid, i64>) -> BTreeMap<Uuid, f64> {
    totals
        .iter()
        .filter(|(_, total)| **total > 0)
        .map(|(f, total)| {
            let n = covered.get(f).copied().unwrap_or(0).min(*total);
            #[allow(clippy::cast_precision_loss)]
            let share = (n as f64 / *total as f64 * 1000.0).round() / 10.0;
            (*f, share)
        })
        .collect()
}

/// The search entry of an item: its title, description, file name or address, and
/// the start of its extracted text.
fn search_document(item: &evidence_item::Model, text: Option<&str>) -> SearchDocument {
    let mut body = [
        item.description.as_deref(),
        item.file_name.as_deref(),
        item.url.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("\n");
    if let Some(t) = text {
        body.push('\n');
        body.extend(t.chars().take(SEARCH_TEXT));
    }
    SearchDocument {
        organization_id: Some(item.organization_id),
        kind: SearchKind::Evidence,
        subject_id: item.id,
        framework_slug: None,
        title: item.title.clone(),
        body,
    }
}

fn stored_status(row: &evidence_item::Model) -> Status {
    Status::parse(&row.status).unwrap_or(Status::Draft)
}

/// A new review starts from nothing.
fn clear_review(row: &mut evidence_item::Model) {
    row.submitted_by = None;
    row.submitted_at = None;
    row.decided_by = None;
    row.decided_at = None;
    row.decision_comment = None;
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Submit => "submitted",
        Action::Approve => "approved",
        Action::Reject => "rejected",
        Action::Expire => "expired",
        Action::Revise => "revised",
    }
}

fn changed_fields(a: &evidence_item::Model, b: &evidence_item::Model) -> Vec<&'static str> {
    let mut out = Vec::new();
    if a.title != b.title {
        out.push("title");
    }
    if a.description != b.description {
        out.push("description");
    }
    if a.evidence_type != b.evidence_type {
        out.push("evidence_type");
    }
    if a.effective_date != b.effective_date {
        out.push("effective_date");
    }
    if a.expires_at != b.expires_at {
        out.push("expires_at");
    }
    out
}

fn size_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn item_view(r: evidence_item::Model, controls: Vec<ControlRef>) -> EvidenceView {
    let file = match (r.file_name, r.content_type, r.size_bytes, r.sha256) {
        (Some(name), Some(content_type), Some(size), Some(sha256)) => Some(FileView {
            name,
            size_bytes: u64::try_from(size).unwrap_or(0),
            content_type,
            sha256,
        }),
        _ => None,
    };
    EvidenceView {
        id: r.id,
        title: r.title,
        description: r.description,
        evidence_type: r.evidence_type,
        kind: r.kind,
        url: r.url,
        status: Status::parse(&r.status).unwrap_or(Status::Draft),
        version: r.current_version,
        file,
        controls,
        effective_date: r.effective_date,
        expires_at: r.expires_at,
        extraction: r.extraction,
        created_by: r.created_by,
        created_at: r.created_at,
        updated_at: r.updated_at,
        submitted_by: r.submitted_by,
        submitted_at: r.submitted_at,
        decided_by: r.decided_by,
        decided_at: r.decided_at,
        decision_comment: r.decision_comment,
    }
}

fn version_row(
    org: Uuid,
    evidence_id: Uuid,
    version: i32,
    f: &UploadedFile,
    by: Uuid,
    now: DateTime<Utc>,
    extraction: &str,
) -> evidence_version::Model {
    evidence_version::Model {
        id: Uuid::now_v7(),
        organization_id: org,
        evidence_id,
        version,
        file_name: f.file_name.clone(),
        content_type: f.content_type.clone(),
        size_bytes: size_i64(f.size_bytes),
        sha256: f.sha256.clone(),
        uploaded_by: Some(by),
        uploaded_at: now,
        extraction: extraction.to_owned(),
        extraction_error: None,
        extracted_text: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn event_row(
    org: Uuid,
    evidence_id: Uuid,
    action: &str,
    from: Option<Status>,
    to: Option<Status>,
    actor: Option<Uuid>,
    comment: Option<String>,
    now: DateTime<Utc>,
) -> evidence_event::Model {
    evidence_event::Model {
        id: Uuid::now_v7(),
        organization_id: org,
        evidence_id,
        action: action.to_owned(),
        from_status: from.map(|s| s.as_str().to_owned()),
        to_status: to.map(|s| s.as_str().to_owned()),
        actor_id: actor,
        comment,
        created_at: now,
    }
}

fn clean_title(title: &str) -> Result<String, EvidenceError> {
    let t = title.trim();
    if t.is_empty() {
        return Err(invalid("title", "must not be empty"));
    }
    if t.chars().count() > MAX_TITLE {
        return Err(invalid(
            "title",
            format!("must be at most {MAX_TITLE} characters"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(invalid("title", "must not contain control characters"));
    }
    Ok(t.to_owned())
}

fn clean_text(field: &'static str, text: Option<String>) -> Result<Option<String>, EvidenceError> {
    let Some(t) = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if t.chars().count() > MAX_TEXT {
        return Err(invalid(
            field,
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
    if t.contains('\0') {
        return Err(invalid(field, "must not contain NUL characters"));
    }
    Ok(Some(t))
}

fn clean_type(t: &str) -> Result<String, EvidenceError> {
    let t = t.trim();
    if TYPES.contains(&t) {
        Ok(t.to_owned())
    } else {
        Err(invalid(
            "evidence_type",
            format!("`{t}` is not one of {}", TYPES.join(", ")),
        ))
    }
}

fn clean_url(u: &str) -> Result<String, EvidenceError> {
    let u = u.trim();
    if u.len() > 2_000 {
        return Err(invalid("url", "must be at most 2000 characters"));
    }
    match url::Url::parse(u) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => Ok(u.to_owned()),
        _ => Err(invalid("url", "must be an http or https address")),
    }
}

fn check_dates(
    effective: Option<NaiveDate>,
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), EvidenceError> {
    let today = now.date_naive();
    let far = |d: NaiveDate| d < today - Days::new(365 * 50) || d > today + Days::new(365 * 50);
    if effective.is_some_and(far) {
        return Err(invalid(
            "effective_date",
            "must be within fifty years of today",
        ));
    }
    if let Some(e) = expires {
        if far(e.date_naive()) {
            return Err(invalid("expires_at", "must be within fifty years of today"));
        }
        if effective.is_some_and(|d| e.date_naive() < d) {
            return Err(invalid(
                "expires_at",
                "must not be before the effective date",
            ));
        }
    }
    Ok(())
}

fn cursor_of(at: DateTime<Utc>, id: Uuid) -> String {
    crate::paging::encode(at, id)
}

fn parse_cursor(c: &str) -> Result<(DateTime<Utc>, Uuid), EvidenceError> {
    crate::paging::decode(c)
        .ok_or_else(|| invalid("cursor", "is not a cursor this server gave out"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let at = DateTime::<Utc>::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(parse_cursor(&cursor_of(at, id)).unwrap(), (at, id));
        for junk in ["", "abc", "12_notauuid", "_", "9999999999999999999_x"] {
            assert!(parse_cursor(junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn fields_are_checked() {
        assert!(clean_title("  ").is_err());
        assert!(clean_title(&"x".repeat(301)).is_err());
        assert_eq!(clean_title(" Backup log ").unwrap(), "Backup log");
        assert!(clean_type("photo").is_err());
        assert!(clean_url("javascript:alert(1)").is_err());
        assert!(clean_url("https://intranet.example/policy").is_ok());
        let now = Utc::now();
        let d = now.date_naive();
        assert!(check_dates(Some(d), Some(now - chrono::Duration::days(3)), now).is_err());
        assert!(check_dates(Some(d), Some(now + chrono::Duration::days(3)), now).is_ok());
    }
}
