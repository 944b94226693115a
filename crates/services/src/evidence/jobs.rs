//! Evidence upkeep that runs off the request path: text extraction, the daily expiry
//! of approved evidence, the sweep of abandoned uploads and unreferenced blobs, and
//! the re-hashing of every stored blob (`ruleiq evidence verify`).

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use ruleiq_core::Clock;
use ruleiq_db::{DatabaseConnection, DbErr, repositories::evidence as repo};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

use super::{
    extract, search_document, sniff,
    store::{BlobStore, StoreError},
    workflow::{Action, Status},
};
use crate::{
    audit::{Audit, AuditEvent, ClientInfo},
    search::SearchIndex,
};

/// Staging objects younger than this may still be in flight.
pub const STAGING_GRACE: Duration = Duration::hours(1);
/// Blobs no version refers to are kept this long first: a row may be about to.
pub const ORPHAN_GRACE: Duration = Duration::hours(24);

/// The background side of evidence.
#[derive(Clone)]
pub struct Upkeep {
    db: DatabaseConnection,
    store: BlobStore,
    search: Arc<dyn SearchIndex>,
    audit: Audit,
    clock: Arc<dyn Clock>,
    limits: Arc<extract::Limits>,
}

/// What an extraction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extracted {
    /// `done`, `failed` or `not_applicable`; `skipped` when the item or version is
    /// gone or superseded.
    pub outcome: &'static str,
    pub chars: usize,
    pub error: Option<String>,
}

/// What a sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    pub staging: usize,
    pub orphans: usize,
}

/// What verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub checked: u64,
    pub bytes: u64,
    /// Hashes whose content no longer has that hash.
    pub mismatched: Vec<String>,
    /// Hashes a version refers to that storage does not have.
    pub missing: Vec<String>,
}

impl Verified {
    /// Whether every blob was present and intact.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.mismatched.is_empty() && self.missing.is_empty()
    }
}

impl std::fmt::Debug for Upkeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upkeep").finish_non_exhaustive()
    }
}

impl Upkeep {
    #[must_use]
    pub fn new(
        db: DatabaseConnection,
        store: BlobStore,
        search: Arc<dyn SearchIndex>,
        audit: Audit,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            db,
            store,
            search,
            audit,
            clock,
            limits: Arc::new(extract::Limits::default()),
        }
    }

    /// With other extraction limits (tests use small ones).
    #[must_use]
    pub fn with_limits(mut self, limits: extract::Limits) -> Self {
        self.limits = Arc::new(limits);
        self
    }

    /// Extracts the text of one version and records the outcome. A parser that fails,
    /// panics or runs out of time marks the version `failed` with the reason; that is
    /// an outcome, not a job failure, since trying again would fail the same way.
    ///
    /// # Errors
    /// When the blob cannot be read or the database fails: worth a retry.
    pub async fn extract(&self, evidence_id: Uuid, version: i32) -> Result<Extracted, String> {
        let skipped = Extracted {
            outcome: "skipped",
            chars: 0,
            error: None,
        };
        let Some(v) = repo::find_version(&self.db, evidence_id, version)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(skipped);
        };
        let Some(item) = repo::find(&self.db, v.organization_id, evidence_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(skipped);
        };
        let now = self.clock.now();
        let format = sniff::extension_of(&v.file_name)
            .as_deref()
            .and_then(extract::Format::from_extension);
        let Some(format) = format else {
            self.record(evidence_id, version, "not_applicable", None, None, now)
                .await?;
            return Ok(Extracted {
                outcome: "not_applicable",
                chars: 0,
                error: None,
            });
        };
        let size = u64::try_from(v.size_bytes).unwrap_or(u64::MAX);
        let result = if size > self.limits.max_input_bytes {
            Err(extract::ExtractError::TooLarge {
                limit: self.limits.max_input_bytes,
            })
        } else {
            let bytes = self.read(&v.sha256).await.map_err(|e| e.to_string())?;
            extract::extract(format, bytes, &self.limits).await
        };
        match result {
            Ok(text) => {
                let chars = text.chars().count();
                if item.current_version == version {
                    let doc = search_document(&item, Some(&text));
                    if let Err(e) = self.search.index(vec![doc]).await {
                        tracing::warn!(error = %e, evidence = %evidence_id, "could not index extracted text");
                    }
                }
                self.record(evidence_id, version, "done", None, Some(text), now)
                    .await?;
                Ok(Extracted {
                    outcome: "done",
                    chars,
                    error: None,
                })
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::info!(evidence = %evidence_id, version, reason = %reason, "text extraction failed");
                self.record(
                    evidence_id,
                    version,
                    "failed",
                    Some(reason.clone()),
                    None,
                    now,
                )
                .await?;
                Ok(Extracted {
                    outcome: "failed",
                    chars: 0,
                    error: Some(reason),
                })
            }
        }
    }

    async fn record(
        &self,
        evidence_id: Uuid,
        version: i32,
        outcome: &str,
        error: Option<String>,
        text: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        repo::set_extraction(&self.db, evidence_id, version, outcome, error, text, now)
            .await
            .map_err(|e| e.to_string())
    }

    /// A blob's bytes, whole; only for files already known to be under the
    /// extraction limit.
    async fn read(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        let mut stream = std::pin::pin!(self.store.get(sha256).await?);
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// Moves approved evidence past its `expires_at` to `expired`, auditing each.
    /// Returns how many.
    ///
    /// # Errors
    /// On a database error.
    pub async fn expire_due(&self) -> Result<usize, DbErr> {
        let mut total = 0;
        loop {
            let now = self.clock.now();
            let due = repo::due_to_expire(&self.db, now, 500).await?;
            if due.is_empty() {
                return Ok(total);
            }
            let mut moved = 0;
            for before in due {
                let Ok(to) = Status::Approved.apply(Action::Expire) else {
                    continue;
                };
                let mut row = before.clone();
                row.status = to.as_str().to_owned();
                row.updated_at = now;
                let txn = ruleiq_db::begin(&self.db).await?;
                if !repo::update_if_unchanged(&txn, &before, row).await? {
                    continue; // changed meanwhile; the next pass sees it as it is now
                }
                repo::insert_event(
                    &txn,
                    super::event_row(
                        before.organization_id,
                        before.id,
                        "expired",
                        Some(Status::Approved),
                        Some(to),
                        None,
                        before
                            .expires_at
                            .map(|e| format!("expired on {}", e.date_naive())),
                        now,
                    ),
                )
                .await?;
                txn.commit().await?;
                self.audit
                    .record(
                        AuditEvent::new("evidence.expired", Some(before.organization_id), None)
                            .target("evidence", before.id)
                            .details(serde_json::json!({ "expires_at": before.expires_at })),
                        &ClientInfo::default(),
                    )
                    .await?;
                moved += 1;
            }
            total += moved;
            if moved == 0 {
                return Ok(total);
            }
        }
    }

    /// Removes staging objects older than [`STAGING_GRACE`] (uploads cut off by a
    /// client or a killed process) and blobs no version refers to that are older
    /// than [`ORPHAN_GRACE`] (files refused after storing, such as an upload whose
    /// form failed validation).
    ///
    /// # Errors
    /// When storage or the database fails.
    pub async fn sweep(&self) -> Result<Swept, String> {
        let now = self.clock.now();
        let staging = self
            .store
            .sweep_staging(now - STAGING_GRACE)
            .await
            .map_err(|e| e.to_string())?;
        let old: Vec<String> = self
            .store
            .list_blobs()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|(_, at)| *at < now - ORPHAN_GRACE)
            .map(|(sha, _)| sha)
            .collect();
        let mut orphans = 0;
        for chunk in old.chunks(500) {
            let kept = repo::referenced(&self.db, chunk)
                .await
                .map_err(|e| e.to_string())?;
            for sha in chunk.iter().filter(|s| !kept.contains(s)) {
                self.store.delete(sha).await.map_err(|e| e.to_string())?;
                orphans += 1;
            }
        }
        Ok(Swept { staging, orphans })
    }

    /// Re-reads every blob a version refers to and checks its hash; `progress` hears
    /// `(checked, bytes)` after each.
    ///
    /// # Errors
    /// On a database error (storage problems are findings, not errors).
    pub async fn verify(&self, mut progress: impl FnMut(u64, u64)) -> Result<Verified, DbErr> {
        let mut report = Verified::default();
        let mut after = String::new();
        loop {
            let page = repo::blobs_after(&self.db, &after, 500).await?;
            let Some((last, _)) = page.last() else {
                return Ok(report);
            };
            after.clone_from(last);
            for (sha, size) in page {
                match self.store.verify(&sha).await {
                    Ok(true) => {}
                    Ok(false) => report.mismatched.push(sha),
                    Err(StoreError::Missing(_)) => report.missing.push(sha),
                    Err(e) => {
                        tracing::warn!(error = %e, sha = %sha, "could not read blob");
                        report.missing.push(sha);
                    }
                }
                report.checked += 1;
                report.bytes += u64::try_from(size).unwrap_or(0);
                progress(report.checked, report.bytes);
            }
        }
    }
}
