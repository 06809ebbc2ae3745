//! Crash safety of the real binary: SIGKILL during a stream of
//! acknowledged writes loses none of them, and timestamps never regress
//! across the restart.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_core::Hlc;
use ferry_store::{KeyRange, StoreError, StoreExt, load_clock_floor};

/// The default dev service token (secret `jwt-key-for-development-only`).
const SERVICE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ4LXRyaXBsaXQtdG9rZW4tdHlwZSI6InNlY3JldCIsIngtdHJpcGxpdC1wcm9qZWN0LWlkIjoibG9jYWwtcHJvamVjdC1pZCJ9.8Z76XXPc9esdlZb2b7NDC7IVajNXKc4eVcPsO7Ve0ug";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(db: &Path, port: u16) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--database",
        ])
        .arg(db)
        .env("JWT_SECRET", "jwt-key-for-development-only")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start ferry");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if request(port, "GET", "/healthcheck", "").is_ok_and(|(s, _)| s == 200) {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("ferry did not become healthy");
}

/// A minimal HTTP/1.1 client: one request per connection.
fn request(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SERVICE}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

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
