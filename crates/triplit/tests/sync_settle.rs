//! Restating entities a client may have applied out of order: an entity
//! sent twice within the window is sent once more, as it is now, when the
//! connection has been quiet (`sync/settle.rs`).

use std::sync::Arc;
use std::time::Duration;

mod common;

use ferry_core::{ManualTime, TimeSource};
use ferry_store::MemoryStore;
use ferry_triplit::db::{Commit, TriplitDb};
use ferry_triplit::http::{Input, handle};
use ferry_triplit::session::Session;
use ferry_triplit::superjson::decode_changes;
use ferry_triplit::sync::settle::{QUIET_MS, WINDOW_MS};
use ferry_triplit::sync::{SharedResults, SyncConnection};
use serde_json::{Value, json};
use tokio::sync::broadcast;

struct Setup {
    db: Arc<TriplitDb>,
    time: Arc<ManualTime>,
    conn: SyncConnection,
    commits: broadcast::Receiver<Arc<Commit>>,
}

async fn setup() -> Setup {
    let time = Arc::new(ManualTime::new(1_700_000_000_000));
    let db = common::open_following(Arc::new(MemoryStore::new()), time.clone(), 5).await;
    let commits = db.subscribe_commits();
    let conn = SyncConnection::new(
        db.clone(),
        Session::service(),
        "c1".into(),
        Arc::new(SharedResults::default()),
    );
    let mut s = Setup {
        db,
        time,
        conn,
        commits,
    };
    s.write(
        "insert",
        json!({"collectionName": "todos", "entity": {"id": "t1", "n": 1}}),
    )
    .await;
    s.write(
        "insert",
        json!({"collectionName": "todos", "entity": {"id": "t2", "n": 1}}),
    )
    .await;
    s.next_commit().await;
    s.next_commit().await;
    let out = s
        .conn
        .handle_text(
            &json!({"type": "CONNECT_QUERY", "payload": {"id": "q", "params": {"collectionName": "todos"}}})
                .to_string(),
        )
        .await;
    assert_eq!(out.len(), 1);
    // The first frame counts as a send: let it age out of the window.
    s.time.advance(WINDOW_MS);
    assert_eq!(s.conn.settle().await.expect("settle"), None);
    s
}

impl Setup {
    async fn write(&self, route: &str, input: Value) {
        let reply = handle(
            &self.db,
            &Session::service(),
            route,
            Input::Json(input),
            false,
        )
        .await;
        assert_eq!(reply.status, 200, "{route}");
    }

    async fn next_commit(&mut self) -> Arc<Commit> {
        tokio::time::timeout(Duration::from_secs(10), self.commits.recv())
            .await
            .expect("a commit")
            .expect("commit stream")
    }

    /// Writes, lets the connection see the commit and flushes; returns the
    /// `(sets, deletes)` of `todos` in the frame sent.
    async fn step(&mut self, route: &str, input: Value) -> (Vec<String>, Vec<String>) {
        self.write(route, input).await;
        let c = self.next_commit().await;
        assert!(self.conn.note_commit(&c));
        let frame = self.conn.flush().await.expect("flush").expect("a frame");
        todos(&frame)
    }
}

fn todos(frame: &str) -> (Vec<String>, Vec<String>) {
    let v: Value = serde_json::from_str(frame).expect("JSON");
    let changes = decode_changes(&v["payload"]["changes"]).expect("changes");
    let Some((_, c)) = changes.collections.iter().find(|(n, _)| n == "todos") else {
        return (vec![], vec![]);
    };
    let mut sets: Vec<String> = c.sets.iter().map(|(i, _)| i.clone()).collect();
    sets.sort();
    (sets, c.deletes.clone())
}

fn update(id: &str, n: i64) -> Value {
    json!({"collectionName": "todos", "entityId": id, "changes": {"n": n}})
}

#[tokio::test]
async fn an_update_then_a_delete_in_quick_succession_is_deleted_again_once_quiet() {
    let mut s = setup().await;
    assert_eq!(
        s.conn.settle_due_ms(),
        None,
        "nothing sent since connecting"
    );
    assert_eq!(
        s.step("update", update("t1", 2)).await,
        (vec!["t1".into()], vec![])
    );
    s.time.advance(150);
    let deleted = json!({"collectionName": "todos", "entityId": "t1"});
    assert_eq!(s.step("delete", deleted).await, (vec![], vec!["t1".into()]));
    let sent_at = s.time.now_ms();
    assert_eq!(s.conn.settle_due_ms(), Some(sent_at + QUIET_MS));
    // Not quiet yet: nothing.
    s.time.advance(QUIET_MS - 1);
    assert_eq!(s.conn.settle().await.expect("settle"), None);
    s.time.advance(1);
    let frame = s
        .conn
        .settle()
        .await
        .expect("settle")
        .expect("a restating frame");
    assert_eq!(todos(&frame), (vec![], vec!["t1".into()]));
    // Stamps keep increasing: the client applies the restatement.
    let v: Value = serde_json::from_str(&frame).unwrap();
    assert!(v["payload"]["timestamp"][0].as_u64().unwrap() >= sent_at);
    // Restated once; kept only until the window has passed.
    let restated_at = s.time.now_ms();
    assert_eq!(s.conn.settle_due_ms(), Some(restated_at + WINDOW_MS));
    s.time.advance(WINDOW_MS);
    assert_eq!(s.conn.settle().await.expect("settle"), None);
    assert_eq!(s.conn.settle_due_ms(), None, "then nothing is kept");
}

#[tokio::test]
async fn two_updates_in_quick_succession_are_restated_in_their_latest_version() {
    let mut s = setup().await;
    s.step("update", update("t1", 2)).await;
    s.time.advance(10);
    // t2 is sent once only: not restated.
    s.step("update", update("t2", 7)).await;
    s.time.advance(10);
    s.step("update", update("t1", 3)).await;
    s.time.advance(QUIET_MS);
    let (sets, deletes) = s.restated().await;
    assert_eq!(sets, vec![("t1".to_string(), json!(3))]);
    // Also deleted in the same frame: the client replaces its copy, so a
    // live query left behind its store sees the change.
    assert_eq!(deletes, vec!["t1".to_string()]);
}

#[tokio::test]
async fn sends_further_apart_than_the_window_are_left_alone() {
    let mut s = setup().await;
    s.step("update", update("t1", 2)).await;
    s.time.advance(WINDOW_MS);
    s.step("update", update("t1", 3)).await;
    s.time.advance(WINDOW_MS);
    assert_eq!(s.conn.settle().await.expect("settle"), None);
    assert_eq!(s.conn.settle_due_ms(), None);
}

impl Setup {
    /// The client's own update of `id` over the socket; returns the
    /// `CHANGES_ACK`.
    async fn own_update(&mut self, id: &str, n: i64) -> Value {
        let changes = json!({
            "json": {"todos": {"sets": [[id, {"n": n}]], "deletes": []}},
            "meta": {"values": {"todos.sets": ["map"], "todos.deletes": ["set"]}, "v": 1}
        });
        let out = self
            .conn
            .handle_text(&json!({"type": "CHANGES", "payload": {"changes": changes}}).to_string())
            .await;
        let [ferry_triplit::sync::Outbound::Text(ack)] = out.as_slice() else {
            panic!("one CHANGES_ACK expected: {out:?}")
        };
        let ack: Value = serde_json::from_str(ack).unwrap();
        assert_eq!(ack["type"], "CHANGES_ACK", "{ack}");
        ack
    }

    /// Restates (the connection is quiet) and returns the `todos` sets of
    /// the frame as `(id, n)` and its deletes.
    async fn restated(&mut self) -> (Vec<(String, Value)>, Vec<String>) {
        let frame = self
            .conn
            .settle()
            .await
            .expect("settle")
            .expect("a restating frame");
        let v: Value = serde_json::from_str(&frame).unwrap();
        let changes = decode_changes(&v["payload"]["changes"]).unwrap();
        let (_, c) = changes
            .collections
            .iter()
            .find(|(n, _)| n == "todos")
            .expect("todos in the frame");
        let sets = c
            .sets
            .iter()
            .map(|(id, e)| (id.clone(), e["n"].clone()))
            .collect();
        (sets, c.deletes.clone())
    }

    /// Notes every commit up to the next one and flushes.
    async fn deliver(&mut self) -> Option<String> {
        let c = self.next_commit().await;
        self.conn.note_commit(&c);
        while let Ok(c) = self.commits.try_recv() {
            self.conn.note_commit(&c);
        }
        self.conn.flush().await.expect("flush")
    }
}

#[tokio::test]
async fn a_write_acknowledged_right_after_a_frame_with_its_entity_is_restated() {
    let mut s = setup().await;
    s.step("update", update("t1", 2)).await;
    s.time.advance(WINDOW_MS - 100);
    // The client wrote t1 while that frame was on its way: the ack and the
    // frame may be applied concurrently, and the older frame may win. (The
    // echo goes out after the window, so only the ack makes t1 a suspect.)
    s.own_update("t1", 5).await;
    s.time.advance(200);
    s.deliver().await;
    s.time.advance(QUIET_MS);
    let (sets, deletes) = s.restated().await;
    assert_eq!(sets, vec![("t1".to_string(), json!(5))]);
    assert_eq!(deletes, vec!["t1".to_string()]);
}

#[tokio::test]
async fn only_frames_another_commit_touched_race_an_ack() {
    let mut s = setup().await;
    // The echo of the client's own write: applied after the ack or not,
    // the client ends with the same entity.
    s.own_update("t1", 3).await;
    assert_eq!(
        todos(&s.deliver().await.expect("the echo")),
        (vec!["t1".into()], vec![])
    );
    s.time.advance(QUIET_MS);
    assert_eq!(s.conn.settle().await.expect("settle"), None);
    s.time.advance(WINDOW_MS);
    assert_eq!(s.conn.settle().await.expect("settle"), None);
    // Another client writes t2 right after this client's write was acked:
    // the frame carries a version the ack would overwrite if it won.
    s.own_update("t2", 4).await;
    s.write("update", update("t2", 9)).await;
    for _ in 0..2 {
        let c = s.next_commit().await;
        s.conn.note_commit(&c);
    }
    let frame = s.conn.flush().await.expect("flush").expect("a frame");
    assert_eq!(todos(&frame), (vec!["t2".into()], vec![]));
    s.time.advance(QUIET_MS);
    let (sets, deletes) = s.restated().await;
    assert_eq!(sets, vec![("t2".to_string(), json!(9))]);
    assert_eq!(deletes, vec!["t2".to_string()]);
}
