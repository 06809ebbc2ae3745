//! Ferry's embedded default store: SQLite (WAL) behind [`ferry_store::Store`].
//!
//! # Layout
//!
//! One database file holds
//! - `kv(key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID`: the
//!   ordered key-value space. SQLite compares blobs with `memcmp` and then
//!   by length, which is the unsigned byte order the store contract asks
//!   for, so range scans are plain index range scans in either direction;
//! - `changes(seq INTEGER PRIMARY KEY, payload BLOB NOT NULL)`: the change
//!   feed;
//! - `meta(name, value)`: backend bookkeeping (the last sequence number
//!   ever assigned, so numbering continues after the feed is pruned);
//! - `PRAGMA user_version` / `application_id`: the schema version and a
//!   Ferry tag; schema changes are numbered migrations applied at open.
//!
//! # Threads
//!
//! The only read-write connection sits behind a mutex, served by one
//! dedicated **writer thread**, and a small pool of **reader threads**
//! ([`SqliteConfig::readers`], default 2) each own a read-only connection.
//! Transactions are closures shipped to those threads over channels and
//! answered through oneshot channels, so a query's many point reads and
//! scans run without hopping threads. One exception: a short write
//! ([`Store::write_small_boxed`]: a client's few entities, never an import
//! or an index build) that finds the writer free, with no other write
//! queued for it, commits on its caller's thread
//! ([`SqliteConfig::inline_commits`], on by default),
//! which spares an uncontended writer the two thread hand-offs, the larger
//! part of its cost; once writers are seen queueing, the next writes go
//! through the thread again so that they share commits
//! (`committer.rs`).
//!
//! # Group commit
//!
//! The writer thread blocks for a job, then drains every job already queued
//! (up to [`SqliteConfig::max_batch`]) and runs them in one `BEGIN IMMEDIATE` …
//! `COMMIT`. Each job after the first runs inside its own `SAVEPOINT`, so a
//! job that rolls back, returns an error or panics discards only its own
//! writes; the first needs none (discarding it rolls back a transaction
//! that holds nothing else, and the next job begins a new one). Change
//! records are numbered in job order. Replies go out only after the one
//! `COMMIT` succeeded, which makes the cost of the fsync shared by the
//! whole group; if the commit fails, every job in the group gets the error.
//! Because there is a single writer, transactions are serialisable and a
//! write closure runs exactly once.
//!
//! # Reads
//!
//! A read transaction is a deferred `BEGIN` … `COMMIT` on a reader: the
//! closure sees one WAL snapshot for its whole run while the writer keeps
//! committing, and every write acknowledged before the read started.
//!
//! # Durability
//!
//! `journal_mode=WAL` with `synchronous=FULL` (and `fullfsync` on macOS):
//! a commit returns only after the WAL has been fsynced, so an acknowledged
//! write survives a process crash and power loss. [`Durability::Process`]
//! (`synchronous=NORMAL`, what the reference `@triplit/server` runs) skips
//! that fsync: acknowledged writes still survive a crash of the process,
//! but the last ones before a power loss or an OS crash may be lost (the
//! database stays consistent). [`Store::close`] finishes
//! the queued writes, checkpoints the WAL into the database file
//! (`wal_checkpoint(TRUNCATE)`) and joins the threads. Dropping the store
//! without closing it is safe: the threads finish what is queued and exit,
//! and SQLite recovers from the WAL on the next open.
//!
//! Panics inside a transaction closure are caught where it runs and
//! answered as [`StoreError::Backend`]; the threads keep serving.

mod committer;
mod query;
mod reader;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use ferry_store::{Change, ReadFn, Store, StoreError, WriteFn};
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};

use crate::committer::{Committer, WriterMsg};
use crate::reader::ReadJob;
use crate::writer::{Job, Writer};

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = schema::SCHEMA_VERSION;

/// Tuning for [`SqliteStore::open_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// Reader threads, each with its own read-only connection (at least 1).
    pub readers: usize,
    /// The most write transactions committed together in one group.
    pub max_batch: usize,
    /// How long a connection waits for a lock held by another connection
    /// (another process, or a checkpoint) before failing.
    pub busy_timeout: Duration,
    /// SQLite's page cache per connection, in KiB.
    pub cache_size_kib: i64,
    /// Prepared statements cached per connection.
    pub statement_cache: usize,
    /// What an acknowledged write survives.
    pub durability: Durability,
    /// Whether a write that finds the writer free commits on the calling
    /// thread instead of being handed to the writer thread and back (see
    /// the crate docs, "Threads").
    pub inline_commits: bool,
}

/// What an acknowledged write survives (SQLite's `synchronous` in WAL
/// mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Power loss and OS crashes: every commit fsyncs the WAL
    /// (`synchronous=FULL`). The default.
    #[default]
    PowerLoss,
    /// A crash of the process only: commits are not fsynced, the WAL is at
    /// checkpoints (`synchronous=NORMAL`).
    Process,
}

impl Durability {
    /// The `synchronous` pragma's value.
    pub fn synchronous(self) -> &'static str {
        match self {
            Durability::PowerLoss => "FULL",
            Durability::Process => "NORMAL",
        }
    }
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            readers: 2,
            max_batch: 256,
            busy_timeout: Duration::from_secs(5),
            cache_size_kib: 32 * 1024,
            statement_cache: 32,
            durability: Durability::PowerLoss,
            inline_commits: true,
        }
    }
}

/// Counters of the writer's work, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqliteStats {
    /// Group transactions committed.
    pub group_commits: u64,
    /// Jobs (write transactions and prunes) that were part of a committed
    /// group, whatever their own outcome.
    pub grouped_jobs: u64,
    /// Write transactions that ran on their caller's thread (each also
    /// counts as a group of one when it committed).
    pub inline_jobs: u64,
}

/// Shared counters behind [`SqliteStats`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    group_commits: AtomicU64,
    grouped_jobs: AtomicU64,
    inline_jobs: AtomicU64,
}

impl Stats {
    pub(crate) fn record_group(&self, jobs: usize) {
        self.group_commits.fetch_add(1, Ordering::Relaxed);
        self.grouped_jobs.fetch_add(jobs as u64, Ordering::Relaxed);
    }
}

/// The running worker threads; `None` once closed.
struct Workers {
    committer: Arc<Committer>,
    writer_tx: Sender<WriterMsg>,
    writer: JoinHandle<()>,
    reader_tx: Sender<ReadJob>,
    readers: Vec<JoinHandle<()>>,
}

/// A [`Store`] kept in one SQLite database file.
pub struct SqliteStore {
    path: PathBuf,
    workers: Mutex<Option<Workers>>,
    seq: Arc<watch::Sender<u64>>,
    stats: Arc<Stats>,
    /// Serialises [`Store::close`] calls.
    closing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("open", &self.workers.lock().is_some())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if missing, along with its parent directories) the
    /// database at `path` with the default [`SqliteConfig`].
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, SqliteConfig::default()).await
    }

    /// Opens the database at `path` with `config`.
    pub async fn open_with(
        path: impl AsRef<Path>,
        config: SqliteConfig,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let seq = Arc::new(watch::channel(0).0);
        let stats = Arc::new(Stats::default());
        let (writer_tx, writer_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let writer = {
            let (path, config, seq, stats) =
                (path.clone(), config.clone(), seq.clone(), stats.clone());
            std::thread::Builder::new()
                .name("ferry-sqlite-writer".into())
                .spawn(move || match Writer::open(&path, &config, seq, stats) {
                    Ok(writer) => {
                        let committer = Arc::new(Committer::new(
                            writer,
                            config.inline_commits,
                            config.max_batch,
                        ));
                        if ready_tx.send(Ok(committer.clone())).is_ok() {
                            committer.run(writer_rx);
                        }
                    }
                    Err(e) => drop(ready_tx.send(Err(e))),
                })
                .map_err(|e| StoreError::Backend(format!("spawn sqlite writer thread: {e}")))?
        };
        let committer = ready_rx.await.map_err(|_| {
            StoreError::Backend("sqlite writer thread exited while opening".into())
        })??;
        // Readers open after the writer has created the file and schema;
        // if they fail, dropping `writer_tx` stops the writer.
        let readers = reader::spawn(&path, &config, config.readers.max(1)).await?;
        tracing::debug!(path = %path.display(), last_seq = *seq.borrow(), "opened sqlite store");
        Ok(SqliteStore {
            path,
            workers: Mutex::new(Some(Workers {
                committer,
                writer_tx,
                writer,
                reader_tx: readers.tx,
                readers: readers.threads,
            })),
            seq,
            stats,
            closing: tokio::sync::Mutex::new(()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A snapshot of the writer's counters.
    pub fn stats(&self) -> SqliteStats {
        SqliteStats {
            group_commits: self.stats.group_commits.load(Ordering::Relaxed),
            grouped_jobs: self.stats.grouped_jobs.load(Ordering::Relaxed),
            inline_jobs: self.stats.inline_jobs.load(Ordering::Relaxed),
        }
    }

    /// Runs `job` on this thread if it is `small` and the writer is free,
    /// or hands it to the writer thread.
    fn submit(&self, job: Job, small: bool) -> Result<(), StoreError> {
        let committer = {
            let workers = self.workers.lock();
            let workers = workers.as_ref().ok_or(StoreError::Closed)?;
            workers.committer.clone()
        };
        let job = match small {
            false => job,
            true => match committer.try_inline(job) {
                Ok(()) => {
                    self.stats.inline_jobs.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(job) => job,
            },
        };
        let workers = self.workers.lock();
        let workers = workers.as_ref().ok_or(StoreError::Closed)?;
        let write = job.is_write();
        if write {
            committer.queue();
        }
        workers.writer_tx.send(WriterMsg::Job(job)).map_err(|_| {
            if write {
                committer.unqueue();
            }
            StoreError::Closed
        })
    }

    /// A write transaction through [`SqliteStore::submit`], and its answer.
    async fn write_job(&self, f: WriteFn, small: bool) -> Result<Option<u64>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Write { f, reply }, small)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn send_read(&self, job: ReadJob) -> Result<(), StoreError> {
        let workers = self.workers.lock();
        let workers = workers.as_ref().ok_or(StoreError::Closed)?;
        workers.reader_tx.send(job).map_err(|_| StoreError::Closed)
    }
}

/// Joins `threads` off the async threads.
async fn join(threads: Vec<JoinHandle<()>>) {
    let joined = tokio::task::spawn_blocking(move || {
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("a sqlite worker thread panicked");
            }
        }
    })
    .await;
    if let Err(e) = joined {
        tracing::error!(error = %e, "joining sqlite worker threads failed");
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    async fn read_boxed(&self, f: ReadFn) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send_read(reader::read_txn(f, reply))?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn write_boxed(&self, f: WriteFn) -> Result<Option<u64>, StoreError> {
        self.write_job(f, false).await
    }

    async fn write_small_boxed(&self, f: WriteFn) -> Result<Option<u64>, StoreError> {
        self.write_job(f, true).await
    }

    async fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send_read(reader::changes_since(after, limit, reply))?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn prune_changes(&self, before: u64) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        // Prunes can be long and nobody waits for them: the thread.
        self.submit(Job::Prune { before, reply }, false)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn watch(&self) -> watch::Receiver<u64> {
        self.seq.subscribe()
    }

    /// Stops accepting work, lets queued reads and writes finish,
    /// checkpoints the WAL and joins the threads. Closing a closed store
    /// succeeds and does nothing.
    async fn close(&self) -> Result<(), StoreError> {
        let _closing = self.closing.lock().await;
        let Some(workers) = self.workers.lock().take() else {
            return Ok(());
        };
        let Workers {
            committer: _,
            writer_tx,
            writer,
            reader_tx,
            readers,
        } = workers;
        // Readers first, so no snapshot holds the checkpoint back.
        drop(reader_tx);
        join(readers).await;
        let (reply, answer) = oneshot::channel();
        let sent = writer_tx.send(WriterMsg::Close { reply });
        drop(writer_tx);
        let result = match sent {
            Ok(()) => answer.await.unwrap_or_else(|_| {
                Err(StoreError::Backend(
                    "sqlite writer thread exited before closing".into(),
                ))
            }),
            Err(_) => Err(StoreError::Backend(
                "sqlite writer thread exited before closing".into(),
            )),
        };
        join(vec![writer]).await;
        tracing::debug!(path = %self.path.display(), "closed sqlite store");
        result
    }
}
