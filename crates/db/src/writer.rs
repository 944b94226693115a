//! One writer at a time on SQLite, queued in the process rather than in SQLite.
//!
//! SQLite lets one connection write at once. A connection that finds the write lock
//! taken waits in SQLite's busy handler, which sleeps in growing steps (1, 2, 5, 10,
//! 15, 20 ms and on) and checks again; under steady contention a write that needed a
//! few milliseconds waits tens. A hot write path that takes its turn here first
//! instead waits in an async queue and starts the moment the writer before it ends.
//!
//! The turn is process-wide, not per database: a deployment opens one SQLite file, and
//! tests that open several only serialise these short writes. PostgreSQL locks rows, so
//! there no turn is taken.

use sea_orm::{ConnectionTrait, DbBackend};
use tokio::sync::{Mutex, MutexGuard};

static SQLITE_WRITER: Mutex<()> = Mutex::const_new(());

/// Waits for this process's turn to write when `db` is SQLite; hold the guard until
/// the write transaction has committed or rolled back.
///
/// Take it only around a transaction that takes no other turn inside: the turn is
/// not re-entrant.
pub async fn writer_turn(db: &impl ConnectionTrait) -> Option<MutexGuard<'static, ()>> {
    match db.get_database_backend() {
        DbBackend::Sqlite => Some(SQLITE_WRITER.lock().await),
        _ => None,
    }
}
