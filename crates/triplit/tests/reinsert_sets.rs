//! An entity deleted and inserted again under the same id: the set items
//! of the deleted entity are written as removed (`false`) into the new one
//! (`db/ghosts.rs`), so a client that merges the new entity into the old
//! one's row clears them; reads never show them.

use std::sync::Arc;
use std::time::Duration;

mod common;

use ferry_core::ManualTime;
use ferry_store::MemoryStore;
use ferry_triplit::db::{Commit, Transaction, TriplitDb};
use ferry_triplit::session::Session;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

fn set() -> Value {
    json!({"type": "set", "items": {"type": "string", "config": {}}, "config": {}})
}

fn schema() -> Value {
    let id = json!({"type": "string", "config": {"nullable": false, "default": {"func": "nanoid", "args": null}}});
    json!({"collections": {
        "tagged": {"schema": {"type": "record", "config": {}, "properties": {
            "id": id,
            "tags": set(),
            "meta": {"type": "record", "config": {}, "properties": {"labels": set(), "n": {"type": "number", "config": {}}}},
        }}},
        "plain": {"schema": {"type": "record", "config": {}, "properties": {
            "id": id,
            "data": {"type": "json", "config": {}},
        }}},
    }})
}

struct Db {
    db: Arc<TriplitDb>,
    commits: broadcast::Receiver<Arc<Commit>>,
}

async fn open() -> Db {
    let db = common::open_following(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualTime::new(1_700_000_000_000)),
        3,
    )
    .await;
    let commits = db.subscribe_commits();
    let mut d = Db { db, commits };
    let change = d.call("override-schema", json!({"schema": schema()})).await;
    assert_eq!(change["code"], "SUCCESS", "{change}");
    d.next().await;
    d
}

impl Db {
    async fn call(&self, route: &str, input: Value) -> Value {
        common::call(&self.db, route, input).await
    }

    async fn next(&mut self) -> Arc<Commit> {
        tokio::time::timeout(Duration::from_secs(10), self.commits.recv())
            .await
            .expect("a commit")
            .expect("commit stream")
    }

    /// Writes and returns the post-state of the last entity the commit
    /// touched (`None`: deleted).
    async fn write(&mut self, route: &str, input: Value) -> Option<Value> {
        self.call(route, input).await;
        let commit = self.next().await;
        let (_, _, e) = commit.entities.last().expect("touched").clone();
        e.map(Value::Object)
    }

    async fn fetch(&self, collection: &str) -> Value {
        self.call("fetch", json!({"query": {"collectionName": collection}}))
            .await
    }
}

fn insert(collection: &str, entity: Value) -> Value {
    json!({"collectionName": collection, "entity": entity})
}

fn delete(collection: &str, id: &str) -> Value {
    json!({"collectionName": collection, "entityId": id})
}

#[tokio::test]
async fn a_reinserted_entity_carries_the_old_set_items_as_removed() {
    let mut d = open().await;
    let first = d
        .write(
            "insert",
            insert(
                "tagged",
                json!({"id": "a", "tags": ["red", "green"], "meta": {"labels": ["x"], "n": 1}}),
            ),
        )
        .await
        .expect("inserted");
    assert_eq!(first["tags"], json!({"red": true, "green": true}));
    assert_eq!(d.write("delete", delete("tagged", "a")).await, None);
    let again = d
        .write(
            "insert",
            insert(
                "tagged",
                json!({"id": "a", "tags": ["blue", "red"], "meta": {"labels": ["y"], "n": 2}}),
            ),
        )
        .await
        .expect("inserted");
    // `red` is set again and stays live; `green` and `x` are removed.
    assert_eq!(
        again["tags"],
        json!({"blue": true, "red": true, "green": false})
    );
    assert_eq!(again["meta"]["labels"], json!({"y": true, "x": false}));
    assert_eq!(again["meta"]["n"], json!(2));
    // Reads show the live items only.
    let rows = d.fetch("tagged").await;
    let row = &rows.as_array().expect("rows")[0];
    let mut tags: Vec<&str> = row["tags"]
        .as_array()
        .expect("a set serializes as an array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    tags.sort();
    assert_eq!(tags, ["blue", "red"]);
    assert_eq!(row["meta"]["labels"], json!(["y"]));

    // A third generation still removes the items of both earlier ones.
    d.write("delete", delete("tagged", "a")).await;
    let third = d
        .write(
            "insert",
            insert(
                "tagged",
                json!({"id": "a", "tags": [], "meta": {"labels": [], "n": 3}}),
            ),
        )
        .await
        .expect("inserted");
    assert_eq!(
        third["tags"],
        json!({"blue": false, "red": false, "green": false})
    );
    assert_eq!(third["meta"]["labels"], json!({"y": false, "x": false}));
}

#[tokio::test]
async fn only_a_reinsert_gets_removed_items_and_only_once() {
    let mut d = open().await;
    // A first insert of an id has nothing to carry.
    let fresh = d
        .write(
            "insert",
            insert(
                "tagged",
                json!({"id": "b", "tags": ["red"], "meta": {"labels": [], "n": 1}}),
            ),
        )
        .await
        .expect("inserted");
    assert_eq!(fresh["tags"], json!({"red": true}));
    // Inserting over an existing entity merges as before.
    let over = d
        .write(
            "insert",
            insert(
                "tagged",
                json!({"id": "b", "tags": ["blue"], "meta": {"labels": [], "n": 1}}),
            ),
        )
        .await
        .expect("inserted");
    assert_eq!(over["tags"], json!({"red": true, "blue": true}));
    // Delete and insert in one transaction (a client batch): the delete
    // remembers, the insert in the same transaction carries.
    let session = Session::service();
    let mut tx = Transaction::new();
    tx.delete("tagged", "b".into());
    let mut e = Map::new();
    e.insert("id".into(), json!("b"));
    e.insert("tags".into(), json!({"green": true}));
    e.insert("meta".into(), json!({"labels": {}, "n": 1}));
    tx.insert("tagged", "b".into(), e);
    d.db.commit(&session, tx).await.expect("commit");
    let commit = d.next().await;
    let (_, _, after) = commit.entities.last().expect("touched").clone();
    assert_eq!(
        after.expect("inserted")["tags"],
        json!({"green": true, "red": false, "blue": false})
    );
    // Collections without sets keep their entities as written.
    d.write(
        "insert",
        insert("plain", json!({"id": "p", "data": {"k": 1}})),
    )
    .await;
    d.write("delete", delete("plain", "p")).await;
    let plain = d
        .write(
            "insert",
            insert("plain", json!({"id": "p", "data": {"j": 2}})),
        )
        .await
        .expect("inserted");
    assert_eq!(plain["data"], json!({"j": 2}));
}
