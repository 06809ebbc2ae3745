//! The stamps `ENTITY_DATA` carries, as reconnect checkpoints and as the
//! client sees them (`sync/connection/stamp.rs`):
//! - a checkpoint one node hands out never hides a write another node
//!   sharing the store makes later, whichever node's clock is ahead;
//! - frames are stamped above the client's own acknowledged writes;
//! - a database whose earlier version kept a read-stamp lease resumes
//!   above it.

use std::sync::Arc;
use std::time::Duration;

use ferry_core::{Hlc, ManualTime, SeededRandom};
use ferry_store::{MemoryStore, StoreExt, load_clock_floor};
use ferry_triplit::db::{Commit, TriplitDb};
use ferry_triplit::http::{Input, handle};
use ferry_triplit::session::Session;
use ferry_triplit::superjson::decode_changes;
use ferry_triplit::sync::protocol::parse_timestamp;
use ferry_triplit::sync::{Outbound, SharedResults, SyncConnection};
use serde_json::{Value, json};
use tokio::sync::broadcast;

const T: u64 = 1_700_000_000_000;

async fn open(store: &Arc<MemoryStore>, now: u64, seed: u64) -> Arc<TriplitDb> {
    let db = TriplitDb::open(
        store.clone(),
        Arc::new(ManualTime::new(now)),
        Arc::new(SeededRandom::new(seed)),
    )
    .await
    .expect("open");
    Arc::new(db)
}

async fn call(db: &TriplitDb, route: &str, input: Value) {
    let reply = handle(db, &Session::service(), route, Input::Json(input), false).await;
    assert_eq!(reply.status, 200, "{route}");
}

async fn insert(db: &TriplitDb, id: &str, text: &str) {
    call(
        db,
        "insert",
        json!({"collectionName": "todos", "entity": {"id": id, "text": text}}),
    )
    .await;
}

fn connection(db: &Arc<TriplitDb>, id: &str) -> SyncConnection {
    SyncConnection::new(
        db.clone(),
        Session::service(),
        id.into(),
        Arc::new(SharedResults::default()),
    )
}

/// Subscribes to `todos` (with `state`, a checkpoint) and returns the
/// frame.
async fn subscribe(conn: &mut SyncConnection, state: Option<Value>) -> Value {
    let mut payload = json!({"id": "q", "params": {"collectionName": "todos"}});
    if let Some(state) = state {
        payload["state"] = state;
    }
    let out = conn
        .handle_text(&json!({"type": "CONNECT_QUERY", "payload": payload}).to_string())
        .await;
    match out.as_slice() {
        [Outbound::Text(t)] => serde_json::from_str(t).expect("JSON"),
        other => panic!("one frame expected, got {other:?}"),
    }
}

fn stamp_of(frame: &Value) -> Hlc {
    parse_timestamp(&frame["payload"]["timestamp"]).expect("a timestamp")
}

/// The `todos` sets of a frame: `(id, text)`.
fn sets(frame: &Value) -> Vec<(String, Value)> {
    let changes = decode_changes(&frame["payload"]["changes"]).expect("changes");
    changes
        .collections
        .iter()
        .filter(|(c, _)| c == "todos")
        .flat_map(|(_, cc)| cc.sets.iter())
        .map(|(id, e)| (id.clone(), e.get("text").cloned().unwrap_or(Value::Null)))
        .collect()
}

#[tokio::test]
async fn a_checkpoint_from_a_node_ahead_does_not_hide_a_later_write_through_a_node_behind() {
    let store = Arc::new(MemoryStore::new());
    // A's clock runs a minute ahead of B's (a restart onto a persisted
    // floor, or plain clock skew).
    let ahead = open(&store, T + 60_000, 1).await;
    let behind = open(&store, T, 2).await;
    insert(&behind, "k1", "v1").await;
    let mut first = connection(&ahead, "c1");
    let frame = subscribe(&mut first, None).await;
    assert_eq!(sets(&frame), vec![("k1".into(), json!("v1"))]);
    let checkpoint = frame["payload"]["timestamp"].clone();

    // The client is away while B updates k1; then it reconnects to A.
    call(
        &behind,
        "update",
        json!({"collectionName": "todos", "entityId": "k1", "changes": {"text": "v2"}}),
    )
    .await;
    let mut again = connection(&ahead, "c1");
    let state = json!({"timestamp": checkpoint, "entityIds": {"todos": ["k1"]}});
    let frame = subscribe(&mut again, Some(state.clone())).await;
    assert_eq!(
        sets(&frame),
        vec![("k1".into(), json!("v2"))],
        "the write through B is sent"
    );
    assert!(stamp_of(&frame) > parse_timestamp(&checkpoint).unwrap());

    // With nothing written since, the same checkpoint skips k1.
    let newer = json!({"timestamp": frame["payload"]["timestamp"], "entityIds": {"todos": ["k1"]}});
    let mut third = connection(&behind, "c1");
    assert_eq!(sets(&subscribe(&mut third, Some(newer)).await), vec![]);
}

/// The client's own insert of `id` over the socket; returns the
/// `CHANGES_ACK`.
async fn insert_own(conn: &mut SyncConnection, id: &str, text: &str) -> Value {
    let changes = json!({
        "json": {"todos": {"sets": [[id, {"id": id, "text": text}]], "deletes": []}},
        "meta": {"values": {"todos.sets": ["map"], "todos.deletes": ["set"]}, "v": 1}
    });
    let out = conn
        .handle_text(&json!({"type": "CHANGES", "payload": {"changes": changes}}).to_string())
        .await;
    let [Outbound::Text(ack)] = out.as_slice() else {
        panic!("one CHANGES_ACK expected: {out:?}")
    };
    let ack: Value = serde_json::from_str(ack).unwrap();
    assert_eq!(ack["type"], "CHANGES_ACK");
    ack
}

/// Starts the feed and waits until its follower runs (it starts from the
/// feed's position when it first runs).
async fn follow(db: &Arc<TriplitDb>) -> broadcast::Receiver<Arc<Commit>> {
    db.start_feed();
    let mut commits = db.subscribe_commits();
    for n in 0.. {
        call(
            db,
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
    commits
}

async fn next_commit(commits: &mut broadcast::Receiver<Arc<Commit>>) -> Arc<Commit> {
    tokio::time::timeout(Duration::from_secs(10), commits.recv())
        .await
        .expect("a commit")
        .expect("commit stream")
}

#[tokio::test]
async fn frames_are_stamped_above_the_clients_own_acknowledged_writes() {
    let store = Arc::new(MemoryStore::new());
    let db = open(&store, T, 3).await;
    let mut commits = follow(&db).await;
    let mut conn = connection(&db, "c1");
    let first = subscribe(&mut conn, None).await;
    // A write of the client's own over the socket.
    let acked = stamp_of(&insert_own(&mut conn, "t1", "mine").await);
    assert!(acked > stamp_of(&first));

    // Once the commit reached the connection, its frame is above the ack.
    let c = next_commit(&mut commits).await;
    assert!(conn.note_commit(&c));
    let frame: Value =
        serde_json::from_str(&conn.flush().await.expect("flush").expect("ENTITY_DATA")).unwrap();
    assert_eq!(sets(&frame), vec![("t1".into(), json!("mine"))]);
    assert!(stamp_of(&frame) > acked, "{frame}");
    // And below whatever is written next.
    insert(&db, "t2", "next").await;
    let c = next_commit(&mut commits).await;
    assert!(c.timestamp > stamp_of(&frame));
}

#[tokio::test]
async fn a_flush_before_the_clients_write_arrives_waits_for_it() {
    let store = Arc::new(MemoryStore::new());
    let db = open(&store, T, 4).await;
    let mut commits = follow(&db).await;
    let mut conn = connection(&db, "c1");
    subscribe(&mut conn, None).await;
    // Another client's write is seen, then this client's own is acked
    // before its commit arrives.
    insert(&db, "o1", "other").await;
    let theirs = next_commit(&mut commits).await;
    insert_own(&mut conn, "t1", "mine").await;
    assert!(conn.note_commit(&theirs));
    assert_eq!(conn.flush().await.expect("flush"), None);
    assert!(conn.flush_waiting());
    let mine = next_commit(&mut commits).await;
    assert!(conn.note_commit(&mine));
    let frame: Value =
        serde_json::from_str(&conn.flush().await.expect("flush").expect("ENTITY_DATA")).unwrap();
    let mut got = sets(&frame);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![("o1".into(), json!("other")), ("t1".into(), json!("mine"))]
    );
    assert!(stamp_of(&frame) > mine.timestamp);
    assert!(!conn.flush_waiting());
}

#[tokio::test]
async fn a_database_with_an_earlier_read_stamp_lease_resumes_above_it() {
    let store = Arc::new(MemoryStore::new());
    let lease = T + 60_000;
    store
        .write(move |txn| {
            txn.put(&ferry_triplit::keys::clock_lease(), &lease.to_be_bytes())?;
            Ok::<_, ferry_store::StoreError>(())
        })
        .await
        .unwrap();
    let db = open(&store, T, 5).await;
    let floor = store.read(|txn| load_clock_floor(txn)).await.unwrap();
    assert!(floor >= Hlc::new(lease, 0), "{floor}");
    let gone = store
        .read(|txn| txn.get(&ferry_triplit::keys::clock_lease()))
        .await
        .unwrap();
    assert_eq!(gone, None, "the lease is dropped");
    insert(&db, "t1", "x").await;
    let mut conn = connection(&db, "c1");
    let frame = subscribe(&mut conn, None).await;
    assert!(stamp_of(&frame) > Hlc::new(lease, 0));
    // A store's own write path keeps it: nothing regresses on reopen.
    drop(conn);
    let again = open(&store, T, 6).await;
    let mut conn = connection(&again, "c2");
    assert!(stamp_of(&subscribe(&mut conn, None).await) >= stamp_of(&frame));
}
