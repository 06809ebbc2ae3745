//! The SQL behind point reads and range scans, shared by the read view (on
//! the reader threads) and the write view (on the writer thread), plus the
//! error mapping every module uses.

use std::any::Any;
use std::ops::ControlFlow;

use ferry_store::{KeyRange, ReadTxn, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};

const GET: &str = "SELECT value FROM kv WHERE key = ?1";
const SCAN_BOUNDED: &str =
    "SELECT key, value FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key ASC";
const SCAN_BOUNDED_REV: &str =
    "SELECT key, value FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key DESC";
const SCAN_OPEN: &str = "SELECT key, value FROM kv WHERE key >= ?1 ORDER BY key ASC";
const SCAN_OPEN_REV: &str = "SELECT key, value FROM kv WHERE key >= ?1 ORDER BY key DESC";

/// The visitor of a range scan.
pub(crate) type Visitor<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// Maps a SQLite error to the store's error type.
pub(crate) fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("sqlite: {error}"))
}

/// Describes a caught panic payload for an error message.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Converts a sequence number read from SQLite.
pub(crate) fn seq_from_sql(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Backend(format!("negative change sequence {seq}")))
}

/// Converts a caller's sequence bound for SQLite, saturating (no stored
/// sequence can exceed `i64::MAX`).
pub(crate) fn seq_to_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn blob<'r>(row: &'r Row<'_>, idx: usize, what: &str) -> Result<&'r [u8], StoreError> {
    match row.get_ref(idx).map_err(backend)? {
        ValueRef::Blob(b) => Ok(b),
        other => Err(StoreError::Backend(format!(
            "sqlite: {what} has type {:?}, expected a blob",
            other.data_type()
        ))),
    }
}

/// The value at `key`.
pub(crate) fn get(conn: &Connection, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    let mut stmt = conn.prepare_cached(GET).map_err(backend)?;
    let mut rows = stmt.query([key]).map_err(backend)?;
    match rows.next().map_err(backend)? {
        Some(row) => Ok(Some(blob(row, 0, "a value")?.to_vec())),
        None => Ok(None),
    }
}

/// Visits the pairs of `range` in key order (descending when `reverse`)
/// until `visit` breaks. SQLite compares blobs with `memcmp` and then by
/// length, which is exactly unsigned lexicographic byte order.
pub(crate) fn scan(
    conn: &Connection,
    range: &KeyRange,
    reverse: bool,
    visit: &mut Visitor<'_>,
) -> Result<(), StoreError> {
    let start = range.start.as_slice();
    let (mut stmt, mut rows);
    match &range.end {
        Some(end) => {
            if end.as_slice() <= start {
                return Ok(());
            }
            let sql = if reverse {
                SCAN_BOUNDED_REV
            } else {
                SCAN_BOUNDED
            };
            stmt = conn.prepare_cached(sql).map_err(backend)?;
            rows = stmt.query([start, end.as_slice()]).map_err(backend)?;
        }
        None => {
            let sql = if reverse { SCAN_OPEN_REV } else { SCAN_OPEN };
            stmt = conn.prepare_cached(sql).map_err(backend)?;
            rows = stmt.query([start]).map_err(backend)?;
        }
    }
    while let Some(row) = rows.next().map_err(backend)? {
        let key = blob(row, 0, "a key")?;
        let value = blob(row, 1, "a value")?;
        if visit(key, value).is_break() {
            break;
        }
    }
    Ok(())
}

/// A read transaction's view: a connection inside `BEGIN … COMMIT`.
pub(crate) struct ReadView<'c> {
    pub(crate) conn: &'c Connection,
}

impl ReadTxn for ReadView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        get(self.conn, key)
    }

    fn scan(
        &self,
        range: &KeyRange,
        reverse: bool,
        visit: &mut ferry_store::ScanVisitor<'_>,
    ) -> Result<(), StoreError> {
        scan(self.conn, range, reverse, visit)
    }
}

/// Runs a one-statement SQL command through the statement cache.
pub(crate) fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(drop)
        .map_err(backend)
}
