//! Schema changes reaching open sync sessions: the `_metadata/_schema`
//! entity, live queries prepared again with the new schema (permissions
//! and roles), rejected queries, sessions admitted by a schema hash, and a
//! change made on another node sharing the store.

use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{call, user};
use ferry_core::ManualTime;
use ferry_store::MemoryStore;
use ferry_triplit::db::{Commit, TriplitDb};
use ferry_triplit::http::{Input, handle};
use ferry_triplit::session::Session;
use ferry_triplit::superjson::decode_changes;
use ferry_triplit::sync::{Outbound, SharedResults, SyncConnection};
use serde_json::{Value, json};
use tokio::sync::broadcast;

async fn open(store: Arc<MemoryStore>) -> Arc<TriplitDb> {
    common::open_following(store, Arc::new(ManualTime::new(1_700_000_000_000)), 7).await
}

fn schema(read: Value, extra: Value, roles: Value) -> Value {
    let mut props = json!({
        "id": {"type": "string", "config": {"nullable": false, "default": {"func": "nanoid", "args": null}}},
        "text": {"type": "string", "config": {}},
        "ownerId": {"type": "string", "config": {}},
    });
    if let (Value::Object(p), Value::Object(e)) = (&mut props, extra) {
        p.extend(e);
    }
    json!({
        "roles": roles,
        "collections": {"todos": {
            "schema": {"type": "record", "config": {}, "properties": props},
            "permissions": {"user": {"read": {"filter": read}, "insert": {"filter": [true]}}}
        }}
    })
}

fn user_roles() -> Value {
    json!({"user": {"match": {"sub": "$userId"}}})
}

fn open_read() -> Value {
    schema(json!([true]), json!({}), user_roles())
}

fn owner_read() -> Value {
    schema(
        json!([["ownerId", "=", "$role.userId"]]),
        json!({}),
        user_roles(),
    )
}

async fn push_schema(db: &TriplitDb, schema: Value) -> Value {
    let change = call(db, "override-schema", json!({"schema": schema})).await;
    assert_eq!(change["code"], "SUCCESS", "{change}");
    change
}

async fn insert(db: &TriplitDb, id: &str, owner: &str) {
    call(
        db,
        "insert",
        json!({"collectionName": "todos", "entity": {"id": id, "text": id, "ownerId": owner}}),
    )
    .await;
}

/// A connection plus the commit stream it follows, driven as `ws.rs` does.
struct Client {
    conn: SyncConnection,
    commits: broadcast::Receiver<Arc<Commit>>,
}

impl Client {
    fn new(db: &Arc<TriplitDb>, session: Session) -> Self {
        let commits = db.subscribe_commits();
        let conn = SyncConnection::new(
            db.clone(),
            session,
            "c1".into(),
            Arc::new(SharedResults::default()),
        );
        Self { conn, commits }
    }

    async fn send(&mut self, msg: Value) -> Vec<Value> {
        texts(self.conn.handle_text(&msg.to_string()).await)
    }

    async fn connect(&mut self, id: &str, params: Value) -> Value {
        let out = self
            .send(json!({"type": "CONNECT_QUERY", "payload": {"id": id, "params": params}}))
            .await;
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0]["type"], "ENTITY_DATA", "{out:?}");
        out[0].clone()
    }

    /// Receives every commit broadcast so far (waiting for at least one),
    /// then flushes; returns the frames the session sent.
    async fn pump(&mut self) -> Vec<Outbound> {
        let first = tokio::time::timeout(Duration::from_secs(10), self.commits.recv())
            .await
            .expect("a commit")
            .expect("commit stream");
        self.conn.note_commit(&first);
        while let Ok(c) = self.commits.try_recv() {
            self.conn.note_commit(&c);
        }
        let mut out = self.conn.take_outbound();
        if let Some(data) = self.conn.flush().await.expect("flush") {
            out.push(Outbound::Text(data));
        }
        out.extend(self.conn.take_outbound());
        out
    }
}

fn texts(out: Vec<Outbound>) -> Vec<Value> {
    out.into_iter()
        .map(|o| match o {
            Outbound::Text(t) => serde_json::from_str(&t).expect("JSON frame"),
            Outbound::Close { message, .. } => serde_json::from_str(&message).expect("JSON"),
        })
        .collect()
}

/// `(sets, deletes)` ids of `collection` in an `ENTITY_DATA`.
fn ids(frame: &Value, collection: &str) -> (Vec<String>, Vec<String>) {
    let changes = decode_changes(&frame["payload"]["changes"]).expect("changes");
    let Some((_, c)) = changes.collections.iter().find(|(n, _)| n == collection) else {
        return (vec![], vec![]);
    };
    let mut sets: Vec<String> = c.sets.iter().map(|(i, _)| i.clone()).collect();
    let mut deletes = c.deletes.clone();
    sets.sort();
    deletes.sort();
    (sets, deletes)
}

#[tokio::test]
async fn the_schema_is_the_metadata_schema_entity_and_follows_changes() {
    let db = open(Arc::new(MemoryStore::new())).await;
    push_schema(&db, open_read()).await;
    let rows = call(
        &db,
        "fetch",
        json!({"query": {"collectionName": "_metadata"}}),
    )
    .await;
    let stored = call(&db, "schema", json!({})).await["schema"].clone();
    let mut want = stored.as_object().unwrap().clone();
    want.insert("id".into(), json!("_schema"));
    assert_eq!(rows, json!([want]));

    // A user subscribes as a syncSchema client does (a filter on `id`,
    // which upstream rejects on a server with a schema).
    let mut c = Client::new(&db, user("alice"));
    let first = c
        .connect(
            "meta",
            json!({"collectionName": "_metadata", "where": [["id", "=", "_schema"]]}),
        )
        .await;
    assert_eq!(
        ids(&first, "_metadata"),
        (vec!["_schema".into()], vec!["_schema".into()])
    );

    // Removing an attribute: the new entity replaces the old one.
    push_schema(
        &db,
        schema(
            json!([true]),
            json!({"note": {"type": "string", "config": {"optional": true}}}),
            user_roles(),
        ),
    )
    .await;
    let frames = texts(c.pump().await);
    assert_eq!(frames.len(), 1, "{frames:?}");
    let changes = decode_changes(&frames[0]["payload"]["changes"]).unwrap();
    let (_, meta) = changes
        .collections
        .iter()
        .find(|(n, _)| n == "_metadata")
        .unwrap();
    assert_eq!(meta.deletes, vec!["_schema".to_string()]);
    let doc = &meta.sets[0].1;
    assert!(doc["collections"]["todos"]["schema"]["properties"]["note"].is_object());
}

#[tokio::test]
async fn a_tightened_read_permission_evicts_from_open_queries() {
    let db = open(Arc::new(MemoryStore::new())).await;
    push_schema(&db, open_read()).await;
    insert(&db, "a1", "alice").await;
    insert(&db, "b1", "bob").await;
    let mut c = Client::new(&db, user("alice"));
    let first = c.connect("q", json!({"collectionName": "todos"})).await;
    assert_eq!(ids(&first, "todos").0, vec!["a1", "b1"]);

    push_schema(&db, owner_read()).await;
    let frames = texts(c.pump().await);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(ids(&frames[0], "todos"), (vec![], vec!["b1".into()]));

    // Bob's new row is not delivered; Alice's is.
    insert(&db, "b2", "bob").await;
    insert(&db, "a2", "alice").await;
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|f: &Value| ids(f, "todos").0.contains(&"a2".to_string()))
    {
        seen.extend(texts(c.pump().await));
    }
    for f in &seen {
        assert!(!ids(f, "todos").0.contains(&"b2".to_string()), "{f}");
    }

    // And loosening it again sends Bob's rows.
    push_schema(&db, open_read()).await;
    let frames = texts(c.pump().await);
    assert_eq!(ids(&frames[0], "todos").0, vec!["b1", "b2"]);
}

#[tokio::test]
async fn roles_follow_the_schema() {
    let db = open(Arc::new(MemoryStore::new())).await;
    push_schema(&db, open_read()).await;
    insert(&db, "a1", "alice").await;
    let mut c = Client::new(&db, user("alice"));
    c.connect("q", json!({"collectionName": "todos"})).await;
    // The role now needs a claim the token lacks: no role, no rows.
    let roles = json!({"user": {"match": {"sub": "$userId", "team": "core"}}});
    push_schema(&db, schema(json!([true]), json!({}), roles)).await;
    let frames = texts(c.pump().await);
    assert_eq!(ids(&frames[0], "todos"), (vec![], vec!["a1".into()]));
}

#[tokio::test]
async fn a_query_the_new_schema_rejects_gets_a_query_sync_error() {
    let db = open(Arc::new(MemoryStore::new())).await;
    let note = json!({"note": {"type": "string", "config": {"optional": true}}});
    push_schema(&db, schema(json!([true]), note, user_roles())).await;
    let mut c = Client::new(&db, user("alice"));
    c.connect(
        "bynote",
        json!({"collectionName": "todos", "where": [["note", "=", "x"]]}),
    )
    .await;
    c.connect("all", json!({"collectionName": "todos"})).await;
    assert_eq!(c.conn.live_queries(), 2);
    push_schema(&db, open_read()).await;
    let frames = texts(c.pump().await);
    let errors: Vec<&Value> = frames.iter().filter(|f| f["type"] == "ERROR").collect();
    assert_eq!(errors.len(), 1, "{frames:?}");
    assert_eq!(errors[0]["payload"]["error"]["name"], "QuerySyncError");
    assert_eq!(errors[0]["payload"]["metadata"]["queryKey"], "bynote");
    assert_eq!(
        errors[0]["payload"]["metadata"]["innerError"]["name"],
        "InvalidFilterError"
    );
    assert_eq!(c.conn.live_queries(), 1);
}

fn is_retry_close(out: &[Outbound]) -> bool {
    out.iter().any(|o| {
        matches!(o, Outbound::Close { code: 1012, reason, .. }
            if reason == r#"{"type":"SCHEMA_CHANGED","retry":true}"#)
    })
}

#[tokio::test]
async fn hash_sessions_redo_the_handshake_after_an_incompatible_change_only() {
    let db = open(Arc::new(MemoryStore::new())).await;
    push_schema(&db, open_read()).await;
    let mut c = Client::new(&db, Session::service());
    let start = texts(c.conn.start(Some("4242")));
    assert_eq!(start[0]["type"], "SCHEMA_REQUEST");
    let ready = c
        .send(json!({"type": "SCHEMA_RESPONSE", "payload": {"schema": open_read()}}))
        .await;
    assert_eq!(ready[0]["type"], "READY");

    // Compatible (a new optional attribute): the session stays.
    let optional = json!({"note": {"type": "string", "config": {"optional": true}}});
    let change = push_schema(&db, schema(json!([true]), optional.clone(), user_roles())).await;
    assert_eq!(change["issues"], json!([]));
    assert!(!is_retry_close(&c.pump().await));

    // Incompatible (a new required attribute): closed with retry.
    let mut required = optional;
    required["due"] = json!({"type": "string", "config": {}});
    let change = push_schema(&db, schema(json!([true]), required, user_roles())).await;
    assert!(!change["issues"].as_array().unwrap().is_empty());
    let out = c.pump().await;
    assert!(is_retry_close(&out), "{out:?}");

    // A session without a hash is never closed for a schema change.
    let mut plain = Client::new(&db, Session::service());
    plain.conn.start(None);
    push_schema(&db, open_read()).await;
    assert!(!is_retry_close(&plain.pump().await));
}

#[tokio::test]
async fn a_schema_pushed_on_another_node_reaches_this_one() {
    let store = Arc::new(MemoryStore::new());
    let a = open(store.clone()).await;
    let b = open(store).await;
    push_schema(&a, open_read()).await;
    insert(&a, "a1", "alice").await;
    insert(&a, "b1", "bob").await;
    let mut c = Client::new(&b, user("alice"));
    tokio::time::timeout(Duration::from_secs(10), async {
        while b.schema().is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("node b sees the schema");
    let generation = b.schema_generation();
    let first = c.connect("q", json!({"collectionName": "todos"})).await;
    // Node b may not have seen the inserts yet; wait until it has.
    let mut have = ids(&first, "todos").0;
    while have.len() < 2 {
        for f in texts(c.pump().await) {
            have.extend(ids(&f, "todos").0);
        }
    }
    push_schema(&a, owner_read()).await;
    let mut evicted = Vec::new();
    while evicted.is_empty() {
        for f in texts(c.pump().await) {
            evicted.extend(ids(&f, "todos").1);
        }
    }
    assert_eq!(evicted, vec!["b1"]);
    assert!(b.schema_generation() > generation);
}

#[tokio::test]
async fn the_schema_entity_is_written_only_through_override_schema() {
    let db = open(Arc::new(MemoryStore::new())).await;
    push_schema(&db, open_read()).await;
    let reply = handle(
        &db,
        &Session::service(),
        "insert",
        Input::Json(
            json!({"collectionName": "_metadata", "entity": {"id": "_schema", "collections": {}}}),
        ),
        false,
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        common::json_body(reply.body)["name"],
        "WritePermissionError"
    );

    // Clearing data keeps it; a full clear removes it with the schema.
    insert(&db, "a1", "alice").await;
    call(&db, "clear", json!({})).await;
    let rows = call(
        &db,
        "fetch",
        json!({"query": {"collectionName": "_metadata"}}),
    )
    .await;
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert!(db.schema().is_some());
    call(&db, "clear", json!({"full": true})).await;
    let rows = call(
        &db,
        "fetch",
        json!({"query": {"collectionName": "_metadata"}}),
    )
    .await;
    assert_eq!(rows, json!([]));
    assert!(db.schema().is_none());
}

#[tokio::test]
async fn a_database_from_before_the_schema_entity_gets_it_at_open() {
    use ferry_store::StoreExt;
    let store = Arc::new(MemoryStore::new());
    // Only the schema key, as Ferry stored it before the entity existed.
    let stored = ferry_triplit::schema::Schema::from_json(&open_read()).expect("schema");
    let bytes = stored.to_json().to_string().into_bytes();
    store
        .write(move |txn| {
            txn.put(&ferry_triplit::keys::schema(), &bytes)?;
            Ok::<_, ferry_triplit::TriplitError>(())
        })
        .await
        .expect("write");
    let db = open(store).await;
    let rows = call(
        &db,
        "fetch",
        json!({"query": {"collectionName": "_metadata"}}),
    )
    .await;
    assert_eq!(rows[0]["id"], "_schema");
    assert_eq!(rows[0]["collections"], stored.to_json()["collections"]);
}
