//! The security audit trail: append-only and hash-chained.
//!
//! Each organisation has its own chain (events with no organisation, such as a failed
//! sign-in for an unknown address, form the `system` chain). An entry's hash is the
//! SHA-256 of the previous entry's hash and every field of the entry, so changing,
//! removing or reordering a stored entry breaks the chain from that entry on, and
//! [`Audit::verify`] names the first broken one.

use chrono::{DateTime, SubsecRound, Utc};
use ruleiq_core::{Clock, Permission};
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::audit_entry,
    repositories::audit::{self as repo, GENESIS_HASH, NewEntry},
};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use uuid::Uuid;

use crate::identity::Permit;

/// Where a request came from, as recorded with its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub organization_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub event: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
}

impl AuditEvent {
    /// An event by `actor` in `organization`.
    #[must_use]
    pub fn new(event: &'static str, organization: Option<Uuid>, actor: Option<Uuid>) -> Self {
        Self {
            organization_id: organization,
            actor_user_id: actor,
            event,
            target_type: None,
            target_id: None,
            details: serde_json::json!({}),
        }
    }

    /// About `kind` `id`.
    #[must_use]
    pub fn target(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id.to_string());
        self
    }

    /// With extra facts.
    #[must_use]
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// The outcome of checking a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub valid: bool,
    pub entries_checked: u64,
    pub first_broken_id: Option<Uuid>,
}

/// The audit service.
#[derive(Debug, Clone)]
pub struct Audit {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
}

/// The hash of an entry at `seq` following `prev_hash`.
#[must_use]
pub fn entry_hash(prev_hash: &str, seq: i64, e: &NewEntry) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let uuid = |v: Option<Uuid>| v.map(|u| u.to_string()).unwrap_or_default();
    // Length-prefixed fields, so no value can be shifted into its neighbour.
    let fields = [
        prev_hash.to_owned(),
        seq.to_string(),
        uuid(e.organization_id),
        uuid(e.actor_user_id),
        e.event.clone(),
        opt(&e.target_type),
        opt(&e.target_id),
        opt(&e.ip),
        opt(&e.user_agent),
        e.details.to_string(),
        e.created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    ];
    let mut hasher = Sha256::new();
    for f in fields {
        hasher.update((f.len() as u64).to_be_bytes());
        hasher.update(f.as_bytes());
    }
    hex::encode(hasher.finalize())
}

fn as_new(m: &audit_entry::Model) -> NewEntry {
    NewEntry {
        organization_id: m.organization_id,
        actor_user_id: m.actor_user_id,
        event: m.event.clone(),
        target_type: m.target_type.clone(),
        target_id: m.target_id.clone(),
        ip: m.ip.clone(),
        user_agent: m.user_agent.clone(),
        details: m.details.clone(),
        created_at: m.created_at,
    }
}

/// Truncates client-supplied text to what the column holds.
fn clip(value: Option<String>, max: usize) -> Option<String> {
    value.map(|v| v.chars().take(max).collect())
}

impl Audit {
    /// The audit service over `db`.
    #[must_use]
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    /// Appends an event.
    ///
    /// # Errors
    /// On a database error.
    pub async fn record(&self, event: AuditEvent, client: &ClientInfo) -> Result<(), DbErr> {
        // Microseconds: what both engines store, so the hash can be recomputed.
        let created_at: DateTime<Utc> = self.clock.now().trunc_subsecs(6);
        let entry = NewEntry {
            organization_id: event.organization_id,
            actor_user_id: event.actor_user_id,
            event: event.event.to_owned(),
            target_type: event.target_type.map(str::to_owned),
            target_id: clip(event.target_id, 64),
            ip: clip(client.ip.clone(), 64),
            user_agent: clip(client.user_agent.clone(), 512),
            details: event.details,
            created_at,
        };
        repo::append(&self.db, entry, entry_hash).await?;
        Ok(())
    }

    /// The organisation's events, newest first.
    ///
    /// # Errors
    /// On a database error.
    pub async fn list(
        &self,
        permit: &Permit<'_>,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<audit_entry::Model>, DbErr> {
        debug_assert_eq!(permit.permission(), Permission::AuditRead);
        repo::list(&self.db, permit.organization_id().as_uuid(), before, limit).await
    }

    /// Recomputes the organisation's chain from its first entry.
    ///
    /// # Errors
    /// On a database error.
    pub async fn verify(&self, permit: &Permit<'_>) -> Result<ChainReport, DbErr> {
        let org = permit.organization_id().as_uuid();
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut expected_seq = 1;
        let mut checked = 0;
        loop {
            let batch = repo::chain_batch(&self.db, org, expected_seq - 1, 500).await?;
            if batch.is_empty() {
                return Ok(ChainReport {
                    valid: true,
                    entries_checked: checked,
                    first_broken_id: None,
                });
            }
            for entry in batch {
                checked += 1;
                let intact = entry.seq == expected_seq
                    && entry.prev_hash == prev_hash
                    && entry_hash(&prev_hash, entry.seq, &as_new(&entry)) == entry.hash;
                if !intact {
                    return Ok(ChainReport {
                        valid: false,
                        entries_checked: checked,
                        first_broken_id: Some(entry.id),
                    });
                }
                prev_hash = entry.hash;
                expected_seq += 1;
            }
        }
    }
}
