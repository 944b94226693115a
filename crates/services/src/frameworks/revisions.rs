//! The catalogue's revision per organisation, remembered in memory so a catalogue read
//! or a search needs no database round trip to know its cached answer is current.
//!
//! The rules are those of the session cache ([`ExpiringCache`]): a change made through
//! this process clears it before the request returns; a change made by another
//! instance arrives as a PostgreSQL notification on
//! [`CATALOG_CHANNEL`](ruleiq_db::repositories::frameworks::CATALOG_CHANNEL) and clears
//! it; while notifications cannot be heard it is off; and entries expire after a
//! second as a backstop (for example after `ruleiq frameworks import` wrote to the same
//! SQLite file from another process).

use ruleiq_db::repositories::frameworks::Revision;
use std::time::Duration;
use uuid::Uuid;

use crate::cache::ExpiringCache;

/// Revisions by organisation (`None`: the library alone).
pub type RevisionCache = ExpiringCache<Option<Uuid>, Revision>;

/// How long a remembered revision is trusted without a notification.
const TTL: Duration = Duration::from_secs(1);
/// Organisations remembered at most; past it, the cache starts again.
const MAX_ENTRIES: usize = 10_000;

/// A revision cache with the catalogue's lifetime and bound.
#[must_use]
pub fn cache() -> RevisionCache {
    ExpiringCache::new(TTL, MAX_ENTRIES)
}
