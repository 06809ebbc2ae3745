//! The writer: the only read-write connection, and group commit.
//!
//! [`Writer::run_group`] runs a group of jobs (one, when a caller commits
//! on its own thread; whatever the writer thread drained, up to
//! [`SqliteConfig::max_batch`], otherwise: see `committer.rs`) in one
//! `BEGIN IMMEDIATE … COMMIT`, each job after the first
//! inside its own `SAVEPOINT` so that a job that rolls back, fails or panics
//! discards only its own writes (the first one rolls back the transaction,
//! which holds nothing else yet, and the next job begins a new one). Change records get their sequence numbers in job order.
//! Nobody hears back before the `COMMIT` (one fsync for the whole group)
//! has succeeded; if it fails, every job of the group gets the error. Jobs
//! that left a post-commit hook (`WriteTxn::set_change_with`) have it run
//! after the `COMMIT` and before `watch` announces the new position.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use ferry_store::{KeyRange, OnCommit, ReadTxn, StoreError, WriteFn, WriteOutcome, WriteTxn};
use rusqlite::Connection;
use tokio::sync::{oneshot, watch};

use crate::query::{self, backend, exec, panic_message, seq_to_sql};
use crate::schema::{self, LAST_SEQ};
use crate::{SqliteConfig, Stats};

/// A reply channel.
type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// Work that runs inside a group transaction.
pub(crate) enum Job {
    /// Run a write transaction.
    Write {
        f: WriteFn,
        reply: Reply<Option<u64>>,
    },
    /// Delete change records with `seq < before`.
    Prune { before: u64, reply: Reply<()> },
}

impl Job {
    /// Whether this is a write transaction (not a prune).
    pub(crate) fn is_write(&self) -> bool {
        matches!(self, Job::Write { .. })
    }
}

/// A job's answer, held back until its group has committed.
pub(crate) enum Answer {
    Write(Reply<Option<u64>>, Result<Option<u64>, StoreError>),
    Prune(Reply<()>, Result<(), StoreError>),
}

impl Answer {
    /// Replaces a success with `error` (the group's transaction was lost).
    fn fail(self, error: &StoreError) -> Self {
        match self {
            Answer::Write(reply, Ok(_)) => Answer::Write(reply, Err(copy_error(error))),
            Answer::Prune(reply, Ok(())) => Answer::Prune(reply, Err(copy_error(error))),
            other => other,
        }
    }

    pub(crate) fn send(self) {
        // A caller that stopped waiting no longer needs its answer.
        match self {
            Answer::Write(reply, result) => drop(reply.send(result)),
            Answer::Prune(reply, result) => drop(reply.send(result)),
        }
    }
}

fn copy_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Closed => StoreError::Closed,
        StoreError::Backend(msg) => StoreError::Backend(msg.clone()),
        StoreError::Unavailable(msg) => StoreError::Unavailable(msg.clone()),
        StoreError::Tls(msg) => StoreError::Tls(msg.clone()),
    }
}

/// The write transaction's view: the writer connection inside the job's
/// savepoint, so SQLite itself provides read-your-writes.
struct WriteView<'c> {
    conn: &'c Connection,
    change: Option<Vec<u8>>,
    on_commit: Option<OnCommit>,
}

impl ReadTxn for WriteView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        query::get(self.conn, key)
    }

    fn scan(
        &self,
        range: &KeyRange,
        reverse: bool,
        visit: &mut ferry_store::ScanVisitor<'_>,
    ) -> Result<(), StoreError> {
        query::scan(self.conn, range, reverse, visit)
    }
}

impl WriteTxn for WriteView<'_> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO kv (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut stmt| stmt.execute([key, value]))
            .map(drop)
            .map_err(backend)
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM kv WHERE key = ?1")
            .and_then(|mut stmt| stmt.execute([key]))
            .map(drop)
            .map_err(backend)
    }

    fn set_change(&mut self, payload: Vec<u8>) {
        self.change = Some(payload);
        self.on_commit = None;
    }

    fn set_change_with(&mut self, payload: Vec<u8>, on_commit: OnCommit) {
        self.change = Some(payload);
        self.on_commit = Some(on_commit);
    }
}

/// The writer thread's state.
pub(crate) struct Writer {
    conn: Connection,
    /// The last sequence number of a committed change record.
    last_seq: u64,
    seq: Arc<watch::Sender<u64>>,
    stats: Arc<Stats>,
    /// Set when a savepoint could not be resolved and the open transaction
    /// must not commit.
    abandoned: Cell<bool>,
    /// Set when the first job of a transaction, which runs without a
    /// savepoint, discarded its writes by rolling the transaction back.
    discarded_alone: Cell<bool>,
}

impl Writer {
    /// Opens the database (creating and migrating it if needed) and loads
    /// the change-feed position.
    pub(crate) fn open(
        path: &Path,
        config: &SqliteConfig,
        seq: Arc<watch::Sender<u64>>,
        stats: Arc<Stats>,
    ) -> Result<Self, StoreError> {
        let conn = schema::open_writer(path, config)?;
        let last_seq = schema::load_last_seq(&conn)?;
        seq.send_replace(last_seq);
        Ok(Self {
            conn,
            last_seq,
            seq,
            stats,
            abandoned: Cell::new(false),
            discarded_alone: Cell::new(false),
        })
    }

    pub(crate) fn shut_down(self) -> Result<(), StoreError> {
        let checkpointed = schema::checkpoint(&self.conn);
        let closed = self.conn.close().map_err(|(_, e)| backend(e));
        checkpointed.and(closed)
    }

    /// Runs one group of jobs in a single transaction; the answers are
    /// for the caller to send (after releasing the writer).
    pub(crate) fn run_group(&mut self, group: Vec<Job>) -> Vec<Answer> {
        let mut answers: Vec<Answer> = Vec::with_capacity(group.len());
        // Post-commit hooks of the jobs in the open transaction, run once
        // it is durable and before `watch` moves (see `set_change_with`).
        let mut hooks: Vec<(u64, OnCommit)> = Vec::new();
        let mut seq = self.last_seq;
        let mut in_txn = false;
        // Jobs answered inside the currently open transaction.
        let mut txn_jobs = 0;
        for job in group {
            if !in_txn {
                if let Err(e) = exec(&self.conn, "BEGIN IMMEDIATE") {
                    answers.push(Self::fail_job(job, &e));
                    continue;
                }
                in_txn = true;
            }
            // The first job of a transaction needs no savepoint: if it
            // discards its writes, rolling back the transaction discards
            // nothing else (and saves copying every page it touches into a
            // savepoint journal, the whole cost at one writer).
            let alone = txn_jobs == 0;
            let answer = match job {
                Job::Write { f, reply } => {
                    Answer::Write(reply, self.run_job(f, &mut seq, &mut hooks, alone))
                }
                Job::Prune { before, reply } => {
                    let result = self.in_savepoint(false, |conn| {
                        let deleted = conn
                            .prepare_cached("DELETE FROM changes WHERE seq < ?1")
                            .and_then(|mut stmt| stmt.execute([seq_to_sql(before)]))
                            .map(drop)
                            .map_err(backend);
                        (deleted.is_ok(), deleted)
                    });
                    Answer::Prune(reply, result.and_then(|r| r))
                }
            };
            answers.push(answer);
            txn_jobs += 1;
            if self.discarded_alone.take() {
                // Nothing else was in that transaction: the next job
                // begins a new one.
                in_txn = false;
                txn_jobs = 0;
                continue;
            }
            if self.abandoned.take() || self.conn.is_autocommit() {
                if !self.conn.is_autocommit() {
                    let _ = exec(&self.conn, "ROLLBACK");
                }
                // SQLite rolled the whole transaction back (I/O error, disk
                // full, …): everything answered so far in it is lost.
                let error = StoreError::Backend(
                    "sqlite: transaction rolled back by the database; retry".into(),
                );
                tracing::error!(%error, "sqlite group transaction lost");
                answers = answers.into_iter().map(|a| a.fail(&error)).collect();
                hooks.clear();
                seq = self.last_seq;
                in_txn = false;
                txn_jobs = 0;
            }
        }
        if in_txn {
            match self.commit(seq) {
                Ok(()) => self.stats.record_group(txn_jobs),
                Err(error) => {
                    tracing::error!(%error, "sqlite group commit failed");
                    if !self.conn.is_autocommit() {
                        let _ = exec(&self.conn, "ROLLBACK");
                    }
                    answers = answers.into_iter().map(|a| a.fail(&error)).collect();
                    hooks.clear();
                    seq = self.last_seq;
                }
            }
        }
        for (seq, hook) in hooks {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| hook(seq))) {
                let msg = panic_message(payload.as_ref());
                tracing::error!(panic = %msg, seq, "post-commit hook panicked");
            }
        }
        if seq != self.last_seq {
            self.last_seq = seq;
            // Before the replies, so a writer that got its sequence number
            // back sees `watch` at (or past) it.
            self.seq.send_replace(seq);
        }
        answers
    }

    fn fail_job(job: Job, error: &StoreError) -> Answer {
        match job {
            Job::Write { reply, .. } => Answer::Write(reply, Err(copy_error(error))),
            Job::Prune { reply, .. } => Answer::Prune(reply, Err(copy_error(error))),
        }
    }

    fn commit(&self, seq: u64) -> Result<(), StoreError> {
        if seq != self.last_seq {
            self.conn
                .prepare_cached(
                    "INSERT INTO meta (name, value) VALUES (?1, ?2) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .and_then(|mut stmt| stmt.execute(rusqlite::params![LAST_SEQ, seq_to_sql(seq)]))
                .map_err(backend)?;
        }
        exec(&self.conn, "COMMIT")
    }

    /// Runs `body` inside a savepoint; `body` says whether to keep its
    /// writes (release) or discard them (roll back to the savepoint). If the
    /// savepoint itself cannot be handled, the whole transaction is rolled
    /// back, which the caller notices through `is_autocommit`.
    /// With `alone` (the first job of its transaction) there is no
    /// savepoint: discarding rolls back the whole transaction and sets
    /// `discarded_alone`.
    fn in_savepoint<T>(
        &self,
        alone: bool,
        body: impl FnOnce(&Connection) -> (bool, T),
    ) -> Result<T, StoreError> {
        if !alone {
            exec(&self.conn, "SAVEPOINT job")?;
        }
        let (keep, result) = body(&self.conn);
        if self.conn.is_autocommit() {
            // SQLite already rolled back the transaction, savepoint included.
            return Ok(result);
        }
        if alone {
            if !keep {
                if let Err(e) = exec(&self.conn, "ROLLBACK") {
                    self.abandoned.set(true);
                    return Err(e);
                }
                self.discarded_alone.set(true);
            }
            return Ok(result);
        }
        let control = if keep {
            exec(&self.conn, "RELEASE job")
        } else {
            exec(&self.conn, "ROLLBACK TO job").and_then(|()| exec(&self.conn, "RELEASE job"))
        };
        if let Err(e) = control {
            self.abandoned.set(true);
            // The job's writes can no longer be separated from the group's:
            // give up on the whole transaction rather than commit them.
            let _ = exec(&self.conn, "ROLLBACK");
            return Err(e);
        }
        Ok(result)
    }

    /// Runs one write closure in its savepoint and, if it commits a change
    /// record, appends it with the next sequence number.
    fn run_job(
        &self,
        mut f: WriteFn,
        seq: &mut u64,
        hooks: &mut Vec<(u64, OnCommit)>,
        alone: bool,
    ) -> Result<Option<u64>, StoreError> {
        let mut on_commit = None;
        let result = self.in_savepoint(alone, |conn| {
            let mut view = WriteView {
                conn,
                change: None,
                on_commit: None,
            };
            let outcome = match catch_unwind(AssertUnwindSafe(|| f(&mut view))) {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(e)) => return (false, Err(e)),
                Err(payload) => {
                    let msg = panic_message(payload.as_ref());
                    tracing::error!(panic = %msg, "write transaction panicked");
                    let e = StoreError::Backend(format!("write transaction panicked: {msg}"));
                    return (false, Err(e));
                }
            };
            let change = view.change.take();
            on_commit = view.on_commit.take();
            match (outcome, change) {
                (WriteOutcome::Rollback, _) => (false, Ok(None)),
                (WriteOutcome::Commit, None) => (true, Ok(None)),
                (WriteOutcome::Commit, Some(payload)) => {
                    let next = *seq + 1;
                    let inserted = conn
                        .prepare_cached("INSERT INTO changes (seq, payload) VALUES (?1, ?2)")
                        .and_then(|mut stmt| {
                            stmt.execute(rusqlite::params![seq_to_sql(next), payload])
                        })
                        .map_err(backend);
                    match inserted {
                        Ok(_) => (true, Ok(Some(next))),
                        Err(e) => (false, Err(e)),
                    }
                }
            }
        });
        let result = result.and_then(|r| r);
        if let Ok(Some(next)) = result {
            *seq = next;
            if let Some(hook) = on_commit {
                hooks.push((next, hook));
            }
        }
        result
    }
}
