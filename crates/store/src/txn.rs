//! The [`Store`] trait and its transaction views.

use std::ops::ControlFlow;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::{Health, StoreError};

/// A half-open key range `[start, end)`; `end: None` means unbounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Inclusive lower bound.
    pub start: Vec<u8>,
    /// Exclusive upper bound, or unbounded.
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        Self {
            start: prefix.to_vec(),
            end: crate::key::prefix_end(prefix),
        }
    }

    /// `[start, end)`.
    pub fn between(start: Vec<u8>, end: Vec<u8>) -> Self {
        Self {
            start,
            end: Some(end),
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|end| key < end)
    }
}

/// What a scan calls for every pair; break to stop.
pub type ScanVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// A consistent view of the store.
pub trait ReadTxn {
    /// The value stored at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Visits the pairs in `range` in key order (descending when `reverse`)
    /// until `visit` breaks.
    fn scan(
        &self,
        range: &KeyRange,
        reverse: bool,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<(), StoreError>;
}

/// A write transaction; reads see its own writes.
pub trait WriteTxn: ReadTxn {
    /// Stores `value` at `key`.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key`.
    fn delete(&mut self, key: &[u8]) -> Result<(), StoreError>;
    /// Appends `payload` to the change feed as this transaction's record
    /// (a second call replaces the first). The record gets the next
    /// sequence number when the transaction commits.
    fn set_change(&mut self, payload: Vec<u8>);
    /// [`WriteTxn::set_change`], and `on_commit` is called with the
    /// record's sequence number once the transaction is durable and before
    /// [`Store::watch`] announces that number, so a follower of the feed
    /// finds what `on_commit` left when it sees the new position. Not
    /// called when the transaction does not commit. A backend that cannot
    /// promise that order drops `on_commit` (the default); followers then
    /// read the record from the feed.
    fn set_change_with(&mut self, payload: Vec<u8>, on_commit: OnCommit) {
        drop(on_commit);
        self.set_change(payload);
    }
}

/// Called with a committed change record's sequence number (see
/// [`WriteTxn::set_change_with`]).
pub type OnCommit = Box<dyn FnOnce(u64) + Send>;

/// What a write closure decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Make the writes durable.
    Commit,
    /// Discard every write of this transaction.
    Rollback,
}

/// One record of the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Position in the feed: consecutive integers in commit order (the
    /// next commit with a record gets the last number plus one, a rolled
    /// back transaction uses none), so a reader that finds a number
    /// missing knows records were pruned before it read them.
    pub seq: u64,
    /// What the writer put in it.
    pub payload: Vec<u8>,
}

/// A boxed read closure.
pub type ReadFn = Box<dyn FnOnce(&dyn ReadTxn) -> Result<(), StoreError> + Send>;
/// A boxed write closure. It may run more than once on backends that retry
/// conflicting transactions, so it must not have effects outside `txn`
/// other than recording its result.
pub type WriteFn = Box<dyn FnMut(&mut dyn WriteTxn) -> Result<WriteOutcome, StoreError> + Send>;

/// An ordered, transactional, durable key-value store with a change feed.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name for logs (`memory`, `sqlite`).
    fn backend_name(&self) -> &'static str;

    /// Runs `f` against a consistent snapshot, off the async threads.
    async fn read_boxed(&self, f: ReadFn) -> Result<(), StoreError>;

    /// Runs `f` in a serialisable transaction. Returns after the outcome is
    /// durable (commit) or discarded (rollback), with the change-feed
    /// sequence number assigned to it, if it committed a change record.
    async fn write_boxed(&self, f: WriteFn) -> Result<Option<u64>, StoreError>;

    /// [`Store::write_boxed`] for a transaction its caller knows to be
    /// short (a client's write of a few entities): a backend may run it on
    /// the calling thread when that is cheaper than handing it to another
    /// and back. Never for an import, a backfill or an index build.
    async fn write_small_boxed(&self, f: WriteFn) -> Result<Option<u64>, StoreError> {
        self.write_boxed(f).await
    }

    /// Up to `limit` change records with `seq > after`, in order. Numbers
    /// are contiguous (see [`Change::seq`]): a first record above
    /// `after + 1` means the ones between were pruned.
    async fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError>;

    /// Removes change records with `seq < before`. A backend shared by
    /// several nodes may keep more: records some live node has not read
    /// yet (see [`Store::report_position`]).
    async fn prune_changes(&self, before: u64) -> Result<(), StoreError>;

    /// Tells the store that this process has read the change feed up to
    /// `seq`, which doubles as a heartbeat. Shared backends keep the
    /// records live nodes still need; the default does nothing.
    async fn report_position(&self, seq: u64) -> Result<(), StoreError> {
        let _ = seq;
        Ok(())
    }

    /// Whether processes other than this one read the change feed (nodes
    /// sharing the store). The feed follower then keeps a window of
    /// records behind itself for nodes that fall behind; a feed only this
    /// process reads needs no such window. The default: not shared.
    fn shared_feed(&self) -> bool {
        false
    }

    /// Whether the backend can be reached; embedded backends are always
    /// available (the default).
    fn health(&self) -> watch::Receiver<Health> {
        crate::always_available()
    }

    /// The sequence number of the latest committed change record; changes
    /// whenever a new record commits.
    fn watch(&self) -> watch::Receiver<u64>;

    /// Finishes pending writes and closes; later calls fail with
    /// [`StoreError::Closed`].
    async fn close(&self) -> Result<(), StoreError>;
}

/// Typed helpers over the boxed closures of [`Store`].
#[async_trait]
pub trait StoreExt {
    /// Runs `f` against a consistent snapshot and returns its result.
    async fn read<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&dyn ReadTxn) -> Result<R, E> + Send + 'static;

    /// Runs `f` in a write transaction: commits when it returns `Ok`, rolls
    /// back when it returns `Err`. Returns `f`'s result and the change
    /// sequence number (if a change record committed).
    async fn write<R, E, F>(&self, f: F) -> Result<(R, Option<u64>), E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn WriteTxn) -> Result<R, E> + Send + 'static;

    /// [`StoreExt::write`] through [`Store::write_small_boxed`].
    async fn write_small<R, E, F>(&self, f: F) -> Result<(R, Option<u64>), E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn WriteTxn) -> Result<R, E> + Send + 'static;
}

#[async_trait]
impl<S: Store + ?Sized> StoreExt for S {
    async fn read<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&dyn ReadTxn) -> Result<R, E> + Send + 'static,
    {
        let slot: Arc<Mutex<Option<Result<R, E>>>> = Arc::new(Mutex::new(None));
        let out = slot.clone();
        self.read_boxed(Box::new(move |txn| {
            *out.lock() = Some(f(txn));
            Ok(())
        }))
        .await?;
        let result = slot.lock().take();
        result.unwrap_or(Err(StoreError::Closed.into()))
    }

    async fn write<R, E, F>(&self, f: F) -> Result<(R, Option<u64>), E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn WriteTxn) -> Result<R, E> + Send + 'static,
    {
        let (boxed, slot) = boxed_write(f);
        let seq = self.write_boxed(boxed).await?;
        write_result(&slot, seq)
    }

    async fn write_small<R, E, F>(&self, f: F) -> Result<(R, Option<u64>), E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn WriteTxn) -> Result<R, E> + Send + 'static,
    {
        let (boxed, slot) = boxed_write(f);
        let seq = self.write_small_boxed(boxed).await?;
        write_result(&slot, seq)
    }
}

/// Where a typed write closure leaves its last result.
type Slot<R, E> = Arc<Mutex<Option<Result<R, E>>>>;

/// `f` as a [`WriteFn`] that commits when `f` returns `Ok`, and the slot
/// its result lands in.
fn boxed_write<R, E, F>(mut f: F) -> (WriteFn, Slot<R, E>)
where
    R: Send + 'static,
    E: Send + 'static,
    F: FnMut(&mut dyn WriteTxn) -> Result<R, E> + Send + 'static,
{
    let slot: Slot<R, E> = Arc::new(Mutex::new(None));
    let out = slot.clone();
    let boxed: WriteFn = Box::new(move |txn| {
        let result = f(txn);
        let outcome = if result.is_ok() {
            WriteOutcome::Commit
        } else {
            WriteOutcome::Rollback
        };
        *out.lock() = Some(result);
        Ok(outcome)
    });
    (boxed, slot)
}

/// The typed result of a write whose closure filled `slot`.
fn write_result<R, E: From<StoreError>>(
    slot: &Slot<R, E>,
    seq: Option<u64>,
) -> Result<(R, Option<u64>), E> {
    let result = slot.lock().take();
    match result {
        Some(Ok(r)) => Ok((r, seq)),
        Some(Err(e)) => Err(e),
        None => Err(StoreError::Closed.into()),
    }
}
