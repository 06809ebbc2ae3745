//! Helpers shared by the integration tests (`mod common;` in each file;
//! not every file uses every helper).
#![allow(dead_code)]

use std::sync::Arc;

use ferry_core::{ManualTime, SeededRandom};
use ferry_store::MemoryStore;
use ferry_triplit::db::TriplitDb;
use ferry_triplit::http::{Body, Input, handle};
use ferry_triplit::session::Session;
use serde_json::Value;

/// A database on `store` with its change-feed follower running.
pub async fn open_following(
    store: Arc<MemoryStore>,
    time: Arc<ManualTime>,
    seed: u64,
) -> Arc<TriplitDb> {
    let db = Arc::new(
        TriplitDb::open(store, time, Arc::new(SeededRandom::new(seed)))
            .await
            .expect("open"),
    );
    db.start_feed();
    // Let the follower start: it follows the feed from where it is when it
    // first runs.
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    db
}

/// A reply body as JSON (text as a JSON string, empty as `null`).
pub fn json_body(b: Body) -> Value {
    match b {
        Body::Json(v) => v,
        Body::JsonBytes(b) => serde_json::from_slice(&b).expect("the body is JSON"),
        Body::Text(t) => Value::String(t),
        Body::Empty => Value::Null,
    }
}

/// Calls an HTTP route as the service, expecting 200; returns the body.
pub async fn call(db: &TriplitDb, route: &str, input: Value) -> Value {
    let reply = handle(db, &Session::service(), route, Input::Json(input), false).await;
    assert_eq!(reply.status, 200, "{route}");
    json_body(reply.body)
}

/// A session with `sub` as its only claim (the `user` role of schemas
/// matching `{sub: '$userId'}`).
pub fn user(sub: &str) -> Session {
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), Value::String(sub.into()));
    Session {
        claims,
        ..Session::default()
    }
}
