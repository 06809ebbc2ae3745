//! Several `PostgresStore`s on one database behave like the nodes of one
//! cluster: they share data, number change records in one global order
//! that a follower can tail without skipping, wake each other's watchers,
//! never lose an update, and migrate a fresh database at once safely.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ferry_store::{Store, StoreError, StoreExt};
use ferry_store_postgres::{PostgresConfig, PostgresStore, SCHEMA_VERSION};
use tokio::sync::watch;

async fn put_change(store: &PostgresStore, key: &[u8], value: &[u8]) -> u64 {
    let (key, value) = (key.to_vec(), value.to_vec());
    let ((), seq) = store
        .write(move |txn| {
            txn.put(&key, &value)?;
            txn.set_change(value.clone());
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    seq.expect("sequence assigned")
}

async fn get(store: &PostgresStore, key: &'static [u8]) -> Option<Vec<u8>> {
    store
        .read(move |txn| txn.get(key))
        .await
        .map_err(|e: StoreError| e)
        .unwrap()
}

/// Waits until `watch` shows at least `seq`.
async fn seen(watch: &mut watch::Receiver<u64>, seq: u64) {
    while *watch.borrow_and_update() < seq {
        watch.changed().await.expect("store still open");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_data_and_one_change_order() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let (a, b) = (db.node().await, db.node().await);
    let s1 = put_change(&a, b"from-a", b"1").await;
    assert_eq!(get(&b, b"from-a").await.as_deref(), Some(&b"1"[..]));
    let s2 = put_change(&b, b"from-b", b"2").await;
    assert_eq!(get(&a, b"from-b").await.as_deref(), Some(&b"2"[..]));
    let s3 = put_change(&a, b"from-a-again", b"3").await;
    assert!(s1 < s2 && s2 < s3, "{s1} {s2} {s3}");
    let on_a = a.changes_since(0, 10).await.unwrap();
    let on_b = b.changes_since(0, 10).await.unwrap();
    assert_eq!(on_a, on_b);
    assert_eq!(
        on_a.iter().map(|c| c.seq).collect::<Vec<_>>(),
        vec![s1, s2, s3]
    );
    assert_eq!(on_a[1].payload, b"2");
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_wakes_for_another_nodes_commit_by_notification() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    // B re-reads the counter right after LISTEN and then not for an hour,
    // so once it has seen the first commit only NOTIFY can wake it.
    let b = db
        .node_with(PostgresConfig {
            poll_interval: Duration::from_secs(3600),
            ..PostgresConfig::default()
        })
        .await;
    let a = db.node().await;
    let mut watch = b.watch();
    let first = put_change(&a, b"k", b"1").await;
    seen(&mut watch, first).await;
    let second = put_change(&a, b"k", b"2").await;
    seen(&mut watch, second).await;
    assert_eq!(*watch.borrow(), second);
    assert_eq!(b.changes_since(first, 10).await.unwrap()[0].payload, b"2");
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_falls_back_to_polling_when_no_notification_comes() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let b = db
        .node_with(PostgresConfig {
            poll_interval: Duration::from_millis(10),
            ..PostgresConfig::default()
        })
        .await;
    // A commit that appends a record the way Ferry does, minus the NOTIFY.
    let raw = db.raw().await;
    let row = raw
        .query_one(
            "WITH next AS (
                 UPDATE ferry_meta SET value = value + 1 WHERE name = 'last_seq' RETURNING value
             )
             INSERT INTO ferry_changes (seq, payload) SELECT value, '\\x2a' FROM next RETURNING seq",
            &[],
        )
        .await
        .unwrap();
    let seq = u64::try_from(row.get::<_, i64>(0)).unwrap();
    let mut watch = b.watch();
    seen(&mut watch, seq).await;
    assert_eq!(b.changes_since(0, 10).await.unwrap()[0].payload, b"*");
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_read_modify_write_across_nodes_loses_no_update() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let nodes = [Arc::new(db.node().await), Arc::new(db.node().await)];
    let mut tasks = Vec::new();
    for i in 0..40 {
        let node = nodes[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            node.write(|txn| {
                let n = match txn.get(b"counter")? {
                    Some(bytes) => u64::from_be_bytes(bytes.try_into().unwrap()),
                    None => 0,
                };
                txn.put(b"counter", &(n + 1).to_be_bytes())
            })
            .await
            .map_err(|e: StoreError| e)
            .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let n = get(&nodes[0], b"counter").await.unwrap();
    assert_eq!(u64::from_be_bytes(n.try_into().unwrap()), 40);
    for node in nodes {
        node.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_tails_every_record_once_in_commit_order() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let writers = [Arc::new(db.node().await), Arc::new(db.node().await)];
    let follower = db.node().await;
    let (done_tx, mut done) = watch::channel(None::<u64>);
    let tail = tokio::spawn(async move {
        let mut watch = follower.watch();
        let (mut last, mut tailed) = (0, Vec::new());
        loop {
            watch.borrow_and_update();
            let batch = follower.changes_since(last, 7).await.unwrap();
            if let Some(change) = batch.last() {
                last = change.seq;
            }
            tailed.extend(batch.iter().map(|c| c.seq));
            if done
                .borrow_and_update()
                .is_some_and(|target| last >= target)
            {
                break;
            }
            if batch.is_empty() {
                tokio::select! {
                    changed = watch.changed() => changed.unwrap(),
                    changed = done.changed() => changed.unwrap(),
                }
            }
        }
        follower.close().await.unwrap();
        tailed
    });
    let mut tasks = Vec::new();
    for task in 0..6u8 {
        let node = writers[usize::from(task % 2)].clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..10u8 {
                seqs.push(put_change(&node, &[task, i], &[task, i]).await);
            }
            seqs
        }));
    }
    let mut committed = BTreeSet::new();
    for task in tasks {
        committed.extend(task.await.unwrap());
    }
    assert_eq!(committed.len(), 60);
    done_tx.send_replace(committed.last().copied());
    let tailed = tail.await.unwrap();
    assert_eq!(tailed, committed.iter().copied().collect::<Vec<_>>());
    let feed = writers[0].changes_since(0, 100).await.unwrap();
    assert_eq!(feed.iter().map(|c| c.seq).collect::<Vec<_>>(), tailed);
    for node in writers {
        node.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_migrating_at_once_do_not_race() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let connects = (0..4).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move { PostgresStore::connect(&url).await })
    });
    let mut nodes = Vec::new();
    for connect in connects.collect::<Vec<_>>() {
        nodes.push(connect.await.unwrap().expect("every node connects"));
    }
    let raw = db.raw().await;
    let row = raw
        .query_one(
            "SELECT count(*)::int, max(version) FROM ferry_schema_migrations",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), SCHEMA_VERSION);
    assert_eq!(row.get::<_, i32>(1), SCHEMA_VERSION);
    let meta = raw
        .query("SELECT name, value FROM ferry_meta", &[])
        .await
        .unwrap();
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0].get::<_, i64>(1), 0);
    let seq = put_change(&nodes[3], b"k", b"v").await;
    assert_eq!(get(&nodes[0], b"k").await.as_deref(), Some(&b"v"[..]));
    assert_eq!(seq, 1);
    for node in nodes {
        node.close().await.unwrap();
    }
}
