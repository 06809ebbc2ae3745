//! A no-logic Triplit-shaped WebSocket server: the physical limit of this
//! machine for the benchmark's traffic. It answers READY at once, one empty
//! ENTITY_DATA per CONNECT_QUERY, CHANGES_ACK per CHANGES, PONG per PING,
//! and broadcasts one ENTITY_DATA per CHANGES (serialized once) to every
//! socket that has a query. No storage, no permissions, no query work.
//! `GET /healthcheck` answers 200; any other HTTP request gets
//! `{"successful":true}`.
//!
//! Usage: `loadgen-echo serve --host 127.0.0.1 --port P` (the `serve`
//! word and unknown flags are accepted, to share the harness's contract).

use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

fn arg(name: &str, default: &str) -> String {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn main() -> std::io::Result<()> {
    let host = arg("--host", "127.0.0.1");
    let port = arg("--port", "6543");
    let threads: usize = arg("--threads", "0").parse().unwrap_or(0);
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        b.worker_threads(threads);
    }
    b.enable_all().build()?.block_on(async move {
        let listener = TcpListener::bind(format!("{host}:{port}")).await?;
        println!("listening on {host}:{port}");
        let (tx, _) = broadcast::channel::<Utf8Bytes>(16 * 1024);
        let tx = Arc::new(tx);
        let ids = Arc::new(AtomicU64::new(0));
        loop {
            let (sock, _) = listener.accept().await?;
            let _ = sock.set_nodelay(true);
            let tx = tx.clone();
            let id = ids.fetch_add(1, Relaxed);
            tokio::spawn(async move {
                let _ = handle(sock, tx, id).await;
            });
        }
    })
}

async fn handle(
    sock: TcpStream,
    tx: Arc<broadcast::Sender<Utf8Bytes>>,
    id: u64,
) -> anyhow::Result<()> {
    let mut head = [0u8; 16];
    let mut n = 0;
    for _ in 0..200 {
        n = sock.peek(&mut head).await?;
        if n >= 16 || n == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if n == 0 {
        return Ok(());
    }
    let is_upgrade = head.starts_with(b"GET / ") || head.starts_with(b"GET /?");
    if !is_upgrade {
        return plain_http(sock).await;
    }
    let cfg = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let mut ws = tokio_tungstenite::accept_async_with_config(sock, Some(cfg)).await?;
    ws.send(Message::text(format!(
        r#"{{"type":"READY","payload":{{"clientId":"echo-{id}"}}}}"#
    )))
    .await?;
    let mut rx: Option<broadcast::Receiver<Utf8Bytes>> = None;
    loop {
        tokio::select! {
            m = ws.next() => {
                let Some(Ok(m)) = m else { return Ok(()) };
                let Message::Text(t) = m else {
                    if let Message::Close(_) = m { return Ok(()) }
                    continue
                };
                let Ok(v) = serde_json::from_str::<Frame>(t.as_str()) else { continue };
                match v.ty.as_str() {
                    "CONNECT_QUERY" => {
                        let qid = v.payload.as_ref().and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok())
                            .and_then(|p| p["id"].as_str().map(String::from)).unwrap_or_default();
                        ws.send(Message::text(format!(
                            r#"{{"type":"ENTITY_DATA","payload":{{"changes":{{"json":{{"todos":{{"sets":[],"deletes":[]}}}},"meta":{{"values":{{"todos.sets":["map"],"todos.deletes":["set"]}},"v":1}}}},"timestamp":[{},0,"server"],"forQueries":[{}]}}}}"#,
                            now_ms(), serde_json::Value::String(qid)))).await?;
                        if rx.is_none() { rx = Some(tx.subscribe()); }
                    }
                    "CHANGES" => {
                        let ts = now_ms();
                        ws.send(Message::text(format!(r#"{{"type":"CHANGES_ACK","payload":{{"timestamp":[{ts},0,"server"]}}}}"#))).await?;
                        let changes = v.payload.as_ref()
                            .and_then(|p| serde_json::from_str::<ChangesPayload>(p.get()).ok())
                            .map(|c| c.changes.get().to_string());
                        if let Some(c) = changes {
                            let frame = format!(r#"{{"type":"ENTITY_DATA","payload":{{"changes":{c},"timestamp":[{ts},0,"server"],"forQueries":[]}}}}"#);
                            let _ = tx.send(Utf8Bytes::from(frame));
                        }
                    }
                    "PING" => {
                        ws.send(Message::text(format!(r#"{{"type":"PONG","payload":{{"serverTimestamp":{}}}}}"#, now_ms()))).await?;
                    }
                    _ => {}
                }
            }
            b = async { rx.as_mut().unwrap().recv().await }, if rx.is_some() => {
                match b {
                    Ok(frame) => ws.send(Message::Text(frame)).await?,
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                }
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    ty: String,
    #[serde(borrow)]
    payload: Option<&'a serde_json::value::RawValue>,
}

#[derive(serde::Deserialize)]
struct ChangesPayload<'a> {
    #[serde(borrow)]
    changes: &'a serde_json::value::RawValue,
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

async fn plain_http(mut sock: TcpStream) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < len {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    let body = if head.starts_with("get /healthcheck") {
        "OK"
    } else {
        r#"{"successful":true}"#
    };
    sock.write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await?;
    sock.shutdown().await?;
    Ok(())
}
