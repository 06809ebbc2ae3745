//! Read stamps and their lease: many sessions asking for a read stamp at
//! the same moment, when the lease must move ahead, persist it once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use ferry_core::{ManualTime, SeededRandom};
use ferry_store::{Change, MemoryStore, ReadFn, Store, StoreError, WriteFn};
use ferry_triplit::db::TriplitDb;
use tokio::sync::watch;

/// A [`MemoryStore`] that counts write transactions and yields before
/// each, as a store doing I/O would, so concurrent callers interleave.
#[derive(Default)]
struct CountingStore {
    inner: MemoryStore,
    writes: AtomicUsize,
}

#[async_trait]
impl Store for CountingStore {
    fn backend_name(&self) -> &'static str {
        "counting"
    }
    async fn read_boxed(&self, f: ReadFn) -> Result<(), StoreError> {
        self.inner.read_boxed(f).await
    }
    async fn write_boxed(&self, f: WriteFn) -> Result<Option<u64>, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.inner.write_boxed(f).await
    }
    async fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.inner.changes_since(after, limit).await
    }
    async fn prune_changes(&self, before: u64) -> Result<(), StoreError> {
        self.inner.prune_changes(before).await
    }
    fn watch(&self) -> watch::Receiver<u64> {
        self.inner.watch()
    }
    async fn close(&self) -> Result<(), StoreError> {
        self.inner.close().await
    }
}

#[tokio::test]
async fn a_burst_of_read_stamps_extends_the_lease_once() {
    let store = Arc::new(CountingStore::default());
    let time = Arc::new(ManualTime::new(1_700_000_000_000));
    let db = Arc::new(
        TriplitDb::open(store.clone(), time.clone(), Arc::new(SeededRandom::new(3)))
            .await
            .expect("open"),
    );
    let before = store.writes.load(Ordering::SeqCst);
    let burst = |n: usize| {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move { db.read_timestamp().await.expect("read stamp") })
            })
            .collect();
        async move {
            let mut stamps = Vec::new();
            for t in tasks {
                stamps.push(t.await.unwrap());
            }
            stamps
        }
    };
    // A fresh database has no lease: 50 sessions at once write it once.
    let first = burst(50).await;
    assert_eq!(store.writes.load(Ordering::SeqCst) - before, 1);
    // Within the lease, no writes at all.
    time.advance(10_000);
    let second = burst(50).await;
    assert_eq!(store.writes.load(Ordering::SeqCst) - before, 1);
    // Past the half-lease mark: once more, for the whole burst.
    time.advance(30_000);
    let third = burst(50).await;
    assert_eq!(store.writes.load(Ordering::SeqCst) - before, 2);
    // Every stamp handed out is distinct and each burst is above the last.
    let mut all: Vec<_> = first.iter().chain(&second).chain(&third).copied().collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n);
    assert!(first.iter().max() < second.iter().min());
    assert!(second.iter().max() < third.iter().min());
}

#[tokio::test]
async fn stamps_resume_above_the_persisted_lease_after_reopening() {
    let store = Arc::new(CountingStore::default());
    let time = Arc::new(ManualTime::new(1_700_000_000_000));
    let db = TriplitDb::open(store.clone(), time.clone(), Arc::new(SeededRandom::new(3)))
        .await
        .expect("open");
    let handed = db.read_timestamp().await.expect("read stamp");
    drop(db);
    // The wall clock goes back an hour; the reopened database's stamps
    // still start above every stamp handed out before.
    let earlier = Arc::new(ManualTime::new(1_700_000_000_000 - 3_600_000));
    let db = TriplitDb::open(store, earlier, Arc::new(SeededRandom::new(4)))
        .await
        .expect("reopen");
    let next = db.read_timestamp().await.expect("read stamp");
    assert!(next > handed, "{next:?} must be above {handed:?}");
}
