//! The change feed is bounded by size as well as by count: records that
//! hold more than `KEEP_BYTES` are pruned, oldest first, once the follower
//! has passed them, so a bulk import does not leave a second copy of its
//! data in the feed until 10,000 more commits have been made.

mod common;

use std::sync::Arc;

use ferry_core::ManualTime;
use ferry_store::{MemoryStore, Store};
use ferry_triplit::db::{KEEP_BYTES, TriplitDb};
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
    let big = KEEP_BYTES * 2 / 5;
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
