//! A short-lived, in-process cache of what authenticating a session loads, so a busy
//! API does not ask the database the same question on every request.
//!
//! Correctness comes first: every identity change made through this process (sign-out,
//! revocation, role or status change, password change, rename) clears the cache before
//! it returns, and announces the change so other instances clear theirs too (on
//! PostgreSQL through `NOTIFY`, which every instance `LISTEN`s for; SQLite has one
//! instance). A generation counter stops a request that read the database before a
//! change from caching what it read. Entries also expire after a short time, as a
//! backstop for a lost notification.

use ruleiq_db::repositories::identity::SessionPrincipal;
use std::{
    collections::HashMap,
    sync::{
        RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use uuid::Uuid;

/// The PostgreSQL channel identity changes are announced on.
pub const CHANNEL: &str = "ruleiq_identity";

/// Sessions kept at most; past it, the cache starts again.
const MAX_ENTRIES: usize = 100_000;

/// Cached session lookups.
#[derive(Debug)]
pub struct SessionCache {
    ttl: Duration,
    enabled: AtomicBool,
    generation: AtomicU64,
    entries: RwLock<HashMap<Uuid, (Instant, SessionPrincipal)>>,
}

impl SessionCache {
    /// A cache keeping entries for `ttl`; zero turns it off.
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            enabled: AtomicBool::new(!ttl.is_zero()),
            generation: AtomicU64::new(0),
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// Whether lookups are being cached.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Stops caching (when changes made elsewhere could no longer be heard).
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::Release);
        self.clear();
    }

    /// Starts caching again after [`Self::disable`] (only if it was configured on).
    pub fn enable(&self) {
        if !self.ttl.is_zero() {
            self.clear();
            self.enabled.store(true, Ordering::Release);
        }
    }

    /// The generation to pass to [`Self::put`] for a lookup starting now.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A fresh cached lookup of `session`.
    pub fn get(&self, session: Uuid) -> Option<SessionPrincipal> {
        if !self.enabled() {
            return None;
        }
        let entries = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(&session)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, row)| row.clone())
    }

    /// Keeps a lookup made at `generation`, unless anything changed since.
    pub fn put(&self, session: Uuid, generation: u64, row: SessionPrincipal) {
        if !self.enabled() {
            return;
        }
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Checked under the lock that `clear` also takes, so a change cannot slip in
        // between this check and the insert.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(session, (Instant::now(), row));
    }

    /// Forgets everything: an identity changed.
    pub fn clear(&self) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn row() -> SessionPrincipal {
        SessionPrincipal {
            user_id: Uuid::now_v7(),
            organization_id: Uuid::now_v7(),
            role: "owner".into(),
            user_active: true,
            session_revoked: false,
            session_expires_at: Utc::now(),
            email: "a@example.co.uk".into(),
            full_name: "A".into(),
            user_created_at: Utc::now(),
            organization_name: "A Ltd".into(),
        }
    }

    #[test]
    fn a_lookup_that_raced_a_change_is_not_kept() {
        let cache = SessionCache::new(Duration::from_secs(5));
        let s = Uuid::now_v7();
        let before = cache.generation();
        cache.clear(); // a change lands while the lookup is in flight
        cache.put(s, before, row());
        assert!(cache.get(s).is_none());
        cache.put(s, cache.generation(), row());
        assert!(cache.get(s).is_some());
        cache.clear();
        assert!(cache.get(s).is_none());
    }

    #[test]
    fn entries_expire_and_zero_turns_it_off() {
        let cache = SessionCache::new(Duration::from_millis(20));
        let s = Uuid::now_v7();
        cache.put(s, cache.generation(), row());
        assert!(cache.get(s).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(cache.get(s).is_none());
        let off = SessionCache::new(Duration::ZERO);
        off.put(s, off.generation(), row());
        assert!(off.get(s).is_none());
        off.enable();
        assert!(!off.enabled());
        cache.disable();
        cache.put(s, cache.generation(), row());
        assert!(cache.get(s).is_none());
    }
}
