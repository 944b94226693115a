//! The catalogue's revision per organisation, remembered in memory so a catalogue read
//! or a search needs no database round trip to know its cached answer is current.
//!
//! The rules are those of the session cache: a change made through this process clears
//! it before the request returns; a change made by another instance arrives as a
//! PostgreSQL notification on [`CATALOG_CHANNEL`](ruleiq_db::repositories::frameworks::CATALOG_CHANNEL)
//! and clears it; while notifications cannot be heard it is off; and entries expire
//! after a second as a backstop (for example after `ruleiq frameworks import` wrote to
//! the same SQLite file from another process).

use ruleiq_db::repositories::frameworks::Revision;
use std::{
    collections::HashMap,
    sync::{
        RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use uuid::Uuid;

/// How long a remembered revision is trusted without a notification.
const TTL: Duration = Duration::from_secs(1);
/// Organisations remembered at most; past it, the cache starts again.
const MAX_ENTRIES: usize = 10_000;

/// Remembered revisions.
#[derive(Debug)]
pub struct RevisionCache {
    enabled: AtomicBool,
    generation: AtomicU64,
    entries: RwLock<HashMap<Option<Uuid>, (Instant, Revision)>>,
}

impl Default for RevisionCache {
    fn default() -> Self {
        Self {
            enabled: AtomicBool::new(true),
            generation: AtomicU64::new(0),
            entries: RwLock::new(HashMap::new()),
        }
    }
}

impl RevisionCache {
    /// Whether revisions are remembered.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Stops remembering (while other instances' changes cannot be heard).
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::Release);
        self.clear();
    }

    /// Remembers again.
    pub fn enable(&self) {
        self.clear();
        self.enabled.store(true, Ordering::Release);
    }

    /// The generation to pass to [`Self::put`] for a read starting now.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The remembered revision of `org`'s reach.
    pub fn get(&self, org: Option<Uuid>) -> Option<Revision> {
        if !self.enabled() {
            return None;
        }
        let entries = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(&org)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, r)| r.clone())
    }

    /// Remembers a revision read at `generation`, unless anything changed since.
    pub fn put(&self, org: Option<Uuid>, generation: u64, revision: Revision) {
        if !self.enabled() {
            return;
        }
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(org, (Instant::now(), revision));
    }

    /// Forgets everything: the catalogue changed.
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

    #[test]
    fn a_read_that_raced_a_change_is_not_remembered() {
        let cache = RevisionCache::default();
        let rev = Revision {
            library: "l".into(),
            library_imports: String::new(),
            organization: "o".into(),
        };
        let before = cache.generation();
        cache.clear();
        cache.put(None, before, rev.clone());
        assert!(cache.get(None).is_none());
        cache.put(None, cache.generation(), rev.clone());
        assert_eq!(cache.get(None), Some(rev.clone()));
        cache.disable();
        assert!(cache.get(None).is_none());
        cache.put(None, cache.generation(), rev);
        cache.enable();
        assert!(cache.get(None).is_none());
    }
}
