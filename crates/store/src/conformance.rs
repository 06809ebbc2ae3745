//! The conformance suite every [`Store`] backend must pass.
//!
//! A backend crate runs it with [`store_conformance_tests!`]:
//!
//! ```ignore
//! ferry_store::store_conformance_tests!(durable, |dir: &std::path::Path| async move {
//!     std::sync::Arc::new(MyStore::open(dir).await.unwrap()) as std::sync::Arc<dyn Store>
//! });
//! ```
//!
//! Each case gets a fresh directory; `durable` backends additionally run
//! the cases that close and reopen the store in the same directory.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use ferry_core::{Hlc, HybridClock, ManualTime};

use crate::key::KeyBuf;
use crate::{
    KeyRange, Store, StoreError, StoreExt, WriteTxn, load_clock_floor, persist_clock, take_stamp,
};

/// A boxed future returning a store; what the suite's factory produces.
pub type OpenFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn Store>> + Send>>;

/// Creates a fresh temporary directory for one case.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create temporary directory")
}

fn k(parts: &[&str]) -> Vec<u8> {
    parts.iter().fold(KeyBuf::new(), |b, p| b.str(p)).finish()
}

async fn put(store: &dyn Store, key: Vec<u8>, value: &[u8]) {
    let value = value.to_vec();
    store
        .write(move |txn| txn.put(&key, &value))
        .await
        .map(|_| ())
        .unwrap_or_else(|e: StoreError| panic!("put failed: {e}"));
}

async fn get(store: &dyn Store, key: Vec<u8>) -> Option<Vec<u8>> {
    store
        .read(move |txn| txn.get(&key))
        .await
        .unwrap_or_else(|e: StoreError| panic!("get failed: {e}"))
}

async fn scan(store: &dyn Store, range: KeyRange, reverse: bool, limit: usize) -> Vec<Vec<u8>> {
    store
        .read(move |txn| {
            let mut out = Vec::new();
            txn.scan(&range, reverse, &mut |key, _| {
                out.push(key.to_vec());
                if out.len() >= limit {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })?;
            Ok::<_, StoreError>(out)
        })
        .await
        .unwrap()
}

/// Point reads, overwrites and deletes.
pub async fn put_get_delete(store: Arc<dyn Store>) {
    let s = store.as_ref();
    assert_eq!(get(s, k(&["a"])).await, None);
    put(s, k(&["a"]), b"1").await;
    assert_eq!(get(s, k(&["a"])).await.as_deref(), Some(&b"1"[..]));
    put(s, k(&["a"]), b"2").await;
    assert_eq!(get(s, k(&["a"])).await.as_deref(), Some(&b"2"[..]));
    let key = k(&["a"]);
    s.write(move |txn| txn.delete(&key))
        .await
        .map_err(|e: StoreError| e)
        .unwrap();
    assert_eq!(get(s, k(&["a"])).await, None);
    // Empty values and keys with every byte value are stored exactly.
    let odd = vec![0u8, 0xFF, 0x00, 0x7F];
    put(s, odd.clone(), b"").await;
    assert_eq!(get(s, odd).await.as_deref(), Some(&b""[..]));
}

/// Range scans in both directions, with prefixes, bounds and early stops.
pub async fn ordered_scans(store: Arc<dyn Store>) {
    let s = store.as_ref();
    for (c, id) in [
        ("t", "b"),
        ("t", "a"),
        ("t", "c"),
        ("u", "a"),
        ("s", "z"),
        ("t", "a\0x"),
    ] {
        put(s, k(&[c, id]), id.as_bytes()).await;
    }
    let t = KeyBuf::new().str("t").finish();
    assert_eq!(
        scan(s, KeyRange::prefix(&t), false, 100).await,
        vec![
            k(&["t", "a"]),
            k(&["t", "a\0x"]),
            k(&["t", "b"]),
            k(&["t", "c"])
        ]
    );
    assert_eq!(
        scan(s, KeyRange::prefix(&t), true, 2).await,
        vec![k(&["t", "c"]), k(&["t", "b"])]
    );
    assert_eq!(
        scan(
            s,
            KeyRange::between(k(&["t", "a\0x"]), k(&["t", "c"])),
            false,
            100
        )
        .await,
        vec![k(&["t", "a\0x"]), k(&["t", "b"])]
    );
    let all = KeyRange {
        start: vec![],
        end: None,
    };
    assert_eq!(scan(s, all, false, 100).await.len(), 6);
    // An empty or inverted range yields nothing.
    assert!(
        scan(s, KeyRange::between(k(&["u"]), k(&["t"])), false, 100)
            .await
            .is_empty()
    );
}

/// A write transaction reads its own writes, in point reads and scans.
pub async fn reads_own_writes(store: Arc<dyn Store>) {
    let s = store.as_ref();
    put(s, k(&["p", "1"]), b"old").await;
    put(s, k(&["p", "2"]), b"gone").await;
    let (seen, _) = s
        .write(|txn| {
            txn.put(&k(&["p", "1"]), b"new")?;
            txn.put(&k(&["p", "3"]), b"added")?;
            txn.delete(&k(&["p", "2"]))?;
            let mut seen = Vec::new();
            txn.scan(
                &KeyRange::prefix(&KeyBuf::new().str("p").finish()),
                false,
                &mut |key, v| {
                    seen.push((key.to_vec(), v.to_vec()));
                    ControlFlow::Continue(())
                },
            )?;
            assert_eq!(txn.get(&k(&["p", "2"]))?, None);
            Ok::<_, StoreError>(seen)
        })
        .await
        .unwrap();
    assert_eq!(
        seen,
        vec![
            (k(&["p", "1"]), b"new".to_vec()),
            (k(&["p", "3"]), b"added".to_vec())
        ]
    );
    assert_eq!(get(s, k(&["p", "1"])).await.as_deref(), Some(&b"new"[..]));
    assert_eq!(get(s, k(&["p", "2"])).await, None);
}

/// A failed transaction leaves nothing behind, not even its change record.
pub async fn rollback_discards_everything(store: Arc<dyn Store>) {
    let s = store.as_ref();
    put(s, k(&["r", "keep"]), b"1").await;
    let before = s.watch().borrow().to_owned();
    let result = s
        .write(|txn| {
            txn.put(&k(&["r", "new"]), b"x")?;
            txn.delete(&k(&["r", "keep"]))?;
            txn.set_change(b"never".to_vec());
            Err::<(), StoreError>(StoreError::Backend("refused by the caller".into()))
        })
        .await;
    assert!(result.is_err());
    assert_eq!(get(s, k(&["r", "new"])).await, None);
    assert_eq!(get(s, k(&["r", "keep"])).await.as_deref(), Some(&b"1"[..]));
    assert_eq!(*s.watch().borrow(), before);
    assert!(s.changes_since(0, 100).await.unwrap().is_empty());
}

/// Change records are numbered contiguously in commit order, readable,
/// prunable and announced through `watch`.
pub async fn change_feed(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let mut watch = s.watch();
    let (_, none) = s
        .write(|txn| txn.put(&k(&["c", "x"]), b"1"))
        .await
        .map_err(|e: StoreError| e)
        .unwrap();
    assert_eq!(
        none, None,
        "a transaction without a change record gets no sequence"
    );
    let mut seqs = Vec::new();
    for i in 0..5u8 {
        let (_, seq) = s
            .write(move |txn| {
                txn.put(&k(&["c", &i.to_string()]), &[i])?;
                txn.set_change(vec![b'p', i]);
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        seqs.push(seq.expect("sequence assigned"));
    }
    // A rolled back transaction with a record uses no number.
    let _ = s
        .write(|txn| {
            txn.set_change(b"never".to_vec());
            Err::<(), _>(StoreError::Backend("roll back".into()))
        })
        .await;
    let (_, seq) = s
        .write(|txn| {
            txn.put(&k(&["c", "5"]), &[5])?;
            txn.set_change(vec![b'p', 5]);
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    seqs.push(seq.expect("sequence assigned"));
    // Numbers are contiguous: readers detect pruned records by a gap.
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!(watch.has_changed().unwrap());
    assert_eq!(*watch.borrow_and_update(), seqs[5]);
    let all = s.changes_since(0, 100).await.unwrap();
    assert_eq!(all.iter().map(|c| c.seq).collect::<Vec<_>>(), seqs);
    assert_eq!(all[2].payload, vec![b'p', 2]);
    let tail = s.changes_since(seqs[1], 2).await.unwrap();
    assert_eq!(
        tail.iter().map(|c| c.seq).collect::<Vec<_>>(),
        seqs[2..4].to_vec()
    );
    s.prune_changes(seqs[3]).await.unwrap();
    let left = s.changes_since(0, 100).await.unwrap();
    assert_eq!(
        left.iter().map(|c| c.seq).collect::<Vec<_>>(),
        seqs[3..].to_vec()
    );
}

/// A post-commit hook ([`crate::WriteTxn::set_change_with`]) is called at
/// most once, with the committed record's sequence number, before `watch`
/// shows that number; never for a transaction that rolls back or fails.
/// A backend may drop hooks altogether (then it must drop all of them).
pub async fn post_commit_hooks(store: Arc<dyn Store>) {
    check_post_commit_hooks(store).await;
}

/// [`post_commit_hooks`] for a backend that promises to call them.
pub async fn post_commit_hooks_called(store: Arc<dyn Store>) {
    assert_eq!(
        check_post_commit_hooks(store).await,
        3,
        "every committed hook was called"
    );
}

/// Returns how many hooks were called.
async fn check_post_commit_hooks(store: Arc<dyn Store>) -> usize {
    let s = store.as_ref();
    let watch = s.watch();
    let calls: Arc<parking_lot::Mutex<Vec<(u64, u64)>>> = Default::default();
    let hook = |calls: &Arc<parking_lot::Mutex<Vec<(u64, u64)>>>| -> crate::OnCommit {
        let calls = calls.clone();
        let watch = watch.clone();
        Box::new(move |seq| calls.lock().push((seq, *watch.borrow())))
    };
    let mut seqs = Vec::new();
    for i in 0..3u8 {
        let h = hook(&calls);
        let mut h = Some(h);
        let (_, seq) = s
            .write(move |txn| {
                txn.put(&k(&["h", &i.to_string()]), &[i])?;
                txn.set_change_with(vec![b'h', i], h.take().expect("runs once here"));
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        seqs.push(seq.expect("sequence assigned"));
    }
    let h = hook(&calls);
    let mut h = Some(h);
    let failed = s
        .write(move |txn| {
            txn.put(&k(&["h", "x"]), b"x")?;
            if let Some(h) = h.take() {
                txn.set_change_with(b"lost".to_vec(), h);
            }
            Err::<(), _>(StoreError::Backend("rolled back on purpose".into()))
        })
        .await;
    assert!(failed.is_err());
    let calls = calls.lock().clone();
    if calls.is_empty() {
        return 0; // This backend drops hooks.
    }
    assert_eq!(
        calls.iter().map(|c| c.0).collect::<Vec<_>>(),
        seqs,
        "one call per committed record, with its sequence number"
    );
    for &(seq, seen) in &calls {
        assert!(seen < seq, "hook for {seq} ran after watch showed {seen}");
    }
    calls.len()
}

/// Concurrent read-modify-write transactions never lose an update.
pub async fn writes_are_serialisable(store: Arc<dyn Store>) {
    let key = k(&["counter"]);
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let store = store.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(move |txn| {
                    let n = txn
                        .get(&key)?
                        .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
                        .unwrap_or(0);
                    txn.put(&key, &(n + 1).to_be_bytes())
                })
                .await
                .map_err(|e: StoreError| e)
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = get(store.as_ref(), key).await.unwrap();
    assert_eq!(u64::from_be_bytes(n.try_into().unwrap()), 40);
}

/// Short writes ([`StoreExt::write_small`], which a backend may run on the
/// calling thread) keep every guarantee of `write`, mixed with them: a
/// transaction reads its own writes, a failure discards everything, and
/// concurrent read-modify-writes lose nothing and number their change
/// records contiguously.
pub async fn small_writes(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (seen, seq) = s
        .write_small(|txn| {
            txn.put(&k(&["w", "1"]), b"a")?;
            txn.set_change(b"first".to_vec());
            txn.get(&k(&["w", "1"]))
        })
        .await
        .unwrap();
    assert_eq!(seen.as_deref(), Some(&b"a"[..]));
    let first = seq.expect("a change record");
    let failed = s
        .write_small(|txn| {
            txn.put(&k(&["w", "2"]), b"x")?;
            txn.set_change(b"never".to_vec());
            Err::<(), StoreError>(StoreError::Backend("refused by the caller".into()))
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(get(s, k(&["w", "2"])).await, None);

    let key = k(&["w", "counter"]);
    let mut tasks = Vec::new();
    for i in 0..40u8 {
        let store = store.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let f = move |txn: &mut dyn WriteTxn| {
                let n = txn
                    .get(&key)?
                    .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
                    .unwrap_or(0);
                txn.put(&key, &(n + 1).to_be_bytes())?;
                txn.set_change(vec![i]);
                Ok::<_, StoreError>(())
            };
            let written = if i % 2 == 0 {
                store.write_small(f).await
            } else {
                store.write(f).await
            };
            written.unwrap().1.expect("a change record")
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (first + 1..=first + 40).collect::<Vec<_>>());
    let n = get(s, key).await.unwrap();
    assert_eq!(u64::from_be_bytes(n.try_into().unwrap()), 40);
    let records = s.changes_since(first - 1, 100).await.unwrap();
    assert_eq!(records.len(), 41);
    assert!(records.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    let mut payloads: Vec<u8> = records[1..].iter().map(|r| r.payload[0]).collect();
    payloads.sort_unstable();
    assert_eq!(payloads, (0..40).collect::<Vec<_>>());
}

/// A reader never sees half of a committed transaction.
pub async fn reads_are_snapshots(store: Arc<dyn Store>) {
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..50u64 {
                store
                    .write(move |txn| {
                        txn.put(&k(&["pair", "a"]), &i.to_be_bytes())?;
                        txn.put(&k(&["pair", "b"]), &i.to_be_bytes())
                    })
                    .await
                    .map_err(|e: StoreError| e)
                    .unwrap();
            }
        })
    };
    for _ in 0..50 {
        let (a, b) = store
            .read(|txn| {
                Ok::<_, StoreError>((txn.get(&k(&["pair", "a"]))?, txn.get(&k(&["pair", "b"]))?))
            })
            .await
            .unwrap();
        assert_eq!(a, b);
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
}

/// The persisted clock floor round-trips.
pub async fn clock_floor(store: Arc<dyn Store>) {
    let s = store.as_ref();
    assert_eq!(
        s.read(|txn| load_clock_floor(txn)).await.unwrap(),
        Hlc::ZERO
    );
    let stamp = Hlc::new(1_800_000_000_000, 3);
    s.write(move |txn| persist_clock(txn, stamp))
        .await
        .map_err(|e: StoreError| e)
        .unwrap();
    assert_eq!(s.read(|txn| load_clock_floor(txn)).await.unwrap(), stamp);
    // A lower stamp (another node's) never moves the floor down.
    s.write(|txn| persist_clock(txn, Hlc::new(1_700_000_000_000, 9)))
        .await
        .map_err(|e: StoreError| e)
        .unwrap();
    assert_eq!(s.read(|txn| load_clock_floor(txn)).await.unwrap(), stamp);
    // Two clocks sharing the store (two nodes), one far behind the other:
    // stamps taken in the transaction rise in commit order all the same,
    // and each becomes the floor.
    let ahead = Arc::new(HybridClock::new(
        Arc::new(ManualTime::new(1_900_000_000_000)),
        Hlc::ZERO,
    ));
    let behind = Arc::new(HybridClock::new(
        Arc::new(ManualTime::new(1_000)),
        Hlc::ZERO,
    ));
    let mut previous = stamp;
    for clock in [ahead.clone(), behind.clone(), behind, ahead] {
        let (taken, _) = s
            .write(move |txn| take_stamp(txn, &clock))
            .await
            .map_err(|e: StoreError| e)
            .unwrap();
        assert!(taken > previous, "{taken} after {previous}");
        assert_eq!(s.read(|txn| load_clock_floor(txn)).await.unwrap(), taken);
        previous = taken;
    }
}

/// Stamps taken by concurrent writes (which a backend may commit in one
/// group), some rolled back after taking theirs and some scanning the
/// whole keyspace: committed stamps rise in commit order, and the floor
/// ends at or above the last of them (a write reads its own raised floor).
pub async fn clock_floor_under_concurrent_writes(store: Arc<dyn Store>) {
    let clock = Arc::new(HybridClock::new(
        Arc::new(ManualTime::new(1_800_000_000_000)),
        Hlc::ZERO,
    ));
    let mut tasks = Vec::new();
    for i in 0..60u32 {
        let store = store.clone();
        let clock = clock.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(move |txn| {
                    let scan_all = |txn: &dyn crate::ReadTxn| {
                        let mut seen = 0;
                        txn.scan(&KeyRange::prefix(b""), false, &mut |_, _| {
                            seen += 1;
                            ControlFlow::Continue(())
                        })?;
                        Ok::<_, StoreError>(seen)
                    };
                    if i % 7 == 3 {
                        // Refused without stamping, after a scan that sees
                        // the floor the group's earlier writes raised.
                        scan_all(&*txn)?;
                        return Err(StoreError::Backend("refused".into()));
                    }
                    let stamp = take_stamp(txn, &clock)?;
                    assert_eq!(load_clock_floor(txn)?, stamp, "reads its own floor");
                    if i % 5 == 1 {
                        assert!(scan_all(&*txn)? >= 1, "the scan sees the clock key");
                    }
                    if i % 11 == 4 {
                        return Err(StoreError::Backend("refused after stamping".into()));
                    }
                    txn.put(&k(&["stamped", &format!("{i:02}")]), &stamp.to_bytes())?;
                    txn.set_change(stamp.to_bytes().to_vec());
                    Ok(stamp)
                })
                .await
        }));
    }
    let mut committed = Vec::new();
    for t in tasks {
        if let Ok((stamp, seq)) = t.await.unwrap() {
            committed.push((seq.unwrap(), stamp));
        }
    }
    let refused = (0..60).filter(|i| i % 7 == 3 || i % 11 == 4).count();
    assert_eq!(committed.len(), 60 - refused);
    committed.sort();
    for pair in committed.windows(2) {
        assert!(
            pair[0].1 < pair[1].1,
            "stamps follow commit order: {pair:?}"
        );
    }
    let last = committed.last().unwrap().1;
    let floor = store.read(|txn| load_clock_floor(txn)).await.unwrap();
    assert!(
        floor >= last,
        "floor {floor} below the last committed stamp {last}"
    );
    // Nothing of a refused write stayed.
    let kept = scan(
        store.as_ref(),
        KeyRange::prefix(&k(&["stamped"])),
        false,
        100,
    )
    .await;
    assert_eq!(kept.len(), committed.len());
}

/// A closed store refuses work with `StoreError::Closed`.
pub async fn closed_store_refuses(store: Arc<dyn Store>) {
    store.close().await.unwrap();
    let err = store.read(|txn| txn.get(b"x")).await.unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err}");
    let err = store.write(|txn| txn.put(b"x", b"y")).await.unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err}");
}

/// Durable backends: data, change records and the clock survive a reopen,
/// and sequence numbers continue upward.
pub async fn survives_reopen(dir: &Path, open: impl Fn(&Path) -> OpenFuture) {
    let store = open(dir).await;
    let mut last = 0;
    for i in 0..3u8 {
        let (_, seq) = store
            .write(move |txn| {
                txn.put(&k(&["d", &i.to_string()]), &[i])?;
                persist_clock(txn, Hlc::new(1000 + i as u64, 0))?;
                txn.set_change(vec![i]);
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        last = seq.unwrap();
    }
    store.close().await.unwrap();
    drop(store);
    let store = open(dir).await;
    assert_eq!(get(store.as_ref(), k(&["d", "2"])).await, Some(vec![2]));
    assert_eq!(
        store.read(|txn| load_clock_floor(txn)).await.unwrap(),
        Hlc::new(1002, 0)
    );
    assert_eq!(*store.watch().borrow(), last);
    assert_eq!(store.changes_since(0, 10).await.unwrap().len(), 3);
    let (_, seq) = store
        .write(|txn| {
            txn.set_change(b"after".to_vec());
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    assert!(seq.unwrap() > last);
    store.close().await.unwrap();
}

/// Generates one `#[tokio::test]` per conformance case for a backend.
///
/// `$open` is an expression of type `Fn(&Path) -> OpenFuture`.
#[macro_export]
macro_rules! store_conformance_tests {
    (@case $name:ident, $open:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let dir = $crate::conformance::temp_dir();
            let open = $open;
            let store = open(dir.path()).await;
            $crate::conformance::$name(store).await;
        }
    };
    ($kind:ident, $open:expr) => {
        $crate::store_conformance_tests!(@case put_get_delete, $open);
        $crate::store_conformance_tests!(@case ordered_scans, $open);
        $crate::store_conformance_tests!(@case reads_own_writes, $open);
        $crate::store_conformance_tests!(@case rollback_discards_everything, $open);
        $crate::store_conformance_tests!(@case change_feed, $open);
        $crate::store_conformance_tests!(@case post_commit_hooks, $open);
        $crate::store_conformance_tests!(@case writes_are_serialisable, $open);
        $crate::store_conformance_tests!(@case small_writes, $open);
        $crate::store_conformance_tests!(@case reads_are_snapshots, $open);
        $crate::store_conformance_tests!(@case clock_floor, $open);
        $crate::store_conformance_tests!(@case clock_floor_under_concurrent_writes, $open);
        $crate::store_conformance_tests!(@case closed_store_refuses, $open);
        $crate::store_conformance_tests!(@$kind $open);
    };
    (@durable $open:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn survives_reopen() {
            let dir = $crate::conformance::temp_dir();
            $crate::conformance::survives_reopen(dir.path(), $open).await;
        }
    };
    (@volatile $open:expr) => {};
}
