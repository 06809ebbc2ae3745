//! Opening, closing and reopening: the file layout, schema versioning,
//! reopen after a drop without close, and key order against a model.

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Waker};

use ferry_store::{KeyRange, Store, StoreError, StoreExt};
use ferry_store_sqlite::{SCHEMA_VERSION, SqliteConfig, SqliteStore};

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("ferry.db")
}

async fn put_change(store: &SqliteStore, key: Vec<u8>, value: Vec<u8>) -> u64 {
    let ((), seq) = store
        .write(move |txn| {
            txn.put(&key, &value)?;
            txn.set_change(key.clone());
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    seq.expect("sequence assigned")
}

async fn get(store: &SqliteStore, key: &'static [u8]) -> Option<Vec<u8>> {
    store
        .read(move |txn| txn.get(key))
        .await
        .map_err(|e: StoreError| e)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_after_drop_without_close_keeps_committed_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(&dir)).await.unwrap();
    for i in 0..3u8 {
        put_change(&store, vec![b'k', i], vec![i]).await;
    }
    drop(store);

    let store = SqliteStore::open(db(&dir)).await.unwrap();
    assert_eq!(get(&store, b"k\x02").await, Some(vec![2]));
    assert_eq!(*store.watch().borrow(), 3);
    assert_eq!(store.changes_since(0, 10).await.unwrap().len(), 3);
    assert_eq!(put_change(&store, b"next".to_vec(), vec![]).await, 4);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbering_continues_after_pruning_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(&dir)).await.unwrap();
    for i in 0..3u8 {
        put_change(&store, vec![i], vec![i]).await;
    }
    store.prune_changes(u64::MAX).await.unwrap();
    assert!(store.changes_since(0, 10).await.unwrap().is_empty());
    assert!(
        store
            .changes_since(u64::MAX, usize::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.changes_since(0, 0).await.unwrap().is_empty());
    store.close().await.unwrap();

    let store = SqliteStore::open(db(&dir)).await.unwrap();
    assert_eq!(*store.watch().borrow(), 3);
    assert_eq!(put_change(&store, b"x".to_vec(), vec![]).await, 4);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_finishes_queued_writes_then_refuses_work() {
    let dir = tempfile::tempdir().unwrap();
    // Every write queued for the writer thread (none runs on its caller's).
    let config = SqliteConfig {
        inline_commits: false,
        ..SqliteConfig::default()
    };
    let store = SqliteStore::open_with(db(&dir), config).await.unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let mut queued: Vec<Pin<Box<dyn Future<Output = _> + Send + '_>>> = Vec::new();
    for i in 0..20u8 {
        let mut fut = store.write(move |txn| txn.put(&[b'q', i], &[i]));
        // The first poll hands the job to the writer.
        let _ = fut.as_mut().poll(&mut cx);
        queued.push(fut);
    }
    store.close().await.unwrap();
    for fut in queued {
        fut.await.map_err(|e: StoreError| e).unwrap();
    }

    let err = store.read(|txn| txn.get(b"q")).await.unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err}");
    let err = store.changes_since(0, 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err}");
    let err = store.prune_changes(1).await.unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err}");
    store.close().await.expect("closing twice is harmless");
    drop(store);

    let store = SqliteStore::open(db(&dir)).await.unwrap();
    for i in [0u8, 19] {
        let key: &'static [u8] = if i == 0 { b"q\x00" } else { b"q\x13" };
        assert_eq!(get(&store, key).await, Some(vec![i]));
    }
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_layout_and_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/ferry.db");
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.backend_name(), "sqlite");
    assert_eq!(store.path(), path.as_path());
    put_change(&store, b"k".to_vec(), b"v".to_vec()).await;
    store.close().await.unwrap();

    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "close checkpoints and truncates the WAL");

    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let kv: String = conn
        .query_row("SELECT sql FROM sqlite_master WHERE name = 'kv'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(kv.contains("WITHOUT ROWID"), "{kv}");
    let (key, value): (Vec<u8>, Vec<u8>) = conn
        .query_row("SELECT key, value FROM kv", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((key.as_slice(), value.as_slice()), (&b"k"[..], &b"v"[..]));
    let (seq, payload): (i64, Vec<u8>) = conn
        .query_row("SELECT seq, payload FROM changes", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((seq, payload.as_slice()), (1, &b"k"[..]));
}

fn set_user_version(path: &Path, version: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "user_version", version).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_newer_schemas_and_foreign_databases() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(&dir)).await.unwrap();
    store.close().await.unwrap();
    set_user_version(&db(&dir), SCHEMA_VERSION + 1);
    let err = SqliteStore::open(db(&dir)).await.unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");

    let other = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&other).unwrap();
        conn.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 3;")
            .unwrap();
    }
    let err = SqliteStore::open(&other).await.unwrap_err();
    assert!(err.to_string().contains("not a Ferry database"), "{err}");

    let err = SqliteStore::open(dir.path()).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "a directory: {err}");
}

/// A small deterministic generator, for keys heavy in 0x00 and 0xFF.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn key(&mut self) -> Vec<u8> {
        let len = (self.next() % 5) as usize;
        (0..len)
            .map(|_| [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF][(self.next() % 6) as usize])
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_match_unsigned_byte_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(&dir)).await.unwrap();
    let mut rng = Lcg(7);
    let mut model = BTreeMap::new();
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..200)
        .map(|i: u32| (rng.key(), i.to_be_bytes().to_vec()))
        .collect();
    for (k, v) in &pairs {
        model.insert(k.clone(), v.clone());
    }
    store
        .write(move |txn| {
            for (k, v) in &pairs {
                txn.put(k, v)?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();

    for _ in 0..100 {
        let start = rng.key();
        let end = (!rng.next().is_multiple_of(4)).then(|| rng.key());
        let reverse = rng.next().is_multiple_of(2);
        let limit = (rng.next() % 12) as usize + 1;
        let range = KeyRange {
            start,
            end: end.clone(),
        };
        let mut want: Vec<(Vec<u8>, Vec<u8>)> = model
            .iter()
            .filter(|(k, _)| range.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if reverse {
            want.reverse();
        }
        want.truncate(limit);
        let got = store
            .read({
                let range = range.clone();
                move |txn| {
                    let mut got = Vec::new();
                    txn.scan(&range, reverse, &mut |k, v| {
                        got.push((k.to_vec(), v.to_vec()));
                        if got.len() >= limit {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        }
                    })?;
                    Ok::<_, StoreError>(got)
                }
            })
            .await
            .unwrap();
        assert_eq!(got, want, "{range:?} reverse={reverse} limit={limit}");
    }
    store.close().await.unwrap();
}
