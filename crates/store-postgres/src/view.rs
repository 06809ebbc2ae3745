//! The synchronous transaction views handed to closures.
//!
//! [`ReadTxn`] and [`WriteTxn`] are synchronous, but the client is async.
//! A closure therefore runs on a blocking thread (`spawn_blocking`) that
//! holds one pooled connection, and [`PgTxn`] drives each statement to
//! completion with [`Handle::block_on`], which is allowed on blocking
//! threads; the connection's I/O keeps running on the runtime's workers.
//! Every statement is one of a fixed handful, prepared once per connection
//! through the pool's statement cache, so that cache stays small.
//!
//! After a failed statement PostgreSQL aborts the whole transaction, and
//! `COMMIT` of an aborted transaction silently rolls back. So the first
//! failure is remembered ([`PgTxn::take_failure`]) and the runner refuses
//! to report a commit after it, even if the closure ignored the error.

use std::cell::RefCell;
use std::ops::ControlFlow;

use deadpool_postgres::ClientWrapper;
use ferry_store::{KeyRange, ReadTxn, ScanVisitor, StoreError, WriteTxn};
use tokio::runtime::Handle;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::PgError;

const GET: &str = "SELECT value FROM ferry_kv WHERE key = $1";
const SCAN_FORWARD: &str =
    "SELECT key, value FROM ferry_kv WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3";
const SCAN_FORWARD_OPEN: &str =
    "SELECT key, value FROM ferry_kv WHERE key >= $1 ORDER BY key LIMIT $2";
const SCAN_REVERSE: &str =
    "SELECT key, value FROM ferry_kv WHERE key >= $1 AND key < $2 ORDER BY key DESC LIMIT $3";
const SCAN_REVERSE_OPEN: &str =
    "SELECT key, value FROM ferry_kv WHERE key >= $1 ORDER BY key DESC LIMIT $2";
const PUT: &str = "INSERT INTO ferry_kv (key, value) VALUES ($1, $2)
                   ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";
const DELETE: &str = "DELETE FROM ferry_kv WHERE key = $1";

/// One open transaction on one connection, used from a blocking thread.
pub(crate) struct PgTxn<'a> {
    client: &'a ClientWrapper,
    handle: &'a Handle,
    scan_batch: i64,
    /// The first statement that failed; the server has aborted the
    /// transaction since.
    failure: RefCell<Option<PgError>>,
    /// The change record to append at commit.
    change: Option<Vec<u8>>,
}

impl<'a> PgTxn<'a> {
    /// A view of the transaction already begun on `client`.
    pub(crate) fn new(client: &'a ClientWrapper, handle: &'a Handle, scan_batch: usize) -> Self {
        Self {
            client,
            handle,
            scan_batch: i64::try_from(scan_batch).unwrap_or(i64::MAX).max(1),
            failure: RefCell::new(None),
            change: None,
        }
    }

    /// The first failure of a statement, if any.
    pub(crate) fn take_failure(&mut self) -> Option<PgError> {
        self.failure.get_mut().take()
    }

    /// The change record the closure set.
    pub(crate) fn take_change(&mut self) -> Option<Vec<u8>> {
        self.change.take()
    }

    /// Runs one cached statement and collects its rows.
    fn query(
        &self,
        what: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let result = self.handle.block_on(async {
            let statement = self.client.prepare_cached(sql).await?;
            self.client.query(&statement, params).await
        });
        result.map_err(|e| self.fail(PgError::query(what, &e)))
    }

    /// Remembers the first failure and turns it into the caller's error.
    fn fail(&self, e: PgError) -> StoreError {
        let message = e.to_store();
        let mut failure = self.failure.borrow_mut();
        if failure.is_none() {
            *failure = Some(e);
        }
        message
    }

    /// Visits `rows` (key, value); `Some(last key)` when the page was full
    /// and the scan should go on, `None` when it is finished.
    fn visit_page(
        &self,
        rows: &[Row],
        visit: &mut ScanVisitor<'_>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut last: &[u8] = &[];
        for row in rows {
            let key: &[u8] = row
                .try_get(0)
                .map_err(|e| self.fail(PgError::query("read scanned key", &e)))?;
            let value: &[u8] = row
                .try_get(1)
                .map_err(|e| self.fail(PgError::query("read scanned value", &e)))?;
            if let ControlFlow::Break(()) = visit(key, value) {
                return Ok(None);
            }
            last = key;
        }
        if (rows.len() as i64) < self.scan_batch {
            Ok(None)
        } else {
            Ok(Some(last.to_vec()))
        }
    }
}

impl ReadTxn for PgTxn<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.query("get", GET, &[&key])?;
        match rows.first() {
            None => Ok(None),
            Some(row) => row
                .try_get::<_, Vec<u8>>(0)
                .map(Some)
                .map_err(|e| self.fail(PgError::query("read value", &e))),
        }
    }

    /// Keyset pagination, [`crate::PostgresConfig::scan_batch`] rows per
    /// query. Forward pages continue at the successor of the last key seen
    /// (`last ‖ 0x00`, the smallest key greater than it); reverse pages
    /// continue below the last key seen, which becomes the exclusive end.
    fn scan(
        &self,
        range: &KeyRange,
        reverse: bool,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<(), StoreError> {
        let start = range.start.as_slice();
        if range.end.as_deref().is_some_and(|end| end <= start) {
            return Ok(());
        }
        let limit = self.scan_batch;
        if reverse {
            let mut end = range.end.clone();
            loop {
                let rows = match &end {
                    Some(end) => {
                        let end = end.as_slice();
                        self.query("scan", SCAN_REVERSE, &[&start, &end, &limit])?
                    }
                    None => self.query("scan", SCAN_REVERSE_OPEN, &[&start, &limit])?,
                };
                match self.visit_page(&rows, visit)? {
                    Some(last) => end = Some(last),
                    None => return Ok(()),
                }
            }
        } else {
            let mut from = range.start.clone();
            loop {
                let rows = match &range.end {
                    Some(end) => {
                        let (from, end) = (from.as_slice(), end.as_slice());
                        self.query("scan", SCAN_FORWARD, &[&from, &end, &limit])?
                    }
                    None => {
                        let from = from.as_slice();
                        self.query("scan", SCAN_FORWARD_OPEN, &[&from, &limit])?
                    }
                };
                match self.visit_page(&rows, visit)? {
                    Some(mut last) => {
                        last.push(0);
                        from = last;
                    }
                    None => return Ok(()),
                }
            }
        }
    }
}

impl WriteTxn for PgTxn<'_> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.query("put", PUT, &[&key, &value]).map(drop)
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.query("delete", DELETE, &[&key]).map(drop)
    }

    fn set_change(&mut self, payload: Vec<u8>) {
        self.change = Some(payload);
    }
}
