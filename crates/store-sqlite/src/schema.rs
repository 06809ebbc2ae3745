//! Opening connections: pragmas, the versioned schema and its migrations.
//!
//! The schema version lives in `PRAGMA user_version` and the file is tagged
//! with `PRAGMA application_id`, both set in the same transaction as the
//! migration that reaches them. Migration `n` (1-based) moves a database
//! from version `n - 1` to `n`; a database newer than this build refuses to
//! open rather than being misread.

use std::path::Path;

use ferry_store::StoreError;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::SqliteConfig;
use crate::query::{backend, seq_from_sql};

/// `PRAGMA application_id` of a Ferry database ("FRRY").
pub(crate) const APPLICATION_ID: i32 = 0x4652_5259;

/// The schema migrations, in order; the schema version is their count.
const MIGRATIONS: &[&str] = &[
    // 1: the key-value space, the change feed and backend metadata.
    "CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
     CREATE TABLE changes (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL);
     CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value NOT NULL) WITHOUT ROWID;",
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The `meta` row remembering the last sequence number ever assigned, so
/// numbering continues even after every change record has been pruned.
pub(crate) const LAST_SEQ: &str = "last_seq";

fn apply_common_pragmas(conn: &Connection, config: &SqliteConfig) -> Result<(), StoreError> {
    conn.busy_timeout(config.busy_timeout).map_err(backend)?;
    conn.pragma_update(None, "cache_size", -config.cache_size_kib.max(0))
        .map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(config.statement_cache.max(8));
    Ok(())
}

/// Opens the read-write connection: creates the directory and the file if
/// needed, switches to WAL with `synchronous` as `config.durability` says
/// and migrates the schema.
pub(crate) fn open_writer(path: &Path, config: &SqliteConfig) -> Result<Connection, StoreError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Backend(format!("create directory {}: {e}", parent.display()))
        })?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_EXRESCODE;
    let mut conn = Connection::open_with_flags(path, flags).map_err(backend)?;
    apply_common_pragmas(&conn, config)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(backend)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "sqlite: cannot enable WAL on {} (journal mode is {mode})",
            path.display()
        )));
    }
    // FULL (the default): every commit fsyncs the WAL, so an acknowledged
    // write survives power loss, not only a process crash. `fullfsync`
    // matters on macOS, where a plain fsync does not flush the drive's
    // cache.
    for (pragma, value) in [
        ("synchronous", config.durability.synchronous()),
        ("fullfsync", "ON"),
        ("checkpoint_fullfsync", "ON"),
        ("temp_store", "MEMORY"),
    ] {
        conn.pragma_update(None, pragma, value).map_err(backend)?;
    }
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT as i64)
        .map_err(backend)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// The size, in bytes, the WAL file is cut back to once a checkpoint has
/// emptied it (SQLite's `journal_size_limit`). A large transaction (one
/// 100,000-entity bulk insert) grows the WAL to ~100 MB; without a limit
/// the file would keep its largest size on disk for good. 4 MiB is about
/// what the WAL reaches between two automatic checkpoints (1,000 pages of
/// 4 KiB), so steady writes do not regrow it.
const WAL_SIZE_LIMIT: u64 = 4 << 20;

/// Opens a read-only connection; the writer must have created the schema.
pub(crate) fn open_reader(path: &Path, config: &SqliteConfig) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_EXRESCODE;
    let conn = Connection::open_with_flags(path, flags).map_err(backend)?;
    apply_common_pragmas(&conn, config)?;
    Ok(conn)
}

/// Brings the schema to [`SCHEMA_VERSION`] in one immediate transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(backend)?;
    let app_id: i32 = tx
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(backend)?;
    if version > 0 && app_id != APPLICATION_ID {
        return Err(StoreError::Backend(format!(
            "sqlite: not a Ferry database (application_id {app_id:#x}, user_version {version})"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "sqlite: database schema version {version} is newer than this build supports \
             ({SCHEMA_VERSION}); upgrade Ferry"
        )));
    }
    if version < 0 {
        return Err(StoreError::Backend(format!(
            "sqlite: invalid schema version {version}"
        )));
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql).map_err(|e| {
            StoreError::Backend(format!("sqlite: migration to version {}: {e}", i + 1))
        })?;
        tracing::info!(version = i + 1, "applied sqlite schema migration");
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(backend)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(backend)?;
    tx.commit().map_err(backend)
}

/// The last sequence number assigned: the larger of the newest change
/// record and the remembered `last_seq` (records may have been pruned).
pub(crate) fn load_last_seq(conn: &Connection) -> Result<u64, StoreError> {
    let seq: i64 = conn
        .query_row(
            "SELECT max(
                 coalesce((SELECT max(seq) FROM changes), 0),
                 coalesce((SELECT value FROM meta WHERE name = ?1), 0))",
            [LAST_SEQ],
            |row| row.get(0),
        )
        .map_err(backend)?;
    seq_from_sql(seq)
}

/// Copies the WAL into the database file and truncates it.
pub(crate) fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    let (busy, log, done): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .map_err(backend)?;
    if busy != 0 {
        tracing::warn!(log, done, "sqlite checkpoint could not complete");
    } else {
        tracing::debug!(log, done, "sqlite checkpoint complete");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Durability;

    #[test]
    fn the_writer_syncs_as_configured() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (durability, want) in [(Durability::PowerLoss, 2), (Durability::Process, 1)] {
            let config = SqliteConfig {
                durability,
                ..SqliteConfig::default()
            };
            let conn = open_writer(&dir.path().join("d.db"), &config).expect("open");
            let level: i64 = conn
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .expect("pragma");
            assert_eq!(level, want, "{durability:?}");
        }
        assert_eq!(SqliteConfig::default().durability, Durability::PowerLoss);
    }

    #[test]
    fn the_wal_is_cut_back_after_a_large_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d.db");
        let conn = open_writer(&path, &SqliteConfig::default()).expect("open");
        let wal = || std::fs::metadata(dir.path().join("d.db-wal")).map_or(0, |m| m.len());
        assert_eq!(WAL_SIZE_LIMIT, 4 << 20);
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        // Three times the limit, a page per row.
        let rows = 3 * WAL_SIZE_LIMIT / 4096;
        for i in 0..rows {
            conn.execute(
                "INSERT INTO kv (key, value) VALUES (?1, ?2)",
                rusqlite::params![i.to_be_bytes().to_vec(), vec![7u8; 4096]],
            )
            .expect("insert");
        }
        conn.execute_batch("COMMIT").expect("commit");
        assert!(
            wal() > 3 * WAL_SIZE_LIMIT,
            "the transaction grew the WAL: {}",
            wal()
        );
        // Once a checkpoint has emptied it, the next write starts the WAL
        // over and cuts the file back to the limit.
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .expect("checkpoint");
        conn.execute("INSERT INTO kv (key, value) VALUES (x'ff', x'01')", [])
            .expect("small write");
        assert!(wal() <= WAL_SIZE_LIMIT, "WAL {} above the limit", wal());
    }
}
