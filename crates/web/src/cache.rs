//! A cache of rendered JSON answers for reads that many users repeat and that change
//! only when their revision does (the framework catalogue). Each entry remembers the
//! revision it was made at; a caller passes the current one, read from the database
//! per request, so an entry is never served after any instance changed the data.

use axum::{
    body::{Body, Bytes},
    http::{HeaderValue, header},
    response::Response,
};
use std::{collections::HashMap, sync::RwLock};

/// Rendered answers by key, each with the revision it was made at.
#[derive(Debug, Default)]
pub struct ResponseCache {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, (String, Bytes)>,
    bytes: usize,
}

/// The most the cache holds; past it, it starts again (a query string can make any
/// number of keys, so the bound is on bytes, not entries).
const BUDGET_BYTES: usize = 32 * 1024 * 1024;

impl ResponseCache {
    /// The body cached under `key` at `revision`.
    pub fn get(&self, key: &str, revision: &str) -> Option<Bytes> {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner
            .entries
            .get(key)
            .filter(|(r, _)| r == revision)
            .map(|(_, b)| b.clone())
    }

    /// Keeps `body` under `key` at `revision`.
    pub fn put(&self, key: String, revision: String, body: Bytes) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if inner.bytes + body.len() > BUDGET_BYTES {
            inner.entries.clear();
            inner.bytes = 0;
        }
        inner.bytes += body.len() + key.len();
        if let Some((_, old)) = inner.entries.insert(key, (revision, body)) {
            inner.bytes = inner.bytes.saturating_sub(old.len());
        }
    }
}

/// A 200 JSON response with `body`.
#[must_use]
pub fn json(body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_served_only_at_their_revision() {
        let cache = ResponseCache::default();
        cache.put("k".into(), "r1".into(), Bytes::from_static(b"one"));
        assert_eq!(cache.get("k", "r1").as_deref(), Some(&b"one"[..]));
        assert!(cache.get("k", "r2").is_none());
        assert!(cache.get("other", "r1").is_none());
        cache.put("k".into(), "r2".into(), Bytes::from_static(b"two"));
        assert_eq!(cache.get("k", "r2").as_deref(), Some(&b"two"[..]));
        assert!(cache.get("k", "r1").is_none());
    }

    #[test]
    fn the_budget_bounds_memory() {
        let cache = ResponseCache::default();
        let big = Bytes::from(vec![0u8; BUDGET_BYTES / 2 + 1]);
        cache.put("a".into(), "r".into(), big.clone());
        cache.put("b".into(), "r".into(), big);
        assert!(
            cache.get("a", "r").is_none(),
            "the first was dropped to make room"
        );
        assert!(cache.get("b", "r").is_some());
    }
}
