//! The Triplit sync protocol as `@triplit/client` 1.0.50 speaks it (frames,
//! SuperJSON `DBChanges`), and the benchmark's schema, queries and entities.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Instant;

/// Microseconds since the generator started: every task shares this clock,
/// so a send stamp written by a writer thread can be compared with the
/// arrival time at any subscriber thread.
pub fn now_us() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// The collection the load runs on.
pub const COLLECTION: &str = "todos";

/// `createdAt` of written entities is `CREATED_BASE + seq`; seeded entities
/// are below it, so every new write enters the top of a `createdAt DESC` list.
pub const CREATED_BASE: u64 = 1_000_000_000;

/// The benchmark schema: `todos` (owner relation, read permission
/// "mine or shared", insert "mine"), `users` (with a `todos` relation) and
/// `items` (todos' fields, no relations or permissions: batched inserts).
pub fn schema() -> Value {
    let s = |optional: bool| json!({"type":"string","config": if optional { json!({"optional":true}) } else { json!({}) }});
    let id = json!({"type":"string","config":{"nullable":false,"default":{"func":"nanoid","args":null}}});
    let num = json!({"type":"number","config":{}});
    let mine = json!(["ownerId", "=", "$role.userId"]);
    json!({
        "roles": {"user": {"match": {"sub": "$userId"}}},
        "collections": {
            "todos": {
                "schema": {"type":"record","config":{},"properties":{
                    "id": id,
                    "text": s(false),
                    "ownerId": s(false),
                    "shared": {"type":"boolean","config":{"default":false}},
                    "done": {"type":"boolean","config":{"default":false}},
                    "createdAt": num,
                    "sentAt": num,
                    "seq": num
                }},
                "relationships": {
                    "owner": {"query":{"collectionName":"users","where":[["id","=","$ownerId"]]},"cardinality":"one"}
                },
                "permissions": {"user": {
                    "read": {"filter": [{"mod":"or","filters":[mine, ["shared","=",true]]}]},
                    "insert": {"filter": [mine]},
                    "update": {"filter": [mine]},
                    "postUpdate": {"filter": [mine]},
                    "delete": {"filter": [mine]}
                }}
            },
            "items": {
                "schema": {"type":"record","config":{},"properties":{
                    "id": id, "text": s(false), "ownerId": s(false),
                    "shared": {"type":"boolean","config":{"default":false}},
                    "done": {"type":"boolean","config":{"default":false}},
                    "createdAt": num, "sentAt": num, "seq": num
                }}
            },
            "users": {
                "schema": {"type":"record","config":{},"properties":{ "id": id, "name": s(false) }},
                "relationships": {
                    "todos": {"query":{"collectionName":"todos","where":[["ownerId","=","$id"]]},"cardinality":"many"}
                },
                "permissions": {"user": {"read": {"filter": [true]}}}
            }
        }
    })
}

/// The two kinds of subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryKind {
    /// The shared list: `todos where shared = true order createdAt DESC limit 50`.
    Shared,
    /// Per user: `todos order createdAt DESC limit 50`, narrowed by the
    /// read permission to the user's own and the shared todos.
    PerUser,
}

impl QueryKind {
    /// Subscriber `ix` alternates: even indices shared, odd per-user.
    pub fn of(ix: usize) -> Self {
        if ix.is_multiple_of(2) {
            QueryKind::Shared
        } else {
            QueryKind::PerUser
        }
    }

    /// The `CONNECT_QUERY` params (with a `traceId`, as the client sends).
    pub fn params(self, trace: u64) -> Value {
        match self {
            QueryKind::Shared => json!({
                "collectionName": COLLECTION,
                "where": [["shared", "=", true]],
                "order": [["createdAt", "DESC"]],
                "limit": 50,
                "traceId": trace.to_string()
            }),
            QueryKind::PerUser => json!({
                "collectionName": COLLECTION,
                "order": [["createdAt", "DESC"]],
                "limit": 50,
                "traceId": trace.to_string()
            }),
        }
    }

    /// The query id (the client uses a hash of the params; opaque to servers).
    pub fn query_id(self) -> &'static str {
        match self {
            QueryKind::Shared => "1001",
            QueryKind::PerUser => "2002",
        }
    }
}

/// The user id of subscriber `ix`.
pub fn user_of_subscriber(ix: usize) -> String {
    format!("u{ix}")
}

/// The user writer `k` writes as: the user of per-user subscriber `2k+1`,
/// so its private writes reach exactly that subscriber (when it exists).
pub fn user_of_writer(k: usize) -> String {
    user_of_subscriber(2 * k + 1)
}

/// One written entity as a SuperJSON `sets` entry `[id, entity]`.
pub fn entity_entry(seq: u64, owner: &str, shared: bool, sent_at_us: u64) -> String {
    format!(
        r#"["w{seq}",{{"id":"w{seq}","text":"load test todo {seq}: lorem ipsum dolor sit amet","ownerId":"{owner}","shared":{shared},"done":false,"createdAt":{created},"sentAt":{sent_at_us},"seq":{seq}}}]"#,
        created = CREATED_BASE + seq
    )
}

/// A `CHANGES` frame inserting the given `sets` entries into `todos`.
pub fn changes_frame(entries: &[String]) -> String {
    format!(
        r#"{{"type":"CHANGES","payload":{{"changes":{{"json":{{"todos":{{"sets":[{}],"deletes":[]}}}},"meta":{{"values":{{"todos.sets":["map"],"todos.deletes":["set"]}},"v":1}}}}}}}}"#,
        entries.join(",")
    )
}

/// A `CONNECT_QUERY` frame, optionally with a checkpoint `state`.
pub fn connect_query_frame(kind: QueryKind, trace: u64, state: Option<Value>) -> String {
    let mut payload = json!({"id": kind.query_id(), "params": kind.params(trace)});
    if let Some(s) = state {
        payload["state"] = s;
    }
    json!({"type": "CONNECT_QUERY", "payload": payload}).to_string()
}

/// A `PING` frame.
pub fn ping_frame() -> String {
    format!(
        r#"{{"type":"PING","payload":{{"clientTimestamp":{}}}}}"#,
        now_us() / 1000
    )
}

/// Seed entities for `/bulk-insert` (HTTP serialized form).
pub fn seed_todo(i: u64, owner: &str, shared: bool) -> Value {
    json!({
        "id": format!("s{i}"),
        "text": format!("seeded todo {i}: lorem ipsum dolor sit amet"),
        "ownerId": owner,
        "shared": shared,
        "done": i.is_multiple_of(2),
        "createdAt": i,
        "sentAt": 0,
        "seq": -1
    })
}

/// Any frame: its type and raw payload.
#[derive(Deserialize)]
pub struct Frame<'a> {
    /// `type`
    #[serde(rename = "type", borrow)]
    pub ty: Cow<'a, str>,
    /// `payload`, unparsed
    #[serde(borrow)]
    pub payload: Option<&'a RawValue>,
}

/// `ENTITY_DATA` payload, only the parts the generator reads.
#[derive(Deserialize)]
pub struct EntityData<'a> {
    /// SuperJSON changes
    #[serde(borrow)]
    pub changes: SjChanges<'a>,
    /// `[ms, n, "server"]`
    pub timestamp: Option<Value>,
    /// query ids
    #[serde(rename = "forQueries", default)]
    pub for_queries: Vec<Cow<'a, str>>,
}

/// `{json: {collection: {sets, deletes}}}`
#[derive(Deserialize)]
pub struct SjChanges<'a> {
    /// per collection
    #[serde(borrow, default)]
    pub json: std::collections::HashMap<Cow<'a, str>, CollChanges<'a>>,
}

/// One collection's changes.
#[derive(Deserialize)]
pub struct CollChanges<'a> {
    /// `[id, entity]` pairs
    #[serde(borrow, default)]
    pub sets: Vec<(Cow<'a, str>, Ent<'a>)>,
    /// deleted ids
    #[serde(borrow, default)]
    pub deletes: Vec<Cow<'a, str>>,
}

/// The fields of an entity the generator looks at.
#[derive(Deserialize)]
pub struct Ent<'a> {
    /// the write's sequence number (seeded entities: -1)
    pub seq: Option<f64>,
    /// the writer's send time, [`now_us`]
    #[serde(rename = "sentAt")]
    pub sent_at: Option<f64>,
    /// owner
    #[serde(rename = "ownerId", borrow)]
    pub owner_id: Option<Cow<'a, str>>,
    /// shared flag
    pub shared: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_json() {
        let f = changes_frame(&[entity_entry(7, "u1", true, 123)]);
        let v: Value = serde_json::from_str(&f).unwrap();
        assert_eq!(
            v["payload"]["changes"]["json"]["todos"]["sets"][0][1]["seq"],
            7
        );
        let e: Value =
            serde_json::from_str(&connect_query_frame(QueryKind::Shared, 1, None)).unwrap();
        assert_eq!(e["payload"]["params"]["limit"], 50);
    }

    #[test]
    fn parses_entity_data() {
        let s = r#"{"type":"ENTITY_DATA","payload":{"changes":{"json":{"todos":{"sets":[["w1",{"id":"w1","seq":1,"sentAt":5,"ownerId":"u1","shared":true,"x":{"y":[1]}}]],"deletes":["a"]}},"meta":{"values":{}}},"timestamp":[1,0,"server"],"forQueries":["1001"]}}"#;
        let f: Frame = serde_json::from_str(s).unwrap();
        assert_eq!(f.ty, "ENTITY_DATA");
        let d: EntityData = serde_json::from_str(f.payload.unwrap().get()).unwrap();
        let t = &d.changes.json["todos"];
        assert_eq!(t.sets[0].1.seq, Some(1.0));
        assert_eq!(t.deletes.len(), 1);
        assert_eq!(d.for_queries[0], "1001");
    }
}
