//! Starting transactions that a cancelled caller cannot leave open.
//!
//! sqlx's PostgreSQL driver counts a transaction as started only once the server has
//! confirmed `BEGIN`. A caller dropped while it waits — a client hanging up on a
//! request, a timeout, a worker shutting down — leaves the server inside a transaction
//! that nothing will end, on a connection that goes back to the pool looking clean:
//! every later borrower's writes then sit in that transaction, reported as done and
//! lost when the connection closes (the integration test
//! `pool::a_transaction_abandoned_as_it_starts_does_not_swallow_later_writes` shows
//! it). Starting the transaction on a task
//! of its own means it always completes; if the caller has gone by then, the
//! transaction is dropped with its count right, and rolled back like any other.

use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbErr, TransactionOptions, TransactionTrait,
};

/// A transaction on `db`, with the default options.
///
/// # Errors
/// When the database refuses or cannot be reached.
pub async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    begin_with_options(db, TransactionOptions::default()).await
}

/// A transaction on `db` with `options` (isolation, access mode, SQLite's lock mode).
///
/// # Errors
/// When the database refuses or cannot be reached.
pub async fn begin_with_options(
    db: &DatabaseConnection,
    options: TransactionOptions,
) -> Result<DatabaseTransaction, DbErr> {
    let db = db.clone();
    tokio::spawn(async move { db.begin_with_options(options).await })
        .await
        .map_err(|e| DbErr::Custom(format!("starting a transaction failed: {e}")))?
}
