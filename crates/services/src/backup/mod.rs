//! Backups: one archive holding every table as data, every stored file, and a manifest
//! that lets a restore prove the archive whole before it writes anything.
//!
//! The archive (`.tar.gz`, see [`archive`]) holds, in this order:
//! - `tables/<table>.jsonl`: one JSON object per row, column name → value, in the
//!   engine-neutral forms of [`values`], for every table of [`tables::all`], parents
//!   first;
//! - `blobs/<sha256>`: every evidence and report file the rows refer to;
//! - `manifest.json` ([`Manifest`]): format version, creation time, source engine,
//!   schema version (the latest migration applied), and for every file its SHA-256
//!   and size, and for every table its row count.
//!
//! Invariants:
//! - a backup is one consistent moment: every table is read in one read transaction
//!   (PostgreSQL `REPEATABLE READ, READ ONLY`; on SQLite one deferred transaction on one
//!   connection, which WAL keeps on one snapshot while writers go on). Files are copied
//!   after it ends: they are named by their content and never change, so the snapshot's
//!   list of names is all that must be consistent;
//! - nothing is held whole in memory: rows stream to a spool file per table (a tar entry
//!   must state its size first), files stream from storage into the archive;
//! - a restore writes nothing until every file of the archive has matched the manifest,
//!   then loads all rows in one transaction that also checks the target is empty, and
//!   commits only after every file is back in storage.

pub mod archive;
mod tables;
pub mod values;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use ruleiq_core::Clock;
use ruleiq_db::sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    IsolationLevel, SqliteTransactionMode, Statement, TransactionOptions,
};
use ruleiq_migration::{Migrator, MigratorTrait};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{
    collections::{BTreeMap, BTreeSet},
    fs::File,
    io::{BufWriter, Seek, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use crate::evidence::store::{BlobStore, StoreError};
use archive::{ArchiveReader, ArchiveWriter, ReadError};
use tables::{Row, RowSink, Table};

/// What the manifest's `format` says.
pub const FORMAT: &str = "ruleiq-backup";
/// The archive layout this version writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const MANIFEST: &str = "manifest.json";
/// Bound values per INSERT on restore: as many rows as fit, to spend the time on rows
/// rather than statements, under both engines' limit (SQLite 32,766; PostgreSQL 65,535).
const INSERT_VALUES: usize = 30_000;
/// And no more rows than this per INSERT, to keep each statement's memory small.
const INSERT_ROWS: usize = 2_000;

/// The archive's table of contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    pub format_version: u32,
    pub created_at: DateTime<Utc>,
    /// The ruleIQ version that wrote it.
    pub ruleiq_version: String,
    /// `sqlite` or `postgres`.
    pub source_backend: String,
    /// The latest migration applied to the source database.
    pub schema_version: String,
    pub tables: Vec<TableFile>,
    pub blobs: Vec<BlobFile>,
    /// Files the rows refer to that were not in storage when the backup was made
    /// (already missing; `ruleiq evidence verify` reports them too).
    #[serde(default)]
    pub missing_blobs: Vec<String>,
}

/// One table's file in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFile {
    pub table: String,
    pub file: String,
    pub rows: u64,
    pub size: u64,
    pub sha256: String,
}

/// One stored file in the archive; its name is its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobFile {
    pub file: String,
    pub sha256: String,
    pub size: u64,
}

impl Manifest {
    /// Rows over every table.
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// Bytes over every stored file.
    #[must_use]
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }
}

/// Why a backup or a restore failed. Each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("table {table}: {source}")]
    Table { table: &'static str, source: DbErr },
    #[error("table {table}, column {column}: {reason}")]
    Column {
        table: &'static str,
        column: &'static str,
        reason: String,
    },
    #[error("the database's schema is {found}, but this ruleiq expects {expected}; {next}")]
    Schema {
        found: String,
        expected: String,
        next: &'static str,
    },
    #[error(
        "the database has {0}, which backups do not know; this is a bug in ruleiq: report it, and copy the database file or use pg_dump meanwhile"
    )]
    UnknownSchema(String),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} already exists; choose another file name or remove it first")]
    OutputExists(PathBuf),
    #[error("the backup is damaged: {0}; nothing was restored")]
    Damaged(String),
    #[error("{0}; nothing was restored")]
    Incompatible(String),
    #[error(
        "the target database is not empty ({0}); restore into an empty database, or pass --wipe-existing to delete all of its data first"
    )]
    NotEmpty(String),
    #[error("stored file {sha256}: {reason}; run `ruleiq evidence verify` to check storage")]
    Blob { sha256: String, reason: String },
    #[error("file storage: {0}")]
    Store(#[from] StoreError),
}

impl From<ReadError> for BackupError {
    fn from(e: ReadError) -> Self {
        Self::Damaged(e.to_string())
    }
}

/// Where progress lines go (the command line prints them on standard error).
pub type Progress<'a> = &'a mut (dyn FnMut(&str) + Send);

/// How a restore treats a target that already holds data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Existing {
    /// Refuse, naming the tables that hold rows.
    #[default]
    Refuse,
    /// Delete every row of every ruleIQ table first, in the same transaction as the
    /// load, so a restore that fails leaves the old data as it was.
    Wipe,
}

/// Backups and restores of one database and its file storage.
#[derive(Debug, Clone)]
pub struct Backups {
    db: DatabaseConnection,
    store: BlobStore,
    clock: Arc<dyn Clock>,
}

/// The name of the newest migration this build knows.
fn latest_migration() -> String {
    Migrator::migrations()
        .last()
        .map(|m| m.name().to_owned())
        .unwrap_or_default()
}

fn backend_name(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "postgres",
        DbBackend::Sqlite => "sqlite",
        _ => "other",
    }
}

fn file_err(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::File {
        path: path.to_owned(),
        source,
    }
}

/// A table's rows as JSON Lines in a spool file, hashed and counted as they are written.
struct Spool {
    out: BufWriter<File>,
    hasher: Sha256,
    size: u64,
    rows: u64,
    path: PathBuf,
}

impl RowSink for Spool {
    fn line(&mut self, line: &[u8]) -> Result<(), BackupError> {
        self.hasher.update(line);
        self.size += line.len() as u64;
        self.rows += 1;
        self.out.write_all(line).map_err(file_err(&self.path))
    }
}

impl Backups {
    /// Backups of `db` and the files in `store`.
    #[must_use]
    pub fn new(db: DatabaseConnection, store: BlobStore, clock: Arc<dyn Clock>) -> Self {
        Self { db, store, clock }
    }

    /// Writes a backup to `output` (first as `output.partial`, renamed once complete,
    /// so a file under the asked-for name is always whole).
    ///
    /// # Errors
    /// [`BackupError::Schema`] when the database is not at this build's schema,
    /// [`BackupError::UnknownSchema`] when it has tables or columns the backup does
    /// not know, [`BackupError::OutputExists`], and database, storage and file errors.
    pub async fn create(
        &self,
        output: &Path,
        progress: Progress<'_>,
    ) -> Result<Manifest, BackupError> {
        if output.exists() {
            return Err(BackupError::OutputExists(output.to_owned()));
        }
        let dir = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let partial = output.with_file_name(format!(
            "{}.partial",
            output
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let result = self.write(&dir, &partial, progress).await;
        match result {
            Ok(manifest) => {
                std::fs::rename(&partial, output).map_err(file_err(output))?;
                Ok(manifest)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                Err(e)
            }
        }
    }

    async fn write(
        &self,
        dir: &Path,
        partial: &Path,
        progress: Progress<'_>,
    ) -> Result<Manifest, BackupError> {
        let backend = self.db.get_database_backend();
        let created_at = self.clock.now();
        let file = File::create(partial).map_err(file_err(partial))?;
        // The archive is written with blocking calls on this task: it is a command of
        // its own, with nothing else on its runtime to hold up.
        let mut out = ArchiveWriter::new(file, u64::try_from(created_at.timestamp()).unwrap_or(0));
        let txn = match backend {
            DbBackend::Postgres => {
                ruleiq_db::begin_with_options(
                    &self.db,
                    TransactionOptions {
                        isolation_level: Some(IsolationLevel::RepeatableRead),
                        access_mode: Some(AccessMode::ReadOnly),
                        ..TransactionOptions::default()
                    },
                )
                .await?
            }
            _ => ruleiq_db::begin(&self.db).await?,
        };
        // The first read fixes the snapshot (SQLite starts it lazily), so the schema
        // version is read inside it.
        let schema_version = applied_schema(&txn).await?;
        let expected = latest_migration();
        if schema_version != expected {
            return Err(BackupError::Schema {
                found: schema_version,
                expected,
                next: "run `ruleiq migrate up` first, or back up with the ruleiq version that matches the database",
            });
        }
        let all = tables::all();
        check_schema(&txn, &all).await?;
        progress(&format!(
            "backing up {} tables from {} (schema {schema_version})",
            all.len(),
            backend_name(backend)
        ));

        let mut blobs = BTreeSet::new();
        let mut table_files = Vec::with_capacity(all.len());
        for table in &all {
            let started = Instant::now();
            let spool_file = tempfile::tempfile_in(dir).map_err(file_err(dir))?;
            let mut spool = Spool {
                out: BufWriter::with_capacity(256 * 1024, spool_file),
                hasher: Sha256::new(),
                size: 0,
                rows: 0,
                path: dir.to_owned(),
            };
            table.dump(&txn, &mut spool, &mut blobs).await?;
            let mut spooled = spool.out.into_inner().map_err(|e| BackupError::File {
                path: dir.to_owned(),
                source: e.into_error(),
            })?;
            spooled.rewind().map_err(file_err(dir))?;
            let name = format!("tables/{}.jsonl", table.name());
            out.append(&name, spool.size, &mut spooled)
                .map_err(file_err(partial))?;
            if spool.rows > 0 {
                progress(&format!(
                    "  {}: {} rows in {:.1} s",
                    table.name(),
                    spool.rows,
                    started.elapsed().as_secs_f64()
                ));
            }
            table_files.push(TableFile {
                table: table.name().to_owned(),
                file: name,
                rows: spool.rows,
                size: spool.size,
                sha256: hex::encode(spool.hasher.finalize()),
            });
        }
        // Read-only: nothing to commit. Ending it now lets SQLite checkpoint and
        // PostgreSQL vacuum while the files are copied.
        txn.rollback().await?;

        progress(&format!("copying {} stored files", blobs.len()));
        let mut blob_files = Vec::with_capacity(blobs.len());
        let mut missing = Vec::new();
        let mut last = Instant::now();
        let mut copied_bytes = 0u64;
        for (i, sha256) in blobs.iter().enumerate() {
            match self.copy_blob(sha256, &mut out, partial).await? {
                Some(size) => {
                    copied_bytes += size;
                    blob_files.push(BlobFile {
                        file: format!("blobs/{sha256}"),
                        sha256: sha256.clone(),
                        size,
                    });
                }
                None => {
                    progress(&format!(
                        "  warning: stored file {sha256} is referred to but missing from storage; the backup records it as missing"
                    ));
                    missing.push(sha256.clone());
                }
            }
            if last.elapsed().as_secs() >= 2 {
                last = Instant::now();
                progress(&format!(
                    "  {} of {} files, {} MB",
                    i + 1,
                    blobs.len(),
                    copied_bytes / 1_000_000
                ));
            }
        }

        let manifest = Manifest {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            created_at,
            ruleiq_version: env!("CARGO_PKG_VERSION").to_owned(),
            source_backend: backend_name(backend).to_owned(),
            schema_version,
            tables: table_files,
            blobs: blob_files,
            missing_blobs: missing,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::File {
            path: partial.to_owned(),
            source: e.into(),
        })?;
        out.append(MANIFEST, json.len() as u64, &mut &json[..])
            .map_err(file_err(partial))?;
        let file = out.finish().map_err(file_err(partial))?;
        file.sync_all().map_err(file_err(partial))?;
        Ok(manifest)
    }

    /// Streams one stored file into the archive, checking it still has its name's
    /// hash; `None` when it is not in storage.
    async fn copy_blob(
        &self,
        sha256: &str,
        out: &mut ArchiveWriter<File>,
        partial: &Path,
    ) -> Result<Option<u64>, BackupError> {
        let (size, stream) = match self.store.open(sha256).await {
            Ok(found) => found,
            Err(StoreError::Missing(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let name = format!("blobs/{sha256}");
        out.start_entry(&name, size).map_err(file_err(partial))?;
        let mut stream = std::pin::pin!(stream);
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            if written > size {
                break;
            }
            hasher.update(&chunk);
            out.write_data(&chunk).map_err(file_err(partial))?;
        }
        if written != size {
            return Err(BackupError::Blob {
                sha256: sha256.to_owned(),
                reason: format!("storage said {size} bytes but gave {written}"),
            });
        }
        if hex::encode(hasher.finalize()) != sha256 {
            return Err(BackupError::Blob {
                sha256: sha256.to_owned(),
                reason: "its content no longer has this SHA-256".into(),
            });
        }
        out.finish_entry(size).map_err(file_err(partial))?;
        Ok(Some(size))
    }

    /// Checks the archive at `input` against its manifest, without touching the
    /// database or storage.
    ///
    /// # Errors
    /// [`BackupError::Damaged`] naming the first file that does not match, or when
    /// the archive is truncated or has no manifest; [`BackupError::Incompatible`] for
    /// another format.
    pub fn verify(input: &Path, progress: Progress<'_>) -> Result<Manifest, BackupError> {
        let file = File::open(input).map_err(file_err(input))?;
        let mut reader = ArchiveReader::new(file);
        let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
        let mut manifest_bytes = None;
        let mut buf = vec![0u8; 256 * 1024];
        let mut last = Instant::now();
        while let Some(entry) = reader.next_entry()? {
            if entry.name == MANIFEST {
                let mut bytes = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0));
                loop {
                    let n = reader.read_data(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    bytes.extend_from_slice(&buf[..n]);
                }
                manifest_bytes = Some(bytes);
                continue;
            }
            if !(entry.name.starts_with("tables/") || entry.name.starts_with("blobs/")) {
                return Err(BackupError::Damaged(format!(
                    "{} is not part of a ruleIQ backup",
                    entry.name
                )));
            }
            let mut hasher = Sha256::new();
            let mut lines = 0u64;
            loop {
                let n = reader.read_data(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
            }
            seen.insert(
                entry.name.clone(),
                Seen {
                    sha256: hex::encode(hasher.finalize()),
                    size: entry.size,
                    lines,
                },
            );
            if last.elapsed().as_secs() >= 2 {
                last = Instant::now();
                progress(&format!("  checked {} files", seen.len()));
            }
        }
        let bytes = manifest_bytes.ok_or_else(|| {
            BackupError::Damaged(format!(
                "it has no {MANIFEST} (not a ruleIQ backup, or cut short)"
            ))
        })?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| BackupError::Damaged(format!("{MANIFEST} cannot be read: {e}")))?;
        if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
            return Err(BackupError::Incompatible(format!(
                "the archive is {} version {}; this ruleiq reads {FORMAT} version {FORMAT_VERSION}",
                manifest.format, manifest.format_version
            )));
        }
        let listed = manifest
            .tables
            .iter()
            .map(|t| (&t.file, &t.sha256, t.size, Some(t.rows)))
            .chain(
                manifest
                    .blobs
                    .iter()
                    .map(|b| (&b.file, &b.sha256, b.size, None)),
            );
        for (file, sha256, size, rows) in listed {
            let found = seen.remove(file.as_str()).ok_or_else(|| {
                BackupError::Damaged(format!("{file} is listed in the manifest but missing"))
            })?;
            if found.size != size {
                return Err(BackupError::Damaged(format!(
                    "{file} is {} bytes, the manifest says {size}",
                    found.size
                )));
            }
            if &found.sha256 != sha256 {
                return Err(BackupError::Damaged(format!(
                    "{file} has SHA-256 {}, the manifest says {sha256}",
                    found.sha256
                )));
            }
            if let Some(rows) = rows
                && rows != found.lines
            {
                return Err(BackupError::Damaged(format!(
                    "{file} has {} rows, the manifest says {rows}",
                    found.lines
                )));
            }
            if rows.is_none() && file.strip_prefix("blobs/") != Some(sha256.as_str()) {
                return Err(BackupError::Damaged(format!(
                    "{file} is not named by its SHA-256 {sha256}"
                )));
            }
        }
        if let Some(extra) = seen.keys().next() {
            return Err(BackupError::Damaged(format!(
                "{extra} is not listed in the manifest"
            )));
        }
        Ok(manifest)
    }

    /// Restores the archive at `input` into this database and storage.
    ///
    /// Order: the whole archive is checked against its manifest ([`Self::verify`]);
    /// the manifest's schema must be this build's; the target is migrated to it; then
    /// one transaction checks the target is empty (or wipes it, with
    /// [`Existing::Wipe`]), inserts every table in order, puts every file back in
    /// storage, resets PostgreSQL sequences and commits.
    ///
    /// # Errors
    /// [`BackupError::Damaged`] and [`BackupError::Incompatible`] before anything is
    /// written; [`BackupError::NotEmpty`] when the target holds data and `existing`
    /// is [`Existing::Refuse`]; database and storage errors, after which the
    /// transaction is rolled back (files already put back in storage stay, unreferenced,
    /// until the daily sweep removes them).
    pub async fn restore(
        &self,
        input: &Path,
        existing: Existing,
        progress: Progress<'_>,
    ) -> Result<Manifest, BackupError> {
        progress(&format!(
            "checking {} against its manifest",
            input.display()
        ));
        let manifest = Self::verify(input, progress)?;
        let expected = latest_migration();
        if manifest.schema_version != expected {
            return Err(BackupError::Incompatible(format!(
                "the backup's schema is {}, this ruleiq's is {expected}; restore with the ruleiq version that made the backup, then upgrade",
                manifest.schema_version
            )));
        }
        let all = tables::all();
        let known: BTreeSet<&str> = all.iter().map(|t| t.name()).collect();
        let carried: BTreeSet<&str> = manifest.tables.iter().map(|t| t.table.as_str()).collect();
        if known != carried {
            return Err(BackupError::Incompatible(
                "the backup's tables are not this ruleiq's, though its schema version is; it was not written by ruleiq backup".into(),
            ));
        }

        progress("migrating the target database");
        Migrator::up(&self.db, None).await?;
        let backend = self.db.get_database_backend();
        let txn = match backend {
            // Take the write lock at once: a restore must not interleave with a writer.
            DbBackend::Sqlite => {
                ruleiq_db::begin_with_options(
                    &self.db,
                    TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..TransactionOptions::default()
                    },
                )
                .await?
            }
            _ => ruleiq_db::begin(&self.db).await?,
        };
        let mut held = Vec::new();
        for table in &all {
            let n = table.count(&txn).await?;
            if n > 0 {
                held.push(format!("{}: {n} rows", table.name()));
            }
        }
        if !held.is_empty() {
            match existing {
                Existing::Refuse => {
                    txn.rollback().await?;
                    return Err(BackupError::NotEmpty(held.join(", ")));
                }
                Existing::Wipe => {
                    progress(&format!("deleting existing data ({})", held.join(", ")));
                    for table in all.iter().rev() {
                        table.wipe(&txn).await?;
                    }
                }
            }
        }

        let by_file: BTreeMap<&str, &TableFile> = manifest
            .tables
            .iter()
            .map(|t| (t.file.as_str(), t))
            .collect();
        let by_name: BTreeMap<&str, &dyn Table> =
            all.iter().map(|t| (t.name(), t.as_ref())).collect();
        let file = File::open(input).map_err(file_err(input))?;
        let mut reader = ArchiveReader::new(file);
        let mut restored_blobs = 0usize;
        while let Some(entry) = reader.next_entry()? {
            if let Some(listed) = by_file.get(entry.name.as_str()) {
                let table = by_name.get(listed.table.as_str()).copied().ok_or_else(|| {
                    BackupError::Incompatible(format!("unknown table {}", listed.table))
                })?;
                let started = Instant::now();
                let rows = load_table(&mut reader, &txn, table, listed).await?;
                if rows > 0 {
                    progress(&format!(
                        "  {}: {rows} rows in {:.1} s",
                        table.name(),
                        started.elapsed().as_secs_f64()
                    ));
                }
            } else if let Some(sha256) = entry.name.strip_prefix("blobs/") {
                self.restore_blob(&mut reader, sha256).await?;
                restored_blobs += 1;
                if restored_blobs.is_multiple_of(100) {
                    progress(&format!(
                        "  {restored_blobs} of {} files",
                        manifest.blobs.len()
                    ));
                }
            }
        }
        if backend == DbBackend::Postgres {
            reset_sequences(&txn, &known).await?;
        }
        txn.commit().await?;
        Ok(manifest)
    }

    async fn restore_blob(
        &self,
        reader: &mut ArchiveReader<File>,
        sha256: &str,
    ) -> Result<(), BackupError> {
        let mut buf = vec![0u8; 256 * 1024];
        let chunks = std::iter::from_fn(|| match reader.read_data(&mut buf) {
            Ok(0) => None,
            Ok(n) => Some(Ok(Bytes::copy_from_slice(&buf[..n]))),
            Err(e) => Some(Err(e)),
        });
        let stored = self
            .store
            .put_stream(futures::stream::iter(chunks), u64::MAX)
            .await?;
        if stored.sha256 != sha256 {
            return Err(BackupError::Damaged(format!(
                "blobs/{sha256} changed while it was being restored"
            )));
        }
        Ok(())
    }
}

/// What the check of an archive saw of one file.
struct Seen {
    sha256: String,
    size: u64,
    lines: u64,
}

/// Reads one table file from the archive and inserts its rows in batches, hashing it
/// again on the way (the file is read twice, and must not have changed between).
async fn load_table(
    reader: &mut ArchiveReader<File>,
    txn: &DatabaseTransaction,
    table: &dyn Table,
    listed: &TableFile,
) -> Result<u64, BackupError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let batch_rows = (INSERT_VALUES / table.columns().len().max(1)).clamp(1, INSERT_ROWS);
    let mut batch: Vec<Row> = Vec::with_capacity(batch_rows);
    let mut rows = 0u64;
    let parse = |line: &[u8], n: u64| -> Result<Row, BackupError> {
        serde_json::from_slice(line).map_err(|e| {
            BackupError::Damaged(format!("{} line {n} cannot be read: {e}", listed.file))
        })
    };
    loop {
        let n = reader.read_data(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(pos) = pending[start..].iter().position(|b| *b == b'\n') {
            rows += 1;
            batch.push(parse(&pending[start..start + pos], rows)?);
            start += pos + 1;
            if batch.len() == batch_rows {
                table.insert(txn, &batch).await?;
                batch.clear();
            }
        }
        pending.drain(..start);
    }
    if !pending.is_empty() {
        return Err(BackupError::Damaged(format!(
            "{} ends in the middle of a row",
            listed.file
        )));
    }
    table.insert(txn, &batch).await?;
    if hex::encode(hasher.finalize()) != listed.sha256 || rows != listed.rows {
        return Err(BackupError::Damaged(format!(
            "{} changed while it was being restored",
            listed.file
        )));
    }
    Ok(rows)
}

/// The latest migration recorded in the database.
/// "none" for a database never migrated (no ledger at all), which the caller refuses
/// like any other schema that is not this build's.
async fn applied_schema(txn: &DatabaseTransaction) -> Result<String, BackupError> {
    let row = txn
        .query_one_raw(Statement::from_string(
            txn.get_database_backend(),
            "SELECT version FROM seaql_migrations ORDER BY version DESC LIMIT 1",
        ))
        .await;
    Ok(match row {
        Ok(Some(row)) => row.try_get::<String>("", "version")?,
        Ok(None) | Err(_) => "none".to_owned(),
    })
}

/// Names of the tables in the database, and of a table's columns.
async fn names(txn: &DatabaseTransaction, table: Option<&str>) -> Result<BTreeSet<String>, DbErr> {
    let backend = txn.get_database_backend();
    let stmt = match (backend, table) {
        (DbBackend::Postgres, None) => Statement::from_string(
            backend,
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        ),
        (DbBackend::Postgres, Some(t)) => Statement::from_sql_and_values(
            backend,
            "SELECT column_name::text AS name FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
            [t.into()],
        ),
        (_, None) => Statement::from_string(
            backend,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        ),
        (_, Some(t)) => Statement::from_sql_and_values(
            backend,
            "SELECT name FROM pragma_table_info(?)",
            [t.into()],
        ),
    };
    txn.query_all_raw(stmt)
        .await?
        .iter()
        .map(|r| r.try_get::<String>("", "name"))
        .collect()
}

/// Refuses a database with a table or column the backup would leave out.
async fn check_schema(
    txn: &DatabaseTransaction,
    all: &[Box<dyn Table>],
) -> Result<(), BackupError> {
    let known: BTreeSet<&str> = all.iter().map(|t| t.name()).collect();
    let in_db = names(txn, None).await?;
    if let Some(extra) = in_db
        .iter()
        .find(|t| !known.contains(t.as_str()) && !tables::NOT_CARRIED.contains(&t.as_str()))
    {
        return Err(BackupError::UnknownSchema(format!("a table {extra}")));
    }
    for table in all {
        let columns = names(txn, Some(table.name())).await?;
        let expected: BTreeSet<String> = table.columns().into_iter().map(str::to_owned).collect();
        if let Some(extra) = columns.difference(&expected).next() {
            return Err(BackupError::UnknownSchema(format!(
                "a column {}.{extra}",
                table.name()
            )));
        }
        if let Some(gone) = expected.difference(&columns).next() {
            return Err(BackupError::UnknownSchema(format!(
                "no column {}.{gone}",
                table.name()
            )));
        }
    }
    Ok(())
}

/// Moves every PostgreSQL sequence that feeds a ruleIQ column past the largest value
/// restored, so the next generated value does not collide. (ruleIQ's keys are UUIDs
/// today, so this normally finds none; it keeps a later serial column safe.)
async fn reset_sequences(
    txn: &DatabaseTransaction,
    known: &BTreeSet<&str>,
) -> Result<(), BackupError> {
    let rows = txn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
             WHERE table_schema = current_schema() \
             AND (column_default LIKE 'nextval(%' OR is_identity = 'YES')",
        ))
        .await?;
    for row in rows {
        let table: String = row.try_get("", "t")?;
        let column: String = row.try_get("", "c")?;
        if !known.contains(table.as_str()) {
            continue;
        }
        let quoted_table = format!("\"{}\"", table.replace('"', "\"\""));
        let quoted_column = format!("\"{}\"", column.replace('"', "\"\""));
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), \
                 COALESCE((SELECT MAX({quoted_column}) FROM {quoted_table}), 0) + 1, false)"
            ),
            [quoted_table.clone().into(), column.into()],
        ))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleiq_config::{DatabaseSettings, DatabaseUrl};
    use ruleiq_core::SystemClock;
    use ruleiq_db::entities::role;
    use ruleiq_db::sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, PaginatorTrait};
    use std::time::Duration;

    fn role(name: &str) -> role::ActiveModel {
        let now = Utc::now();
        role::Model {
            id: uuid::Uuid::now_v7(),
            name: name.to_owned(),
            description: String::new(),
            permissions: serde_json::json!([]),
            created_at: now,
            updated_at: now,
        }
        .into_active_model()
    }

    /// A row committed by another connection once the backup has begun is not in it:
    /// every table is read from the one snapshot, whatever is written meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backup_is_one_moment_and_misses_what_is_written_while_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let settings = DatabaseSettings {
            url: DatabaseUrl::sqlite_file(&dir.path().join("ruleiq.db")),
            connect_timeout: Duration::from_secs(5),
            max_connections: None,
            sqlite_cache_kib: DatabaseSettings::DEFAULT_SQLITE_CACHE_KIB,
        };
        let db = ruleiq_db::connect(&settings).await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        role("owner").insert(&db).await.unwrap();
        let store = BlobStore::local(&dir.path().join("files")).unwrap();
        let backups = Backups::new(db.clone(), store, Arc::new(SystemClock));

        let mut wrote = false;
        let mut progress = |line: &str| {
            // Said once the snapshot has begun and before any table is read.
            if line.starts_with("backing up") {
                let settings = settings.clone();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let other = ruleiq_db::connect(&settings).await.unwrap();
                        role("viewer").insert(&other).await.unwrap();
                    });
                })
                .join()
                .unwrap();
                wrote = true;
            }
        };
        let output = dir.path().join("b.tar.gz");
        let manifest = backups.create(&output, &mut progress).await.unwrap();
        assert!(wrote, "the write happened during the backup");
        assert_eq!(role::Entity::find().count(&db).await.unwrap(), 2);
        let roles = manifest.tables.iter().find(|t| t.table == "roles").unwrap();
        assert_eq!(roles.rows, 1, "the backup holds the moment it began");
        // And the archive checks out against its manifest.
        let checked = Backups::verify(&output, &mut |_| {}).unwrap();
        assert_eq!(checked, manifest);
    }
}
