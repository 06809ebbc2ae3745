//! A feed follower that finds change records pruned before it read them
//! (a gap in the contiguous sequence numbers) resynchronises every session
//! instead of skipping those commits: the sessions' queries run again and
//! the client gets what it missed, deletes included.
//!
//! The gap is made deterministically: the store's `changes_since` waits on
//! a gate the test holds while it commits and prunes behind the follower.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_core::{ManualTime, SeededRandom};
use ferry_store::{Change, MemoryStore, ReadFn, Store, StoreError, WriteFn};
use ferry_triplit::db::{Commit, TriplitDb};
use ferry_triplit::http::{Input, handle};
use ferry_triplit::session::Session;
use ferry_triplit::superjson::decode_changes;
use ferry_triplit::sync::{Outbound, SharedResults, SyncConnection};
use serde_json::{Value, json};
use tokio::sync::{Mutex, broadcast, watch};

/// A [`MemoryStore`] whose feed reads wait for `gate`.
struct GatedStore {
    inner: MemoryStore,
    gate: Arc<Mutex<()>>,
}

#[async_trait]
impl Store for GatedStore {
    fn backend_name(&self) -> &'static str {
        "gated-memory"
    }
    async fn read_boxed(&self, f: ReadFn) -> Result<(), StoreError> {
        self.inner.read_boxed(f).await
    }
    async fn write_boxed(&self, f: WriteFn) -> Result<Option<u64>, StoreError> {
        self.inner.write_boxed(f).await
    }
    async fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let _open = self.gate.lock().await;
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

async fn call(db: &TriplitDb, route: &str, input: Value) -> Value {
    let reply = handle(db, &Session::service(), route, Input::Json(input), false).await;
    assert_eq!(reply.status, 200, "{route}");
    match reply.body {
        ferry_triplit::http::Body::Json(v) => v,
        ferry_triplit::http::Body::JsonBytes(b) => serde_json::from_slice(&b).expect("JSON"),
        _ => Value::Null,
    }
}

async fn insert(db: &TriplitDb, id: &str) {
    call(
        db,
        "insert",
        json!({"collectionName": "todos", "entity": {"id": id, "text": id}}),
    )
    .await;
}

/// Receives commits until one satisfies `until`, noting each, then
/// flushes; returns the `ENTITY_DATA` frame.
async fn pump(
    conn: &mut SyncConnection,
    commits: &mut broadcast::Receiver<Arc<Commit>>,
    until: impl Fn(&Commit) -> bool,
) -> (Value, Vec<Arc<Commit>>) {
    let mut seen = Vec::new();
    loop {
        let c = tokio::time::timeout(Duration::from_secs(10), commits.recv())
            .await
            .expect("a commit")
            .expect("commit stream");
        conn.note_commit(&c);
        seen.push(c.clone());
        if until(&c) {
            break;
        }
    }
    let data = conn.flush().await.expect("flush").expect("ENTITY_DATA");
    (serde_json::from_str(&data).unwrap(), seen)
}

fn ids(frame: &Value) -> (Vec<String>, Vec<String>) {
    let changes = decode_changes(&frame["payload"]["changes"]).expect("changes");
    let Some((_, c)) = changes.collections.iter().find(|(n, _)| n == "todos") else {
        return (vec![], vec![]);
    };
    let mut sets: Vec<String> = c.sets.iter().map(|(i, _)| i.clone()).collect();
    let mut deletes = c.deletes.clone();
    sets.sort();
    deletes.sort();
    (sets, deletes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_the_feed_resynchronises_sessions() {
    let gate = Arc::new(Mutex::new(()));
    let store = Arc::new(GatedStore {
        inner: MemoryStore::new(),
        gate: gate.clone(),
    });
    let db = Arc::new(
        TriplitDb::open(
            store.clone(),
            Arc::new(ManualTime::new(1_700_000_000_000)),
            Arc::new(SeededRandom::new(7)),
        )
        .await
        .unwrap(),
    );
    db.start_feed();
    let mut commits = db.subscribe_commits();
    // The follower starts from the feed's position when it first runs:
    // write until a commit comes through, so it is surely running.
    for n in 0.. {
        call(
            &db,
            "insert",
            json!({"collectionName": "warmup", "entity": {"id": n.to_string()}}),
        )
        .await;
        if tokio::time::timeout(Duration::from_millis(200), commits.recv())
            .await
            .is_ok()
        {
            break;
        }
        assert!(n < 50, "the feed follower never started");
    }
    while commits.try_recv().is_ok() {}
    let mut conn = SyncConnection::new(
        db.clone(),
        Session::service(),
        "c1".into(),
        Arc::new(SharedResults::default()),
    );
    let out = conn
        .handle_text(
            &json!({"type": "CONNECT_QUERY", "payload": {"id": "q", "params": {"collectionName": "todos"}}})
                .to_string(),
        )
        .await;
    assert!(matches!(out.as_slice(), [Outbound::Text(_)]), "{out:?}");
    insert(&db, "t1").await;
    insert(&db, "gone").await;
    let (frame, _) = pump(&mut conn, &mut commits, |c| {
        c.entities.iter().any(|(_, id, _)| id == "gone")
    })
    .await;
    assert_eq!(ids(&frame).0, vec!["gone".to_string(), "t1".to_string()]);

    // The follower is held at the gate while another node sharing the
    // store commits three times (this node's own commits are handed to
    // its follower without a read, so they cannot go missing) and all but
    // the last record are pruned behind it.
    let other = TriplitDb::open(
        store.clone(),
        Arc::new(ManualTime::new(1_700_000_000_000)),
        Arc::new(SeededRandom::new(8)),
    )
    .await
    .unwrap();
    let held = gate.lock().await;
    insert(&other, "t2").await;
    call(
        &other,
        "delete",
        json!({"collectionName": "todos", "entityId": "gone"}),
    )
    .await;
    insert(&other, "t3").await;
    let last = *store.watch().borrow();
    store.inner.prune_changes(last).await.unwrap();
    drop(held);

    let (frame, seen) = pump(&mut conn, &mut commits, |c| c.seq == Some(last)).await;
    let (sets, deletes) = ids(&frame);
    assert!(sets.contains(&"t2".to_string()), "{sets:?}");
    assert!(sets.contains(&"t3".to_string()), "{sets:?}");
    assert!(!sets.contains(&"gone".to_string()), "{sets:?}");
    assert!(deletes.contains(&"gone".to_string()), "{deletes:?}");
    assert!(
        seen.iter().any(|c| c.resync),
        "the follower announced the gap"
    );
    assert!(
        seen.iter().all(|c| c.resync || c.seq == Some(last)),
        "no pruned record is replayed"
    );
}
