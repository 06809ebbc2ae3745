//! Coordinated pruning of the shared change log: a node prunes only what
//! every node with a recent heartbeat has read, never what is newer than
//! its own retention bound, and a node silent past
//! `PostgresConfig::node_timeout` no longer holds the log back.

mod common;

use std::time::Duration;

use ferry_store::{Store, StoreError, StoreExt};
use ferry_store_postgres::{PostgresConfig, PostgresStore};

async fn commit(store: &PostgresStore, n: u8) -> u64 {
    let (_, seq) = store
        .write(move |txn| {
            txn.put(&[b'k', n], &[n])?;
            txn.set_change(vec![n]);
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    seq.unwrap()
}

async fn oldest(store: &PostgresStore) -> Option<u64> {
    store
        .changes_since(0, 1)
        .await
        .unwrap()
        .first()
        .map(|c| c.seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_keeps_what_a_live_node_has_not_read() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let config = PostgresConfig {
        node_timeout: Duration::from_millis(1500),
        ..PostgresConfig::default()
    };
    let fast = db.node_with(config.clone()).await;
    let slow = db.node_with(config).await;
    assert_ne!(fast.node_id(), slow.node_id());
    // Other nodes read this feed: each node's follower keeps the shared
    // window behind itself (`Retention::SHARED`), not the short tail of a
    // store only one process reads.
    assert!(fast.shared_feed());
    let mut seqs = Vec::new();
    for n in 0..20 {
        seqs.push(commit(&fast, n).await);
    }
    let last = seqs[19];
    // No node has reported: the caller's bound alone applies.
    fast.prune_changes(seqs[2]).await.unwrap();
    assert_eq!(oldest(&fast).await, Some(seqs[2]));

    fast.report_position(last).await.unwrap();
    slow.report_position(seqs[5]).await.unwrap();
    // The slow node read up to seqs[5]: the fast node's prune stops there.
    fast.prune_changes(seqs[15]).await.unwrap();
    assert_eq!(oldest(&fast).await, Some(seqs[6]));
    // A position never moves back.
    slow.report_position(seqs[3]).await.unwrap();
    fast.prune_changes(seqs[15]).await.unwrap();
    assert_eq!(oldest(&fast).await, Some(seqs[6]));

    // Both caught up: the retention bound still holds.
    slow.report_position(last).await.unwrap();
    fast.prune_changes(seqs[10]).await.unwrap();
    assert_eq!(oldest(&fast).await, Some(seqs[10]));

    // The slow node falls behind and then goes silent past the timeout:
    // it no longer holds the log back, while the live one does.
    let raw = db.raw().await;
    raw.execute(
        "UPDATE ferry_nodes SET position = $1 WHERE node_id = $2",
        &[&(seqs[11] as i64), &slow.node_id()],
    )
    .await
    .unwrap();
    fast.prune_changes(seqs[15]).await.unwrap();
    assert_eq!(oldest(&fast).await, Some(seqs[12]));
    tokio::time::sleep(Duration::from_millis(1700)).await;
    fast.report_position(last).await.unwrap();
    fast.prune_changes(seqs[15]).await.unwrap();
    assert_eq!(oldest(&fast).await, Some(seqs[15]));
    // What was pruned is a gap to a reader behind it.
    let after_gap = slow.changes_since(seqs[11], 1).await.unwrap();
    assert_eq!(after_gap[0].seq, seqs[15]);
    assert!(after_gap[0].seq > seqs[11] + 1);

    let rows: Vec<(String, i64)> = raw
        .query(
            "SELECT node_id, position FROM ferry_nodes ORDER BY node_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let _ = fast
        .read(|txn| txn.get(b"x"))
        .await
        .map_err(|e: StoreError| e);
    fast.close().await.unwrap();
    slow.close().await.unwrap();
}
