//! Demo evidence: a library of the size the performance targets are measured on.
//!
//! Fifty thousand items cannot go through the upload path one by one in reasonable
//! time, so the files are stored once each through the blob store (hashed, as any
//! upload) and the rows are written in batches, with one audit entry for the lot.
//! The data obeys the same rules as a user's: every version's blob exists, statuses
//! are reachable ones (an approved item was submitted by one member and decided by
//! another), and links point at real controls.

use bytes::Bytes;
use chrono::{Days, Duration, Utc};
use ruleiq_core::Clock;
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::{evidence_control, evidence_event, evidence_item, evidence_version},
    repositories::evidence as repo,
};
use uuid::Uuid;

use super::{
    TYPES, search_document,
    store::{BlobStore, StoreError},
    workflow::Status,
};
use crate::{
    audit::{Audit, AuditEvent, ClientInfo},
    search::SearchIndex,
};

/// A small deterministic generator, so two demo runs make the same library.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const SUBJECTS: [&str; 12] = [
    "Access review",
    "Backup restore test",
    "Firewall rule export",
    "Security awareness training",
    "Patch compliance report",
    "Supplier assessment",
    "Incident response exercise",
    "Penetration test summary",
    "Asset register extract",
    "Encryption configuration",
    "Joiners and leavers log",
    "Business continuity test",
];

/// Makes `count` items in `org`, owned by `owner` and decided by `approver`.
/// Returns how many were made.
///
/// # Errors
/// On a storage or database error.
#[allow(clippy::too_many_arguments)]
pub async fn seed(
    db: &DatabaseConnection,
    store: &BlobStore,
    search: &dyn SearchIndex,
    audit: &Audit,
    clock: &dyn Clock,
    org: Uuid,
    (owner, approver): (Uuid, Uuid),
    framework_ids: &[Uuid],
    count: usize,
) -> Result<usize, DbErr> {
    let err = |e: StoreError| DbErr::Custom(format!("demo evidence storage: {e}"));
    // A few distinct files, each stored once and shared by many items (as a library
    // full of monthly exports of the same template would be).
    let mut files = Vec::new();
    for (i, subject) in SUBJECTS.iter().enumerate() {
        let text = format!(
            "{subject}\nHarbour Lane Logistics Ltd (demo)\nPrepared for the ISMS evidence library, sample {i}.\n"
        );
        let stored = store
            .put_stream(
                futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(text.clone()))]),
                1 << 20,
            )
            .await
            .map_err(err)?;
        files.push((
            format!("{}.txt", subject.to_lowercase().replace(' ', "-")),
            stored,
            text,
        ));
    }
    let controls = repo::controls_of(db, framework_ids).await?;
    let now = clock.now();
    let mut rng = Rng(0x0e71_de4c_e5ee_d001);
    let (mut items, mut versions, mut links, mut events) = (
        Vec::with_capacity(count),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut docs = Vec::with_capacity(count);
    for n in 0..count {
        let id = Uuid::now_v7();
        // Spread over the past year, oldest first, so the list has real history.
        let created = now
            - Duration::seconds(
                i64::try_from((count - n) as u64 * 600 + rng.below(600)).unwrap_or(0),
            );
        let status = match rng.below(100) {
            0..60 => Status::Approved,
            60..70 => Status::Submitted,
            70..90 => Status::Draft,
            90..95 => Status::Rejected,
            _ => Status::Expired,
        };
        let link = rng.below(10) == 0;
        let (name, stored, text) =
            &files[usize::try_from(rng.below(files.len() as u64)).unwrap_or(0)];
        let subject = SUBJECTS[n % SUBJECTS.len()];
        let expires_at = match (status, rng.below(10)) {
            (Status::Expired, _) => Some(now - Days::new(1 + rng.below(90))),
            (_, 0..3) => Some(now + Days::new(1 + rng.below(400))),
            _ => None,
        };
        let reviewed = matches!(
            status,
            Status::Submitted | Status::Approved | Status::Rejected | Status::Expired
        );
        let decided = reviewed && status != Status::Submitted;
        let item = evidence_item::Model {
            id,
            organization_id: org,
            title: format!("{subject} {}", created.format("%Y-%m-%d")),
            description: (rng.below(3) == 0).then(|| format!("{subject}, kept as evidence.")),
            evidence_type: TYPES[usize::try_from(rng.below(TYPES.len() as u64)).unwrap_or(0)]
                .to_owned(),
            kind: if link { "link" } else { "file" }.to_owned(),
            url: link.then(|| format!("https://intranet.example/evidence/{n}")),
            status: status.as_str().to_owned(),
            current_version: i32::from(!link),
            file_name: (!link).then(|| name.clone()),
            content_type: (!link).then(|| "text/plain; charset=utf-8".to_owned()),
            size_bytes: (!link).then(|| i64::try_from(stored.size).unwrap_or(0)),
            sha256: (!link).then(|| stored.sha256.clone()),
            effective_date: Some(created.date_naive()),
            expires_at,
            extraction: if link { "not_applicable" } else { "done" }.to_owned(),
            created_by: Some(owner),
            submitted_by: reviewed.then_some(owner),
            submitted_at: reviewed.then_some(created),
            decided_by: decided.then_some(approver),
            decided_at: decided.then_some(created),
            decision_comment: (status == Status::Rejected).then(|| "Out of date".to_owned()),
            created_at: created,
            updated_at: created,
            deleted_at: None,
        };
        if !link {
            versions.push(evidence_version::Model {
                id: Uuid::now_v7(),
                organization_id: org,
                evidence_id: id,
                version: 1,
                file_name: name.clone(),
                content_type: "text/plain; charset=utf-8".into(),
                size_bytes: i64::try_from(stored.size).unwrap_or(0),
                sha256: stored.sha256.clone(),
                uploaded_by: Some(owner),
                uploaded_at: created,
                extraction: "done".into(),
                extraction_error: None,
                extracted_text: Some(text.clone()),
            });
        }
        let mut linked = Vec::new();
        for _ in 0..=rng.below(3) {
            if let Some(c) =
                controls.get(usize::try_from(rng.below(controls.len() as u64)).unwrap_or(0))
                && !linked.contains(c)
            {
                linked.push(*c);
                links.push(evidence_control::Model {
                    evidence_id: id,
                    control_id: *c,
                    organization_id: org,
                    created_at: created,
                });
            }
        }
        events.push(evidence_event::Model {
            id: Uuid::now_v7(),
            organization_id: org,
            evidence_id: id,
            action: "created".into(),
            from_status: None,
            to_status: Some(status.as_str().to_owned()),
            actor_id: Some(owner),
            comment: Some("demo data".into()),
            created_at: created,
        });
        docs.push(search_document(&item, None));
        items.push(item);
    }
    let txn = ruleiq_db::begin(db).await?;
    repo::insert_bulk(&txn, items, versions, links, events).await?;
    txn.commit().await?;
    repo::analyze(db).await?;
    for chunk in docs.chunks(2_000) {
        search.index(chunk.to_vec()).await?;
    }
    audit
        .record(
            AuditEvent::new("evidence.demo_created", Some(org), Some(owner))
                .details(serde_json::json!({ "items": count, "at": Utc::now() })),
            &ClientInfo::default(),
        )
        .await?;
    Ok(count)
}
