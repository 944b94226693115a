//! A short-lived, in-process cache of what authenticating a session loads, so a busy
//! API does not ask the database the same question on every request.
//!
//! Correctness comes first: every identity change made through this process (sign-out,
//! revocation, role or status change, password change, rename) clears the cache before
//! it returns, and announces the change so other instances clear theirs too (on
//! PostgreSQL through `NOTIFY` on [`CHANNEL`], which every instance `LISTEN`s for;
//! SQLite has one instance). The rules that make that safe are those of
//! [`ExpiringCache`].

use ruleiq_db::repositories::identity::SessionPrincipal;
use std::time::Duration;
use uuid::Uuid;

use crate::cache::ExpiringCache;

/// The PostgreSQL channel identity changes are announced on.
pub const CHANNEL: &str = "ruleiq_identity";

/// Sessions kept at most; past it, the cache starts again.
const MAX_ENTRIES: usize = 100_000;

/// Cached session lookups, by session id (shared, so a hit copies a pointer).
pub type SessionCache = ExpiringCache<Uuid, std::sync::Arc<SessionPrincipal>>;

/// A session cache keeping lookups for `ttl` (`SESSION_CACHE_MS`; zero: never).
#[must_use]
pub fn cache(ttl: Duration) -> SessionCache {
    ExpiringCache::new(ttl, MAX_ENTRIES)
}
