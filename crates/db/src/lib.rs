//! Persistence: the connection, the entities and their repositories.
//!
//! Repositories are plain functions generic over [`sea_orm::ConnectionTrait`], so the
//! same call works on the pool and inside a transaction. Nothing here knows about HTTP.

pub mod connect;
pub mod entities;
pub mod repositories;
pub mod transaction;
pub mod writer;

pub use connect::{
    ConnectError, DatabaseHealth, PoolStats, connect, database_health, migrations_pending,
    pool_stats,
};
pub use sea_orm::{self, DatabaseConnection, DbErr};
pub use transaction::{begin, begin_with_options};
pub use writer::writer_turn;
