//! Attribute indexes built on first use, through the public surfaces: a
//! live query's permission filter, an `/fetch` include and a relational
//! write permission each build the index their scan would have used, and
//! results stay those of the scan before and after.

use std::sync::Arc;

mod common;

use common::{call, user};
use ferry_core::ManualTime;
use ferry_store::{MemoryStore, StoreExt};
use ferry_triplit::db::TriplitDb;
use ferry_triplit::http::{Input, handle};
use ferry_triplit::indexes::Registry;
use ferry_triplit::superjson::decode_changes;
use ferry_triplit::sync::{Outbound, SharedResults, SyncConnection};
use serde_json::{Value, json};

fn schema() -> Value {
    json!({
        "roles": {"user": {"match": {"sub": "$userId"}}},
        "collections": {
            "todos": {
                "schema": {"type": "record", "properties": {
                    "id": {"type": "string"},
                    "text": {"type": "string"},
                    "ownerId": {"type": "string"},
                    "shared": {"type": "boolean"}
                }},
                "permissions": {"user": {
                    "read": {"filter": [["ownerId", "=", "$role.userId"]]},
                    "insert": {"filter": [["ownerId", "=", "$role.userId"]]}
                }}
            },
            "users": {
                "schema": {"type": "record", "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"}
                }},
                "relationships": {"todos": {
                    "query": {"collectionName": "todos", "where": [["ownerId", "=", "$id"]]},
                    "cardinality": "many"
                }}
            }
        }
    })
}

async fn open() -> (Arc<MemoryStore>, Arc<TriplitDb>) {
    open_with(schema()).await
}

async fn open_with(schema: Value) -> (Arc<MemoryStore>, Arc<TriplitDb>) {
    let store = Arc::new(MemoryStore::new());
    let db = common::open_following(
        store.clone(),
        Arc::new(ManualTime::new(1_700_000_000_000)),
        3,
    )
    .await;
    let r = call(&db, "override-schema", json!({"schema": schema})).await;
    assert_eq!(r["code"], "SUCCESS", "{r}");
    let todos: Vec<Value> = (0..6)
        .map(|i| json!({"id": format!("t{i}"), "text": "x", "ownerId": format!("u{}", i % 3), "shared": i == 0}))
        .collect();
    let users: Vec<Value> = (0..3)
        .map(|i| json!({"id": format!("u{i}"), "name": "n"}))
        .collect();
    call(&db, "bulk-insert", json!({"todos": todos, "users": users})).await;
    (store, db)
}

async fn indexed(store: &MemoryStore, collection: &str) -> Vec<String> {
    let r = store.read(|txn| Registry::load(txn)).await.expect("read");
    r.paths(collection).to_vec()
}

/// Waits (yielding to the background build) until `collection` has
/// `want` indexed.
async fn built(store: &MemoryStore, collection: &str, want: &[&str]) {
    for _ in 0..1000 {
        if indexed(store, collection).await == want {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!(
        "indexes of {collection}: {:?}, wanted {want:?}",
        indexed(store, collection).await
    );
}

fn set_ids(out: &[Outbound]) -> Vec<String> {
    let mut ids = Vec::new();
    for o in out {
        let Outbound::Text(t) = o else { continue };
        let v: Value = serde_json::from_str(t).expect("JSON frame");
        if v["type"] != "ENTITY_DATA" {
            continue;
        }
        let changes = decode_changes(&v["payload"]["changes"]).expect("changes");
        for (_, c) in &changes.collections {
            ids.extend(c.sets.iter().map(|(i, _)| i.clone()));
        }
    }
    ids.sort();
    ids
}

/// A sync session of user `sub`.
fn session(db: &Arc<TriplitDb>, sub: &str) -> SyncConnection {
    SyncConnection::new(
        db.clone(),
        user(sub),
        sub.into(),
        Arc::new(SharedResults::default()),
    )
}

#[tokio::test]
async fn a_live_query_builds_the_index_of_its_permission_filter() {
    let (store, db) = open().await;
    assert!(indexed(&store, "todos").await.is_empty());
    let connect = json!({"type": "CONNECT_QUERY", "payload": {"id": "q",
        "params": {"collectionName": "todos"}}});
    let out = session(&db, "u1").handle_text(&connect.to_string()).await;
    assert_eq!(set_ids(&out), ["t1", "t4"]);
    built(&store, "todos", &["ownerId"]).await;
    // A second user's query now reads through the index: same rows.
    let out = session(&db, "u2").handle_text(&connect.to_string()).await;
    assert_eq!(set_ids(&out), ["t2", "t5"]);
}

/// "Mine or shared": both branches' indexes are built, and the union of
/// their candidates gives the scan's rows.
#[tokio::test]
async fn an_or_permission_builds_the_indexes_of_every_branch() {
    let mut s = schema();
    s["collections"]["todos"]["permissions"]["user"]["read"]["filter"] = json!([
        {"mod": "or", "filters": [["ownerId", "=", "$role.userId"], ["shared", "=", true]]}
    ]);
    let (store, db) = open_with(s).await;
    let connect = json!({"type": "CONNECT_QUERY", "payload": {"id": "q",
        "params": {"collectionName": "todos"}}});
    let out = session(&db, "u1").handle_text(&connect.to_string()).await;
    assert_eq!(set_ids(&out), ["t0", "t1", "t4"]);
    built(&store, "todos", &["ownerId", "shared"]).await;
    let out = session(&db, "u2").handle_text(&connect.to_string()).await;
    assert_eq!(set_ids(&out), ["t0", "t2", "t5"]);
}

#[tokio::test]
async fn an_include_builds_the_index_of_its_relation() {
    let (store, db) = open().await;
    let q = json!({"query": {"collectionName": "users", "include": {"todos": null}}});
    let before = call(&db, "fetch", q.clone()).await;
    built(&store, "todos", &["ownerId"]).await;
    let after = call(&db, "fetch", q).await;
    assert_eq!(before, after);
    let u1 = before
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == "u1"))
        .cloned()
        .unwrap_or_else(|| panic!("u1 in {before}"));
    let todos: Vec<&str> = u1["todos"]
        .as_array()
        .expect("todos")
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect();
    assert_eq!(todos, ["t1", "t4"]);
}

#[tokio::test]
async fn a_relational_write_permission_builds_the_index_of_its_subquery() {
    let store = Arc::new(MemoryStore::new());
    let db = common::open_following(
        store.clone(),
        Arc::new(ManualTime::new(1_700_000_000_000)),
        5,
    )
    .await;
    let schema = json!({
        "roles": {"user": {"match": {"sub": "$userId"}}},
        "collections": {
            "tasks": {
                "schema": {"type": "record", "properties": {
                    "id": {"type": "string"},
                    "projectId": {"type": "string"}
                }},
                "relationships": {"members": {
                    "query": {"collectionName": "members", "where": [["projectId", "=", "$projectId"]]},
                    "cardinality": "many"
                }},
                "permissions": {"user": {
                    "read": {"filter": [true]},
                    "insert": {"filter": [["members.userId", "=", "$role.userId"]]}
                }}
            },
            "members": {
                "schema": {"type": "record", "properties": {
                    "id": {"type": "string"},
                    "projectId": {"type": "string"},
                    "userId": {"type": "string"}
                }},
                "permissions": {"user": {"read": {"filter": [true]}}}
            }
        }
    });
    let r = call(&db, "override-schema", json!({"schema": schema})).await;
    assert_eq!(r["code"], "SUCCESS", "{r}");
    let members: Vec<Value> = (0..6)
        .map(|i| json!({"id": format!("m{i}"), "projectId": format!("p{}", i % 3), "userId": format!("u{i}")}))
        .collect();
    call(&db, "bulk-insert", json!({"members": members})).await;
    // `u1` inserting task `id` into `project`: the reply's status.
    let insert = |id: &'static str, project: &'static str| {
        let db = db.clone();
        async move {
            let body =
                json!({"collectionName": "tasks", "entity": {"id": id, "projectId": project}});
            handle(&db, &user("u1"), "insert", Input::Json(body), false)
                .await
                .status
        }
    };
    // u1 is a member of p1 only.
    assert_eq!(insert("a", "p1").await, 200);
    built(&store, "members", &["projectId"]).await;
    // Through the index: the same decisions.
    assert_eq!(insert("b", "p1").await, 200);
    assert_eq!(insert("c", "p2").await, 401);
    let tasks = call(&db, "fetch", json!({"query": {"collectionName": "tasks"}})).await;
    let ids: Vec<&str> = tasks
        .as_array()
        .expect("rows")
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["a", "b"]);
}
