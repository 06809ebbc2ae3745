//! One node against PostgreSQL: paginated scans against a model, sequence
//! numbering across pruning and reconnects, schema versioning, connection
//! errors, and the current-thread runtime.

mod common;

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use ferry_store::{KeyRange, ReadTxn, Store, StoreError, StoreExt};
use ferry_store_postgres::{PostgresConfig, PostgresStore, SCHEMA_VERSION};

/// Key-value pairs in scan order.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 24) as u8
    }

    /// A short key over a small alphabet with the extreme byte values, so
    /// keys share prefixes and are prefixes of each other.
    fn key(&mut self) -> Vec<u8> {
        let len = usize::from(self.next() % 5);
        (0..len)
            .map(|_| [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF][usize::from(self.next() % 6)])
            .collect()
    }
}

fn scan_model(
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
    range: &KeyRange,
    reverse: bool,
    limit: usize,
) -> Pairs {
    let mut pairs: Vec<_> = model
        .iter()
        .filter(|(k, _)| range.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if reverse {
        pairs.reverse();
    }
    pairs.truncate(limit);
    pairs
}

fn scan_txn(
    txn: &dyn ReadTxn,
    range: &KeyRange,
    reverse: bool,
    limit: usize,
) -> Result<Pairs, StoreError> {
    let mut out = Vec::new();
    txn.scan(range, reverse, &mut |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        if out.len() >= limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    Ok(out)
}

/// Ranges over the model's keys and some keys that are not in it.
fn ranges(keys: &[Vec<u8>], bytes: &mut Bytes) -> Vec<KeyRange> {
    let mut out = vec![KeyRange {
        start: vec![],
        end: None,
    }];
    for _ in 0..30 {
        let pick = |b: &mut Bytes| {
            if b.next().is_multiple_of(2) && !keys.is_empty() {
                keys[usize::from(b.next()) % keys.len()].clone()
            } else {
                b.key()
            }
        };
        let start = pick(bytes);
        out.push(KeyRange::prefix(&start));
        let end = pick(bytes);
        out.push(KeyRange::between(start.clone(), end));
        out.push(KeyRange { start, end: None });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paginated_scans_match_a_model_in_reads_and_writes() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let store = db
        .node_with(PostgresConfig {
            scan_batch: 3,
            ..PostgresConfig::default()
        })
        .await;
    let mut bytes = Bytes(0x9E37_79B9_7F4A_7C15);
    let mut model = BTreeMap::new();
    for i in 0..60u8 {
        model.insert(bytes.key(), vec![i]);
    }
    let pairs: Vec<_> = model.clone().into_iter().collect();
    store
        .write(move |txn| {
            for (k, v) in &pairs {
                txn.put(k, v)?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let keys: Vec<_> = model.keys().cloned().collect();
    let cases = ranges(&keys, &mut bytes);
    let (read_model, read_cases) = (model.clone(), cases.clone());
    store
        .read(move |txn| {
            for range in &read_cases {
                for reverse in [false, true] {
                    for limit in [1, 3, 4, 7, usize::MAX] {
                        let got = scan_txn(txn, range, reverse, limit)?;
                        let want = scan_model(&read_model, range, reverse, limit);
                        assert_eq!(got, want, "{range:?} reverse={reverse} limit={limit}");
                    }
                }
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    // Inside a write transaction the pages include its own writes.
    let (mut write_model, deleted, added) = (model.clone(), keys[..10].to_vec(), bytes.key());
    for k in &deleted {
        write_model.remove(k);
    }
    write_model.insert(added.clone(), b"new".to_vec());
    store
        .write(move |txn| {
            for k in &deleted {
                txn.delete(k)?;
            }
            txn.put(&added, b"new")?;
            for range in &cases {
                for reverse in [false, true] {
                    let got = scan_txn(txn, range, reverse, usize::MAX)?;
                    let want = scan_model(&write_model, range, reverse, usize::MAX);
                    assert_eq!(got, want, "{range:?} reverse={reverse}");
                }
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    store.close().await.unwrap();
}

async fn append(store: &PostgresStore, payload: &[u8]) -> u64 {
    let payload = payload.to_vec();
    let ((), seq) = store
        .write(move |txn| {
            txn.set_change(payload.clone());
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    seq.expect("sequence assigned")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbering_continues_after_pruning_everything_and_reconnecting() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let store = db.node().await;
    for i in 1..=3u8 {
        assert_eq!(append(&store, &[i]).await, u64::from(i));
    }
    assert!(store.changes_since(0, 0).await.unwrap().is_empty());
    assert!(store.changes_since(u64::MAX, 10).await.unwrap().is_empty());
    store.prune_changes(u64::MAX).await.unwrap();
    assert!(store.changes_since(0, 10).await.unwrap().is_empty());
    // Dropped without closing: a node that died.
    drop(store);
    let store = db.node().await;
    assert_eq!(*store.watch().borrow(), 3);
    assert_eq!(append(&store, b"next").await, 4);
    let left = store.changes_since(0, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].seq, left[0].payload.as_slice()), (4, &b"next"[..]));
    store.close().await.unwrap();
    store.close().await.unwrap();
    let err = store.changes_since(0, 10).await.unwrap_err();
    assert_eq!(err.code(), "STORE_CLOSED");
    let err = store.prune_changes(1).await.unwrap_err();
    assert_eq!(err.code(), "STORE_CLOSED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_ferry_is_refused() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    db.node().await.close().await.unwrap();
    db.raw()
        .await
        .execute(
            "INSERT INTO ferry_schema_migrations (version) VALUES ($1)",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    let err = PostgresStore::connect(&db.url).await.unwrap_err();
    assert_eq!(err.code(), "STORE_BACKEND");
    assert!(err.to_string().contains("newer than this build"), "{err}");
}

#[tokio::test]
async fn works_on_a_current_thread_runtime() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let store = db.node().await;
    let ((), seq) = store
        .write(|txn| {
            txn.put(b"a", b"1")?;
            txn.put(b"b", b"2")?;
            txn.set_change(b"c".to_vec());
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    assert_eq!(seq, Some(1));
    let keys = store
        .read(|txn| {
            scan_txn(
                txn,
                &KeyRange {
                    start: vec![],
                    end: None,
                },
                true,
                10,
            )
        })
        .await
        .unwrap();
    assert_eq!(
        keys,
        vec![
            (b"b".to_vec(), b"2".to_vec()),
            (b"a".to_vec(), b"1".to_vec())
        ]
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn connect_reports_bad_urls_and_unreachable_servers() {
    let err = PostgresStore::connect("postgres://nobody@127.0.0.1:5432/db?sslmode=bogus")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "STORE_BACKEND");
    assert!(err.to_string().contains("invalid database url"), "{err}");
    // Port 1 on loopback: nothing listens, the connection is refused.
    let err = PostgresStore::connect("postgres://nobody@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "STORE_UNAVAILABLE");
    assert!(err.to_string().contains("connect"), "{err}");
}
