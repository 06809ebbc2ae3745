//! The reader pool: a few OS threads, each owning one read-only connection.
//!
//! Jobs are closures over a connection, taken from one shared queue by
//! whichever reader is idle. A read transaction is a deferred `BEGIN` …
//! `COMMIT`, so the closure sees the WAL snapshot taken at its first read
//! for its whole run, while the writer keeps committing.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use ferry_store::{Change, ReadFn, StoreError};
use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::SqliteConfig;
use crate::query::{ReadView, backend, exec, panic_message, seq_from_sql, seq_to_sql};
use crate::schema;

/// Work for a reader thread.
pub(crate) type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// The running reader threads.
pub(crate) struct Readers {
    /// Where jobs go; dropping it lets the threads finish the queue and exit.
    pub(crate) tx: Sender<ReadJob>,
    /// The threads, to join on close.
    pub(crate) threads: Vec<JoinHandle<()>>,
}

/// Starts `count` reader threads and waits until each has its connection.
pub(crate) async fn spawn(
    path: &Path,
    config: &SqliteConfig,
    count: usize,
) -> Result<Readers, StoreError> {
    let (tx, rx) = mpsc::channel::<ReadJob>();
    let rx = Arc::new(Mutex::new(rx));
    let mut threads = Vec::with_capacity(count);
    let mut ready = Vec::with_capacity(count);
    for i in 0..count {
        let (ready_tx, ready_rx) = oneshot::channel();
        let rx = rx.clone();
        let path: PathBuf = path.to_owned();
        let config = config.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ferry-sqlite-reader-{i}"))
            .spawn(move || match schema::open_reader(&path, &config) {
                Ok(conn) => {
                    let _ = ready_tx.send(Ok(()));
                    run(conn, &rx);
                }
                Err(e) => drop(ready_tx.send(Err(e))),
            })
            .map_err(|e| StoreError::Backend(format!("spawn sqlite reader thread: {e}")))?;
        threads.push(thread);
        ready.push(ready_rx);
    }
    for ready in ready {
        // On failure `tx` drops here and the readers that did start exit.
        ready.await.map_err(|_| {
            StoreError::Backend("sqlite reader thread exited while opening".into())
        })??;
    }
    Ok(Readers { tx, threads })
}

/// A reader thread's loop: one job at a time until the queue closes.
fn run(conn: Connection, rx: &Mutex<Receiver<ReadJob>>) {
    loop {
        // The lock is held only while waiting; the job runs without it.
        let job = rx.lock().recv();
        let Ok(job) = job else { return };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| job(&conn))) {
            tracing::error!(panic = %panic_message(payload.as_ref()), "sqlite reader job panicked");
        }
        if !conn.is_autocommit() {
            // A job left its transaction open; never carry a stale snapshot
            // into the next one.
            let _ = exec(&conn, "ROLLBACK");
        }
    }
}

/// A job running `f` in a read transaction and answering on `reply`.
pub(crate) fn read_txn(f: ReadFn, reply: oneshot::Sender<Result<(), StoreError>>) -> ReadJob {
    Box::new(move |conn| {
        let _ = reply.send(read_txn_on(conn, f));
    })
}

fn read_txn_on(conn: &Connection, f: ReadFn) -> Result<(), StoreError> {
    exec(conn, "BEGIN DEFERRED")?;
    let result =
        catch_unwind(AssertUnwindSafe(|| f(&ReadView { conn }))).unwrap_or_else(|payload| {
            let msg = panic_message(payload.as_ref());
            tracing::error!(panic = %msg, "read transaction panicked");
            Err(StoreError::Backend(format!(
                "read transaction panicked: {msg}"
            )))
        });
    let ended = exec(conn, "COMMIT");
    if ended.is_err() && !conn.is_autocommit() {
        let _ = exec(conn, "ROLLBACK");
    }
    result.and(ended)
}

/// A job reading up to `limit` change records after `after`.
pub(crate) fn changes_since(
    after: u64,
    limit: usize,
    reply: oneshot::Sender<Result<Vec<Change>, StoreError>>,
) -> ReadJob {
    Box::new(move |conn| {
        let _ = reply.send(changes_since_on(conn, after, limit));
    })
}

fn changes_since_on(
    conn: &Connection,
    after: u64,
    limit: usize,
) -> Result<Vec<Change>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached("SELECT seq, payload FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .map_err(backend)?;
    let mut rows = stmt.query([seq_to_sql(after), limit]).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let seq: i64 = row.get(0).map_err(backend)?;
        let payload: Vec<u8> = row.get(1).map_err(backend)?;
        out.push(Change {
            seq: seq_from_sql(seq)?,
            payload,
        });
    }
    Ok(out)
}
