//! `ruleiq seed`: reference data every installation needs — the roles and the
//! framework library. Idempotent: each step inserts what is missing and refreshes what
//! it owns, and running it again is safe (an unchanged library is not rewritten).

use ruleiq_core::Clock;
use ruleiq_db::{DatabaseConnection, DbErr, repositories::roles};

use crate::frameworks::{
    content::{self, ContentError, Library},
    library::{self, LoadReport},
};

/// What one seeding run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub roles: usize,
    pub library: LoadReport,
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("the framework content is invalid: {0}")]
    Content(#[from] ContentError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Writes the reference data, with the library built into the binary.
///
/// # Errors
/// On a database error, or content that fails its checks.
pub async fn run(db: &DatabaseConnection, clock: &dyn Clock) -> Result<SeedReport, SeedError> {
    run_with(db, clock, &content::embedded()?).await
}

/// Writes the reference data with the given library.
///
/// # Errors
/// On a database error.
pub async fn run_with(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    library: &Library,
) -> Result<SeedReport, SeedError> {
    let roles = roles::upsert_all(db, clock.now()).await?;
    let library = library::load(db, library, clock.now()).await?;
    Ok(SeedReport { roles, library })
}
