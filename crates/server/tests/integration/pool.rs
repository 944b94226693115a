//! The connection pool hands out clean connections only.

use futures::FutureExt;
use ruleiq_db::sea_orm::{ConnectionTrait, DbBackend, Statement, sqlx::Connection};
use ruleiq_test_support::{TestDatabase, test_raw_settings};

async fn marks(db: &ruleiq_db::DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM marks",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

async fn one_connection() -> (
    TestDatabase,
    ruleiq_db::DatabaseConnection,
    ruleiq_db::DatabaseConnection,
) {
    let test_db = TestDatabase::new().await;
    let mut raw = test_raw_settings(&test_db);
    // One connection, so the one left in a bad state is the one every later statement
    // would use.
    raw.database_max_connections = Some(1);
    let settings = ruleiq_config::Settings::from_raw(raw).unwrap();
    let db = ruleiq_db::connect(&settings.database).await.unwrap();
    db.execute_unprepared("CREATE TABLE marks (n INTEGER NOT NULL)")
        .await
        .unwrap();
    let observer = ruleiq_db::connect(&settings.database).await.unwrap();
    (test_db, db, observer)
}

async fn mark(
    db: &ruleiq_db::DatabaseConnection,
    observer: &ruleiq_db::DatabaseConnection,
    n: i64,
) {
    let insert = db
        .execute_unprepared(&format!("INSERT INTO marks (n) VALUES ({n})"))
        .await
        .unwrap();
    assert_eq!(insert.rows_affected(), 1);
    assert_eq!(marks(observer).await, n, "write {n} is visible elsewhere");
}

/// A connection given back with a transaction still open (its borrower leaked it) is
/// not handed out again: every later statement on it would sit in a transaction that
/// never commits — reported as done, seen by no one else.
#[tokio::test]
async fn a_connection_returned_inside_a_transaction_is_not_used_again() {
    let (_db, db, observer) = one_connection().await;
    mark(&db, &observer, 1).await;
    for n in 2..=4_i64 {
        // Start a transaction and leak it (no commit, no rollback), then give the
        // connection back.
        match db.get_database_backend() {
            DbBackend::Sqlite => {
                let mut conn = db.get_sqlite_connection_pool().acquire().await.unwrap();
                std::mem::forget(conn.begin().await.unwrap());
            }
            _ => {
                let mut conn = db.get_postgres_connection_pool().acquire().await.unwrap();
                std::mem::forget(conn.begin().await.unwrap());
            }
        }
        mark(&db, &observer, n).await;
    }
}

/// A task that asks for a transaction and is dropped before the answer (a worker
/// stopping mid-poll, a client hanging up) leaves nothing open either. (sqlx's own
/// PostgreSQL `begin` does, which is why every transaction starts through
/// `ruleiq_db::begin`.)
#[tokio::test]
async fn a_transaction_abandoned_as_it_starts_does_not_swallow_later_writes() {
    let (_db, db, observer) = one_connection().await;
    let mut abandoned = 0;
    for n in 1..=10_i64 {
        // Poll the start of a transaction once, then drop it.
        if ruleiq_db::begin(&db).now_or_never().is_none() {
            abandoned += 1;
        }
        // Let the start reach the database before the next statement queues for the
        // one connection, as a busy server would.
        tokio::task::yield_now().await;
        mark(&db, &observer, n).await;
    }
    assert!(abandoned > 0, "no transaction start was abandoned");
}
