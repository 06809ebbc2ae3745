//! Fan-out order: this process's commits (handed to the feed follower by
//! the commit path) and records written by another node sharing the store
//! (read from the feed) reach subscribers exactly once each, in feed order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::{ManualTime, SeededRandom};
use ferry_store::{MemoryStore, Store, StoreError, StoreExt};
use ferry_triplit::db::{Transaction, TriplitDb};
use ferry_triplit::session::Session;
use serde_json::{Map, Value, json};

const EACH: usize = 200;

fn entity(id: &str) -> Map<String, Value> {
    json!({"id": id, "n": 1})
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// Another node's commit: its change record, written straight to the store.
async fn foreign_write(store: &MemoryStore, i: usize) -> u64 {
    let id = format!("f{i}");
    let record = json!({"ts": [1_600_000_000_000u64 + i as u64, 0], "entities": [["todos", id, entity(&id)]]});
    let (_, seq) = store
        .write(move |txn| {
            txn.set_change(record.to_string().into_bytes());
            Ok::<_, StoreError>(())
        })
        .await
        .expect("foreign write");
    seq.expect("a sequence number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_and_foreign_commits_arrive_once_each_in_feed_order() {
    let store = Arc::new(MemoryStore::new());
    let db = Arc::new(
        TriplitDb::open(
            store.clone() as Arc<dyn Store>,
            Arc::new(ManualTime::new(1_700_000_000_000)),
            Arc::new(SeededRandom::new(7)),
        )
        .await
        .expect("open"),
    );
    let mut rx = db.subscribe_commits();
    db.start_feed();
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    let local = {
        let db = db.clone();
        tokio::spawn(async move {
            for i in 0..EACH {
                let mut tx = Transaction::new();
                let id = format!("l{i}");
                tx.insert("todos", id.clone(), entity(&id));
                db.commit(&Session::service(), tx).await.expect("commit");
            }
        })
    };
    let foreign = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seqs = HashMap::new();
            for i in 0..EACH {
                seqs.insert(format!("f{i}"), foreign_write(&store, i).await);
            }
            seqs
        })
    };
    local.await.expect("local writer");
    let foreign_seqs = foreign.await.expect("foreign writer");

    let mut seen = Vec::new();
    while seen.len() < 2 * EACH {
        let commit = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("every commit is delivered")
            .expect("no commit is dropped");
        for (_, id, doc) in &commit.entities {
            assert_eq!(doc.as_ref(), Some(&entity(id)), "the post-state of {id}");
            seen.push((commit.seq.expect("a feed position"), id.clone()));
        }
    }
    let seqs: Vec<u64> = seen.iter().map(|s| s.0).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "feed order without gaps or repeats: {seqs:?}"
    );
    let locals: Vec<&str> = seen
        .iter()
        .filter(|s| s.1.starts_with('l'))
        .map(|s| s.1.as_str())
        .collect();
    let expected: Vec<String> = (0..EACH).map(|i| format!("l{i}")).collect();
    assert_eq!(locals, expected, "local commits in commit order");
    for (seq, id) in &seen {
        if let Some(at) = foreign_seqs.get(id) {
            assert_eq!(seq, at, "{id} arrives at the position it was written at");
        }
    }
    assert_eq!(
        seen.iter().filter(|s| s.1.starts_with('f')).count(),
        EACH,
        "every foreign commit arrives"
    );
}
