//! An in-process cache for answers that are the same until something changes, with
//! the safety rules both of its users (sessions, catalogue revisions) need:
//!
//! - `clear` is called after every change this process makes, and by a listener for
//!   the changes other instances announce;
//! - a lookup remembers the generation it started at, and its answer is not kept if a
//!   `clear` happened meanwhile (it may have read the data from before the change);
//! - it can be switched off while changes elsewhere cannot be heard;
//! - entries expire after `ttl` whatever happens, as a backstop, and the number of
//!   entries is bounded.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{
        RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// Cached answers by key.
#[derive(Debug)]
pub struct ExpiringCache<K, V> {
    ttl: Duration,
    max_entries: usize,
    enabled: AtomicBool,
    generation: AtomicU64,
    entries: RwLock<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> ExpiringCache<K, V> {
    /// A cache keeping up to `max_entries` answers for `ttl` each; a zero `ttl`
    /// turns it off for good.
    #[must_use]
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries,
            enabled: AtomicBool::new(!ttl.is_zero()),
            generation: AtomicU64::new(0),
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// Whether answers are being kept.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Stops keeping answers (while changes made elsewhere could go unheard).
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::Release);
        self.clear();
    }

    /// Keeps answers again after [`Self::disable`] (unless configured off).
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

    /// A fresh answer for `key`.
    pub fn get(&self, key: &K) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        let entries = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// Keeps an answer looked up at `generation`, unless anything changed since.
    pub fn put(&self, key: K, generation: u64, value: V) {
        if !self.enabled() {
            return;
        }
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Checked under the lock `clear` also takes, so a change cannot slip in
        // between this check and the insert.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= self.max_entries {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Forgets everything: something changed.
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
    fn a_lookup_that_raced_a_change_is_not_kept() {
        let cache = ExpiringCache::new(Duration::from_secs(5), 10);
        let before = cache.generation();
        cache.clear(); // a change lands while the lookup is in flight
        cache.put("k", before, 1);
        assert_eq!(cache.get(&"k"), None);
        cache.put("k", cache.generation(), 2);
        assert_eq!(cache.get(&"k"), Some(2));
        cache.clear();
        assert_eq!(cache.get(&"k"), None);
    }

    #[test]
    fn entries_expire_are_bounded_and_zero_turns_it_off() {
        let cache = ExpiringCache::new(Duration::from_millis(20), 2);
        cache.put(1, cache.generation(), "a");
        assert_eq!(cache.get(&1), Some("a"));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(cache.get(&1), None);
        for k in 0..3 {
            cache.put(k, cache.generation(), "x");
        }
        assert_eq!(cache.get(&0), None, "the bound started the cache again");
        assert_eq!(cache.get(&2), Some("x"));

        let off = ExpiringCache::new(Duration::ZERO, 2);
        off.put(1, off.generation(), "a");
        assert_eq!(off.get(&1), None);
        off.enable();
        assert!(!off.enabled());

        cache.disable();
        cache.put(5, cache.generation(), "y");
        assert_eq!(cache.get(&5), None);
        cache.enable();
        cache.put(5, cache.generation(), "y");
        assert_eq!(cache.get(&5), Some("y"));
    }
}
