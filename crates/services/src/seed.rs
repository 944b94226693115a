//! `ruleiq seed`: reference data every installation needs. Idempotent: each step
//! inserts what is missing and refreshes what it owns, and running it again is safe.

use ruleiq_core::Clock;
use ruleiq_db::{DatabaseConnection, DbErr, repositories::roles};

/// What one seeding run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub roles: usize,
}

/// Writes the reference data.
///
/// # Errors
/// On a database error.
pub async fn run(db: &DatabaseConnection, clock: &dyn Clock) -> Result<SeedReport, DbErr> {
    let roles = roles::upsert_all(db, clock.now()).await?;
    Ok(SeedReport { roles })
}
