//! Running one read or write transaction on a blocking thread.
//!
//! Both runners own their pooled connection for the whole transaction and
//! always end it (`COMMIT` or `ROLLBACK`) before the connection goes back
//! to the pool. A connection whose state is unknown (its `ROLLBACK` failed)
//! is detached from the pool and dropped, which closes it: the server then
//! aborts whatever was open and releases the transaction's advisory lock.
//! Panics in closures are caught and answered as backend errors.
//!
//! Write transactions take the cluster-wide write lock first, in `READ
//! COMMITTED`: each statement after the lock sees every write committed
//! before it (a `REPEATABLE READ` snapshot would have been taken by the
//! locking statement itself, before it waited, and miss the previous
//! holder's commit). Under the lock no other Ferry write runs anywhere, so
//! the closure's view cannot change underneath it: the schedule is serial.

use std::panic::{AssertUnwindSafe, catch_unwind};

use deadpool_postgres::{ClientWrapper, Object};
use ferry_store::{ReadFn, StoreError, WriteFn, WriteOutcome};
use tokio::runtime::Handle;

use crate::error::{PgError, panic_message, seq_from_sql};
use crate::view::PgTxn;

const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// Assigns the next sequence number, appends the change record and queues
/// the wake-up notification, all in the caller's write transaction. The
/// counter row (not `max(seq)`) keeps numbering upward after pruning.
const APPEND_CHANGE: &str = "WITH next AS (
         UPDATE ferry_meta SET value = value + 1 WHERE name = 'last_seq' RETURNING value
     ), appended AS (
         INSERT INTO ferry_changes (seq, payload) SELECT value, $1 FROM next RETURNING seq
     )
     SELECT seq, pg_notify('ferry_changes', seq::text)::text FROM appended";

/// What the write runner needs besides the connection.
pub(crate) struct WriteSettings {
    /// `BEGIN …; SET LOCAL …; SELECT pg_advisory_xact_lock(…)`.
    pub(crate) begin: String,
    /// [`crate::PostgresConfig::scan_batch`].
    pub(crate) scan_batch: usize,
    /// [`crate::PostgresConfig::max_write_attempts`].
    pub(crate) max_attempts: u32,
}

impl WriteSettings {
    /// The settings for the lock key, idle timeout and limits.
    pub(crate) fn new(
        write_lock: i64,
        idle_timeout_ms: u128,
        scan_batch: usize,
        max_attempts: u32,
    ) -> Self {
        let begin = format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED;
             SET LOCAL idle_in_transaction_session_timeout = {};
             SELECT pg_advisory_xact_lock({write_lock})",
            idle_timeout_ms.min(i32::MAX as u128)
        );
        Self {
            begin,
            scan_batch,
            max_attempts,
        }
    }
}

/// Runs a read closure in a `REPEATABLE READ READ ONLY` transaction: one
/// snapshot for all its reads, taken at its first statement.
pub(crate) fn read(
    handle: &Handle,
    conn: Object,
    scan_batch: usize,
    f: ReadFn,
) -> Result<(), StoreError> {
    if let Err(e) = handle.block_on(conn.batch_execute(BEGIN_READ)) {
        discard(conn);
        return Err(PgError::query("begin read transaction", &e).into());
    }
    let mut txn = PgTxn::new(&conn, handle, scan_batch);
    let outcome = catch_unwind(AssertUnwindSafe(|| f(&txn)));
    let failure = txn.take_failure();
    drop(txn);
    if !rollback(handle, &conn) {
        discard(conn);
    }
    match outcome {
        Err(panic) => Err(PgError::Panicked("read", panic_message(&*panic)).into()),
        Ok(result) => {
            result?;
            failure.map_or(Ok(()), |e| Err(e.into()))
        }
    }
}

/// What one attempt of a write transaction came to.
enum Step {
    /// The final answer.
    Done(Result<Option<u64>, StoreError>),
    /// The server aborted the transaction over a conflict; run it again.
    Retry(PgError),
}

/// Runs a write closure under the write lock, retrying it after
/// serialization failures or deadlocks up to `settings.max_attempts` times.
pub(crate) fn write(
    handle: &Handle,
    conn: Object,
    settings: &WriteSettings,
    mut f: WriteFn,
) -> Result<Option<u64>, StoreError> {
    let mut healthy = true;
    for attempt in 1..=settings.max_attempts {
        let step = write_once(handle, &conn, settings, &mut f, &mut healthy);
        if !healthy {
            discard(conn);
            return match step {
                Step::Done(result) => result,
                Step::Retry(e) => Err(e.into()),
            };
        }
        match step {
            Step::Done(result) => return result,
            Step::Retry(e) => {
                tracing::debug!(attempt, error = %e, "retrying postgres write transaction");
            }
        }
    }
    Err(PgError::Contention(settings.max_attempts).into())
}

/// One attempt: begin and lock, run the closure, append the change record
/// and commit, or roll back. Clears `healthy` when the connection's state
/// is no longer known.
fn write_once(
    handle: &Handle,
    conn: &ClientWrapper,
    settings: &WriteSettings,
    f: &mut WriteFn,
    healthy: &mut bool,
) -> Step {
    if let Err(e) = handle.block_on(conn.batch_execute(&settings.begin)) {
        let e = PgError::query("begin write transaction", &e);
        *healthy = rollback(handle, conn);
        return retry_or_fail(e, None);
    }
    let mut txn = PgTxn::new(conn, handle, settings.scan_batch);
    let outcome = catch_unwind(AssertUnwindSafe(|| f(&mut txn)));
    let failure = txn.take_failure();
    let change = txn.take_change();
    drop(txn);
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(panic) => {
            *healthy = rollback(handle, conn);
            let e = PgError::Panicked("write", panic_message(&*panic));
            return Step::Done(Err(e.into()));
        }
    };
    // After any failed statement the server has aborted the transaction,
    // whatever the closure decided.
    if let Some(failure) = failure {
        *healthy = rollback(handle, conn);
        return retry_or_fail(failure, outcome.err());
    }
    match outcome {
        Err(e) => {
            *healthy = rollback(handle, conn);
            Step::Done(Err(e))
        }
        Ok(WriteOutcome::Rollback) => {
            *healthy = rollback(handle, conn);
            Step::Done(Ok(None))
        }
        Ok(WriteOutcome::Commit) => {
            let seq = match change {
                None => None,
                Some(payload) => match append_change(handle, conn, &payload) {
                    Ok(seq) => Some(seq),
                    Err(e) => {
                        *healthy = rollback(handle, conn);
                        return retry_or_fail(e, None);
                    }
                },
            };
            match handle.block_on(conn.batch_execute("COMMIT")) {
                Ok(()) => Step::Done(Ok(seq)),
                Err(e) => {
                    // A failed COMMIT ends the transaction; if the
                    // connection broke instead, the outcome is unknown.
                    *healthy = !conn.is_closed() && rollback(handle, conn);
                    retry_or_fail(PgError::query("commit (outcome unknown)", &e), None)
                }
            }
        }
    }
}

/// Retries conflicts; otherwise fails with `reported` (the closure's own
/// error) or, without one, with `e`.
fn retry_or_fail(e: PgError, reported: Option<StoreError>) -> Step {
    if e.is_retryable() {
        Step::Retry(e)
    } else {
        Step::Done(Err(reported.unwrap_or_else(|| e.into())))
    }
}

/// Appends the change record; returns its sequence number.
fn append_change(handle: &Handle, conn: &ClientWrapper, payload: &[u8]) -> Result<u64, PgError> {
    let what = "append change record";
    let rows = handle
        .block_on(async {
            let statement = conn.prepare_cached(APPEND_CHANGE).await?;
            conn.query(&statement, &[&payload]).await
        })
        .map_err(|e| PgError::query(what, &e))?;
    let row = rows
        .first()
        .ok_or_else(|| PgError::Corrupt("the ferry_meta row 'last_seq' is missing".into()))?;
    seq_from_sql(row.try_get(0).map_err(|e| PgError::query(what, &e))?)
}

/// Ends whatever transaction is open; `false` when that failed and the
/// connection must not be reused.
fn rollback(handle: &Handle, conn: &ClientWrapper) -> bool {
    match handle.block_on(conn.batch_execute("ROLLBACK")) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %crate::error::describe(&e), "postgres rollback failed; dropping the connection");
            false
        }
    }
}

/// Takes `conn` out of the pool and closes it.
fn discard(conn: Object) {
    drop(Object::take(conn));
}
