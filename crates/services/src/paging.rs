//! Keyset cursors shared by the lists that page by (time, id), newest first.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The cursor after the row at (`at`, `id`).
#[must_use]
pub fn encode(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{}", at.timestamp_micros(), id.simple())
}

/// The (time, id) a cursor of [`encode`] stands for; `None` for anything else.
#[must_use]
pub fn decode(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = c.split_once('_')?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)?;
    Some((at, Uuid::parse_str(id).ok()?))
}
