//! The change feed is bounded by size as well as by count: records that
//! hold more than the retention's bytes are pruned, oldest first, once the
//! follower has passed them, so a bulk import does not leave a second copy
//! of its data in the feed until many more commits have been made.

mod common;

use std::sync::Arc;

use ferry_core::ManualTime;
use ferry_store::{MemoryStore, Store};
use ferry_triplit::db::{Retention, TriplitDb};
use serde_json::json;

/// Inserts one todo whose text is `bytes` long and waits until the
/// follower has published it.
async fn insert_big(db: &TriplitDb, id: &str, bytes: usize) {
    let mut commits = db.subscribe_commits();
    common::call(
        db,
        "insert",
        json!({"collectionName": "todos", "entity": {"id": id, "text": "x".repeat(bytes)}}),
    )
    .await;
    loop {
        let c = commits.recv().await.expect("commit");
        if c.entities.iter().any(|(_, i, _)| i == id) {
            break;
        }
    }
}

#[tokio::test]
async fn records_past_the_byte_budget_are_pruned_oldest_first() {
    let store = Arc::new(MemoryStore::new());
    let db = common::open_following(store.clone(), Arc::new(ManualTime::new(1_000)), 7).await;
    assert_eq!(Retention::of(store.as_ref()), Retention::PRIVATE);
    let big = Retention::PRIVATE.bytes * 2 / 5;
    insert_big(&db, "a", 16).await;
    insert_big(&db, "b", big).await;
    insert_big(&db, "c", big).await;
    // Under the budget (~0.8 of it): every record is still there.
    let held = store.changes_since(0, 100).await.expect("feed");
    assert_eq!(held.len(), 3, "nothing is pruned under the budget");
    insert_big(&db, "d", big).await;
    // Over it: pruned down to half the budget, keeping the newest.
    let mut held = Vec::new();
    for _ in 0..200 {
        held = store.changes_since(0, 100).await.expect("feed");
        if held.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(held.len(), 1, "only the newest record is kept");
    let text = String::from_utf8_lossy(&held[0].payload[..200]).to_string();
    assert!(text.contains(r#""d""#), "{text}");
    // The entities themselves are untouched.
    let ids = db.ids("todos").await.expect("ids");
    assert_eq!(ids, ["a", "b", "c", "d"]);
}

#[tokio::test]
async fn a_feed_only_this_process_reads_keeps_a_short_tail() {
    let store = Arc::new(MemoryStore::new());
    let db = common::open_following(store.clone(), Arc::new(ManualTime::new(1_000)), 7).await;
    let keep = Retention::PRIVATE.records as usize;
    let n = keep + keep / 4;
    for i in 0..n {
        insert_big(&db, &format!("t{i:05}"), 8).await;
    }
    // Pruned by count once the follower passed them: at most one step
    // more than the tail is held, and the oldest records are gone.
    let mut held = Vec::new();
    for _ in 0..200 {
        held = store.changes_since(0, 10 * n).await.expect("feed");
        if held.len() <= keep + keep / 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(held.len() >= keep, "the tail is kept: {}", held.len());
    assert!(held.len() <= keep + keep / 10, "pruned: {}", held.len());
    assert!(held[0].seq > 1);
    assert_eq!(db.ids("todos").await.expect("ids").len(), n);
}
