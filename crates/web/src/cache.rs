//! A cache of rendered JSON answers for reads that many users repeat and that change
//! only when their revision does (the framework catalogue). Each entry remembers the
//! revision it was made at; a caller passes the current one, so an entry is never
//! served after the data changed on any instance. Each answer is also kept
//! gzip-compressed, compressed once, for clients that accept it.

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, HeaderValue, header},
    response::Response,
};
use std::{collections::HashMap, io::Write, sync::RwLock};

/// One rendered answer, plain and compressed.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub plain: Bytes,
    pub gzip: Bytes,
}

impl Rendered {
    /// Compresses `plain` once.
    #[must_use]
    pub fn new(plain: Bytes) -> Self {
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(plain.len() / 4),
            flate2::Compression::fast(),
        );
        // Writing to a Vec cannot fail; if it somehow did, the plain body is served.
        let gzip = encoder
            .write_all(&plain)
            .and_then(|()| encoder.finish())
            .map(Bytes::from)
            .unwrap_or_default();
        Self { plain, gzip }
    }

    fn size(&self) -> usize {
        self.plain.len() + self.gzip.len()
    }

    /// The response for a request with `headers`: compressed when the client says it
    /// accepts gzip.
    #[must_use]
    pub fn response(&self, headers: &HeaderMap) -> Response {
        let gzip = !self.gzip.is_empty()
            && headers
                .get_all(header::ACCEPT_ENCODING)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|e| {
                    let mut parts = e.split(';');
                    parts
                        .next()
                        .is_some_and(|n| n.trim().eq_ignore_ascii_case("gzip"))
                        && !parts.any(|p| p.trim().replace(' ', "") == "q=0")
                });
        let mut response = Response::new(Body::from(if gzip {
            self.gzip.clone()
        } else {
            self.plain.clone()
        }));
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if gzip {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    }
}

/// Rendered answers by key, each with the revision it was made at.
#[derive(Debug, Default)]
pub struct ResponseCache {
    inner: RwLock<Inner>,
    /// One lock per key being rendered, so a burst of identical requests renders once
    /// and the rest are served what the first rendered, while other keys (and other
    /// organisations) render in parallel.
    rendering: std::sync::Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

/// Keys being rendered at most before the lock table starts again.
const MAX_RENDER_LOCKS: usize = 1_024;

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, (String, Rendered)>,
    bytes: usize,
}

/// The most the cache holds; past it, it starts again (a query string can make any
/// number of keys, so the bound is on bytes, not entries).
const BUDGET_BYTES: usize = 32 * 1024 * 1024;

impl ResponseCache {
    /// The lock to hold while rendering `key`.
    pub fn render_lock(&self, key: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .rendering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if locks.len() >= MAX_RENDER_LOCKS {
            // Dropping the table only loses deduplication for renders under way.
            locks.clear();
        }
        locks.entry(key.to_owned()).or_default().clone()
    }

    /// The answer cached under `key` at `revision`.
    pub fn get(&self, key: &str, revision: &str) -> Option<Rendered> {
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

    /// Keeps `rendered` under `key` at `revision`.
    pub fn put(&self, key: String, revision: String, rendered: Rendered) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if inner.bytes + rendered.size() > BUDGET_BYTES {
            inner.entries.clear();
            inner.bytes = 0;
        }
        inner.bytes += rendered.size() + key.len();
        if let Some((_, old)) = inner.entries.insert(key, (revision, rendered)) {
            inner.bytes = inner.bytes.saturating_sub(old.size());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(s: &'static [u8]) -> Rendered {
        Rendered::new(Bytes::from_static(s))
    }

    #[test]
    fn entries_are_served_only_at_their_revision() {
        let cache = ResponseCache::default();
        cache.put("k".into(), "r1".into(), rendered(b"one"));
        assert_eq!(cache.get("k", "r1").unwrap().plain, &b"one"[..]);
        assert!(cache.get("k", "r2").is_none());
        assert!(cache.get("other", "r1").is_none());
        cache.put("k".into(), "r2".into(), rendered(b"two"));
        assert_eq!(cache.get("k", "r2").unwrap().plain, &b"two"[..]);
        assert!(cache.get("k", "r1").is_none());
    }

    #[test]
    fn the_budget_bounds_memory() {
        let cache = ResponseCache::default();
        let big = Rendered {
            plain: Bytes::from(vec![0u8; BUDGET_BYTES / 2 + 1]),
            gzip: Bytes::new(),
        };
        cache.put("a".into(), "r".into(), big.clone());
        cache.put("b".into(), "r".into(), big);
        assert!(
            cache.get("a", "r").is_none(),
            "the first was dropped to make room"
        );
        assert!(cache.get("b", "r").is_some());
    }

    #[test]
    fn gzip_is_served_only_to_clients_that_accept_it() {
        use std::io::Read;
        let r = Rendered::new(Bytes::from(r#"{"items":[]}"#.repeat(50)));
        let mut headers = HeaderMap::new();
        assert!(
            r.response(&headers)
                .headers()
                .get(header::CONTENT_ENCODING)
                .is_none()
        );
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0.8"),
        );
        let res = r.response(&headers);
        assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
        let mut out = String::new();
        flate2::read::GzDecoder::new(&r.gzip[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out.as_bytes(), &r.plain[..]);
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0"),
        );
        assert!(
            r.response(&headers)
                .headers()
                .get(header::CONTENT_ENCODING)
                .is_none()
        );
    }
}
