//! Failing transactions: panics release the write lock, a failed statement
//! is never reported as a commit, and serialization failures (injected by
//! triggers in the test's own database) re-run the closure.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ferry_store::{Store, StoreError, StoreExt, WriteOutcome};
use ferry_store_postgres::{PostgresConfig, PostgresStore};

async fn get(store: &PostgresStore, key: &'static [u8]) -> Option<Vec<u8>> {
    store
        .read(move |txn| txn.get(key))
        .await
        .map_err(|e: StoreError| e)
        .unwrap()
}

/// A key beyond PostgreSQL's B-tree entry limit, which no compression can
/// shrink (pseudo-random bytes).
fn oversized_key() -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_closure_rolls_back_and_releases_the_write_lock() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let (a, b) = (db.node().await, db.node().await);
    let err = a
        .write_boxed(Box::new(|txn| {
            txn.put(b"half", b"done")?;
            panic!("closure bug");
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "STORE_BACKEND");
    assert!(err.to_string().contains("closure bug"), "{err}");
    let err = a
        .read_boxed(Box::new(|_| panic!("reader bug")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reader bug"), "{err}");
    // The lock is free for the other node, and nothing half-done is left.
    b.write(|txn| txn.put(b"after", b"1"))
        .await
        .map_err(|e: StoreError| e)
        .unwrap();
    assert_eq!(get(&b, b"half").await, None);
    // The panicking node still works.
    a.write(|txn| txn.put(b"again", b"1"))
        .await
        .map_err(|e: StoreError| e)
        .unwrap();
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_statement_is_never_reported_as_a_commit() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let store = db.node().await;
    let key = oversized_key();
    let put_err = store
        .write(move |txn| txn.put(&key, b"v"))
        .await
        .map_err(|e: StoreError| e)
        .unwrap_err();
    assert_eq!(put_err.code(), "STORE_BACKEND");
    assert!(put_err.to_string().contains("SQLSTATE"), "{put_err}");
    // A closure that ignores the error and asks to commit anyway.
    let key = oversized_key();
    let err = store
        .write_boxed(Box::new(move |txn| {
            txn.put(b"before", b"1")?;
            let _ignored = txn.put(&key, b"v");
            txn.set_change(b"never".to_vec());
            Ok(WriteOutcome::Commit)
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "STORE_BACKEND");
    assert_eq!(get(&store, b"before").await, None);
    assert!(store.changes_since(0, 10).await.unwrap().is_empty());
    assert_eq!(*store.watch().borrow(), 0);
    store.close().await.unwrap();
}

/// Makes every write of the key `boom` fail with a serialization failure
/// while the sequence `boom_left` still has values left: `fails` times.
async fn inject_serialization_failures(db: &common::TestDb, fails: u32, at_commit: bool) {
    let trigger = if at_commit {
        "CREATE CONSTRAINT TRIGGER boom AFTER INSERT OR UPDATE ON ferry_kv
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION boom()"
    } else {
        "CREATE TRIGGER boom BEFORE INSERT OR UPDATE ON ferry_kv
         FOR EACH ROW EXECUTE FUNCTION boom()"
    };
    db.raw()
        .await
        .batch_execute(&format!(
            "CREATE SEQUENCE boom_left;
             CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.key = '\\x626f6f6d'::bytea AND nextval('boom_left') <= {fails} THEN
                     RAISE EXCEPTION 'injected conflict' USING ERRCODE = 'serialization_failure';
                 END IF;
                 RETURN NEW;
             END $$;
             {trigger};"
        ))
        .await
        .unwrap();
}

async fn write_boom(store: &PostgresStore) -> (Result<Option<u64>, StoreError>, u32) {
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    let result = store
        .write_boxed(Box::new(move |txn| {
            counter.fetch_add(1, Ordering::SeqCst);
            txn.put(b"boom", b"1")?;
            txn.set_change(b"boom".to_vec());
            Ok(WriteOutcome::Commit)
        }))
        .await;
    (result, runs.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serialization_failures_rerun_the_closure() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let store = db.node().await;
    inject_serialization_failures(&db, 2, false).await;
    let (result, runs) = write_boom(&store).await;
    assert_eq!(result.unwrap(), Some(1));
    assert_eq!(runs, 3);
    assert_eq!(get(&store, b"boom").await.as_deref(), Some(&b"1"[..]));
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serialization_failure_at_commit_reruns_the_closure() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let store = db.node().await;
    inject_serialization_failures(&db, 1, true).await;
    let (result, runs) = write_boom(&store).await;
    assert_eq!(runs, 2);
    // The failed first attempt consumed no sequence number.
    assert_eq!(result.unwrap(), Some(1));
    assert_eq!(store.changes_since(0, 10).await.unwrap().len(), 1);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_conflicts_give_up_after_the_configured_attempts() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let store = db
        .node_with(PostgresConfig {
            max_write_attempts: 4,
            ..PostgresConfig::default()
        })
        .await;
    inject_serialization_failures(&db, 1000, false).await;
    let (result, runs) = write_boom(&store).await;
    let err = result.unwrap_err();
    assert_eq!(runs, 4);
    assert_eq!(err.code(), "STORE_BACKEND");
    assert!(err.to_string().contains("gave up after 4"), "{err}");
    assert_eq!(get(&store, b"boom").await, None);
    store.close().await.unwrap();
}
