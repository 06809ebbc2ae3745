//! Crash safety of the real binary: SIGKILL during a stream of
//! acknowledged writes loses none of them, and timestamps never regress
//! across the restart.

mod common;

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use common::{free_port, request, start};
use ferry_core::Hlc;
use ferry_store::{KeyRange, StoreError, StoreExt, load_clock_floor};

/// Reads the clock floor and the highest entity timestamp from the file.
fn stamps(db: &Path) -> (Hlc, Hlc) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = ferry_store_sqlite::SqliteStore::open(db).await.unwrap();
        let out = store
            .read(|txn| {
                let floor = load_clock_floor(txn)?;
                let mut max = Hlc::ZERO;
                // Entity timestamps live under ("triplit", "t", …).
                let prefix = ferry_store::key::KeyBuf::new()
                    .str("triplit")
                    .str("t")
                    .finish();
                txn.scan(&KeyRange::prefix(&prefix), false, &mut |_, v| {
                    if let Some(t) = Hlc::from_bytes(v) {
                        max = max.max(t);
                    }
                    ControlFlow::Continue(())
                })?;
                Ok::<_, StoreError>((floor, max))
            })
            .await
            .unwrap();
        ferry_store::Store::close(&store).await.unwrap();
        out
    })
}

#[test]
fn sigkill_loses_no_acknowledged_write_and_the_clock_never_regresses() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ferry.db");
    let port = free_port();
    let mut server = start(&db, port);

    // Writers stream inserts; the server is killed while they run.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let acked = acked.clone();
        writers.push(std::thread::spawn(move || {
            for i in 0.. {
                let id = format!("w{w}-{i:05}");
                let body =
                    format!(r#"{{"collectionName":"log","entity":{{"id":"{id}","n":{i}}}}}"#);
                match request(port, "POST", "/insert", &body) {
                    Ok((200, _)) => acked.lock().unwrap().push(id),
                    Ok((status, body)) => panic!("insert refused: {status} {body}"),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    while acked.lock().unwrap().len() < 300 {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300);

    let (floor, max) = stamps(&db);
    assert!(
        floor >= max,
        "clock floor {floor} below an entity timestamp {max}"
    );

    // Every acknowledged write is there after a restart.
    let mut server = start(&db, port);
    let (status, body) = request(
        port,
        "POST",
        "/fetch",
        r#"{"query":{"collectionName":"log"}}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let rows: serde_json::Value = serde_json::from_str(&body).unwrap();
    let stored: std::collections::HashSet<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let missing: Vec<_> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");

    // A write after the restart is stamped above everything before it.
    let (status, _) = request(
        port,
        "POST",
        "/insert",
        r#"{"collectionName":"log","entity":{"id":"after"}}"#,
    )
    .unwrap();
    assert_eq!(status, 200);
    server.kill().unwrap();
    server.wait().unwrap();
    let (floor_after, max_after) = stamps(&db);
    assert!(
        max_after > floor,
        "new write stamped {max_after}, not above the old floor {floor}"
    );
    assert!(floor_after >= max_after);
}
