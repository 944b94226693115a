//! Every table a backup carries, in foreign-key order, and how each is read and written.
//!
//! Rows go through the SeaORM entities rather than through SQL of our own: the entity
//! knows each column's type, and SeaORM writes a value the same way on restore as the
//! application writes it every day. That matters most on SQLite, where a timestamp is
//! text and compared as text, so it must be written in exactly the application's form.
//!
//! Invariant: [`all`] lists the tables parents first (a table after every table it
//! refers to), so rows can be inserted in this order and deleted in the reverse with
//! foreign keys enforced. A backup refuses to run if the database has a table or a
//! column this list does not know, so a new migration cannot be silently left out.

use async_trait::async_trait;
use futures::TryStreamExt;
use ruleiq_db::entities as e;
use ruleiq_db::sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, IdenStatic, Iterable,
    ModelTrait, PaginatorTrait,
};
use serde_json::{Map, Value as Json};
use std::{collections::BTreeSet, marker::PhantomData};

use super::{BackupError, values};

/// One row: column name → value.
pub type Row = Map<String, Json>;

/// Where a table's rows go while it is dumped.
pub trait RowSink: Send {
    /// Takes one row: a JSON object and its closing newline.
    ///
    /// # Errors
    /// When the row cannot be written.
    fn line(&mut self, line: &[u8]) -> Result<(), BackupError>;
}

/// Reading and writing one table.
#[async_trait]
pub trait Table: Send + Sync {
    /// The table's name in the database.
    fn name(&self) -> &'static str;
    /// Its columns, in the entity's order.
    fn columns(&self) -> Vec<&'static str>;
    /// Streams every row into `sink` and the blob hashes they name into `blobs`;
    /// returns how many rows.
    async fn dump(
        &self,
        txn: &DatabaseTransaction,
        sink: &mut dyn RowSink,
        blobs: &mut BTreeSet<String>,
    ) -> Result<u64, BackupError>;
    /// Inserts `rows` (already read from the archive).
    async fn insert(&self, txn: &DatabaseTransaction, rows: &[Row]) -> Result<(), BackupError>;
    /// How many rows the table holds.
    async fn count(&self, txn: &DatabaseTransaction) -> Result<u64, BackupError>;
    /// Deletes every row.
    async fn wipe(&self, txn: &DatabaseTransaction) -> Result<(), BackupError>;
}

struct Of<E> {
    blob_columns: &'static [&'static str],
    entity: PhantomData<fn() -> E>,
}

fn of<E: EntityTrait>(blob_columns: &'static [&'static str]) -> Box<dyn Table>
where
    E::Model: Sync,
    E::ActiveModel: Send,
{
    Box::new(Of::<E> {
        blob_columns,
        entity: PhantomData,
    })
}

/// Every table, parents first.
#[must_use]
pub fn all() -> Vec<Box<dyn Table>> {
    vec![
        of::<e::role::Entity>(&[]),
        of::<e::job_run::Entity>(&[]),
        of::<e::organization::Entity>(&[]),
        of::<e::user::Entity>(&[]),
        of::<e::membership::Entity>(&[]),
        of::<e::session::Entity>(&[]),
        of::<e::refresh_token::Entity>(&[]),
        of::<e::audit_entry::Entity>(&[]),
        of::<e::audit_chain_head::Entity>(&[]),
        of::<e::invitation::Entity>(&[]),
        of::<e::password_reset::Entity>(&[]),
        of::<e::framework::Entity>(&[]),
        of::<e::framework_domain::Entity>(&[]),
        of::<e::control::Entity>(&[]),
        of::<e::question::Entity>(&[]),
        of::<e::question_control::Entity>(&[]),
        of::<e::control_mapping::Entity>(&[]),
        of::<e::search_document::Entity>(&[]),
        of::<e::content_import::Entity>(&[]),
        of::<e::business_profile::Entity>(&[]),
        of::<e::assessment::Entity>(&[]),
        of::<e::answer::Entity>(&[]),
        of::<e::plan::Entity>(&[]),
        of::<e::plan_task::Entity>(&[]),
        of::<e::readiness_snapshot::Entity>(&[]),
        of::<e::evidence_item::Entity>(&["sha256"]),
        of::<e::evidence_version::Entity>(&["sha256"]),
        of::<e::evidence_control::Entity>(&[]),
        of::<e::evidence_event::Entity>(&[]),
        of::<e::policy::Entity>(&[]),
        of::<e::policy_version::Entity>(&[]),
        of::<e::policy_control::Entity>(&[]),
        of::<e::ai_usage::Entity>(&[]),
        of::<e::ai_budget::Entity>(&[]),
        of::<e::chat_conversation::Entity>(&[]),
        of::<e::chat_message::Entity>(&[]),
        of::<e::report_schedule::Entity>(&[]),
        of::<e::report::Entity>(&["sha256", "blob_key"]),
        of::<e::mail_outbox::Entity>(&[]),
        of::<e::mail_outbox::attachment::Entity>(&[]),
        of::<e::notification::Entity>(&[]),
        of::<e::notification::preference::Entity>(&[]),
    ]
}

/// Tables in the database that are not ruleIQ's data and are left out on purpose:
/// the migration ledgers (the manifest records the schema version instead) and the
/// job queue's own tables, whose layout differs between the engines and whose
/// entries point at work in flight on the machine that made the backup.
pub const NOT_CARRIED: &[&str] = &["seaql_migrations", "_sqlx_migrations", "Jobs", "Workers"];

/// Whether `s` is a SHA-256 in lower-case hex, as blob names are.
fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[async_trait]
impl<E: EntityTrait> Table for Of<E>
where
    E::Model: Sync,
    E::ActiveModel: Send,
{
    fn name(&self) -> &'static str {
        E::default().table_name()
    }

    fn columns(&self) -> Vec<&'static str> {
        E::Column::iter().map(|c| c.as_str()).collect()
    }

    async fn dump(
        &self,
        txn: &DatabaseTransaction,
        sink: &mut dyn RowSink,
        blobs: &mut BTreeSet<String>,
    ) -> Result<u64, BackupError> {
        let table = self.name();
        // Each row is written straight to JSON, keys encoded once per table: a map per
        // row would cost an allocation per column of every row.
        let keys: Vec<Vec<u8>> = E::Column::iter()
            .map(|c| serde_json::to_vec(c.as_str()).unwrap_or_default())
            .collect();
        let mut line = Vec::with_capacity(1024);
        let mut rows = E::find().stream(txn).await.map_err(db(table))?;
        let mut n = 0u64;
        while let Some(model) = rows.try_next().await.map_err(db(table))? {
            line.clear();
            line.push(b'{');
            for (i, column) in E::Column::iter().enumerate() {
                let value =
                    values::to_json(model.get(column)).map_err(|reason| BackupError::Column {
                        table,
                        column: column.as_str(),
                        reason,
                    })?;
                if self.blob_columns.contains(&column.as_str())
                    && let Json::String(s) = &value
                    && is_sha256(s)
                {
                    blobs.insert(s.clone());
                }
                if i > 0 {
                    line.push(b',');
                }
                line.extend_from_slice(&keys[i]);
                line.push(b':');
                serde_json::to_writer(&mut line, &value).map_err(|e| BackupError::Column {
                    table,
                    column: column.as_str(),
                    reason: e.to_string(),
                })?;
            }
            line.extend_from_slice(b"}\n");
            sink.line(&line)?;
            n += 1;
        }
        Ok(n)
    }

    async fn insert(&self, txn: &DatabaseTransaction, rows: &[Row]) -> Result<(), BackupError> {
        let table = self.name();
        let mut models = Vec::with_capacity(rows.len());
        for row in rows {
            let mut model = <E::ActiveModel as ActiveModelTrait>::default();
            for column in E::Column::iter() {
                let name = column.as_str();
                let json = row.get(name).cloned().ok_or_else(|| BackupError::Column {
                    table,
                    column: name,
                    reason: "missing from a row".into(),
                })?;
                values::from_json(column.def().get_column_type(), json)
                    .and_then(|v| model.try_set(column, v).map_err(|e| e.to_string()))
                    .map_err(|reason| BackupError::Column {
                        table,
                        column: name,
                        reason,
                    })?;
            }
            if row.len() != E::Column::iter().count() {
                return Err(BackupError::Column {
                    table,
                    column: "?",
                    reason: format!(
                        "a row has columns this version does not know: {}",
                        row.keys()
                            .filter(|k| !E::Column::iter().any(|c| c.as_str() == k.as_str()))
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            models.push(model);
        }
        if models.is_empty() {
            return Ok(());
        }
        E::insert_many(models)
            .exec_without_returning(txn)
            .await
            .map_err(db(table))?;
        Ok(())
    }

    async fn count(&self, txn: &DatabaseTransaction) -> Result<u64, BackupError> {
        E::find().count(txn).await.map_err(db(self.name()))
    }

    async fn wipe(&self, txn: &DatabaseTransaction) -> Result<(), BackupError> {
        E::delete_many().exec(txn).await.map_err(db(self.name()))?;
        Ok(())
    }
}

fn db(table: &'static str) -> impl Fn(ruleiq_db::sea_orm::DbErr) -> BackupError {
    move |source| BackupError::Table { table, source }
}
