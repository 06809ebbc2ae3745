//! The Triplit WebSocket: `GET /?token=…` upgrades to a sync session.
//!
//! One task per socket runs a `select!` over the client's frames, commits
//! from every source (fan-out), a coalescing flush timer, the token's
//! expiry, server shutdown and writing: frames to the client go through a
//! bounded outbox (`outbox.rs`, messages and bytes) that the same loop
//! writes whenever the socket takes more. A client that stops reading
//! fills its outbox and its connection is dropped (the client sees an
//! abnormal close and reconnects with its checkpoint), so it never slows
//! writers or other clients and its memory stays bounded.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use ferry_triplit::db::Commit;
use ferry_triplit::session::Session;
use ferry_triplit::sync::{CloseReason, Outbound, SyncConnection, close, close_retry};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::outbox::Outbox;
use crate::ws_socket::{self, Socket};

use crate::auth::verify_token;
use crate::metrics::{LIVE_QUERIES, OPEN_CONNECTIONS};
use crate::router::AppState;

/// How long a finished session waits for its last frames to be written.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long commits are coalesced into one `ENTITY_DATA`.
const FLUSH_DELAY: Duration = Duration::from_millis(5);
/// How soon a flush waiting for commits in transit is tried again.
const FLUSH_RETRY: Duration = Duration::from_millis(1);

/// A message to a live connection from elsewhere (`/update-token`).
pub enum Control {
    /// A refreshed token: keep the session if the roles are unchanged.
    /// Boxed: every connection's channel allocates room for a block of
    /// messages up front, so the message is kept pointer-sized.
    UpdateToken(Box<(Session, oneshot::Sender<()>)>),
}

/// Live connections by client id.
#[derive(Default)]
pub struct Connections {
    by_client: Mutex<HashMap<String, mpsc::Sender<Control>>>,
}

impl Connections {
    /// Sends `control` to `client_id`; `false` when no such connection.
    pub async fn send(&self, client_id: &str, control: Control) -> bool {
        let tx = self.by_client.lock().get(client_id).cloned();
        match tx {
            Some(tx) => tx.send(control).await.is_ok(),
            None => false,
        }
    }
}

/// `GET /` with an upgrade.
pub fn upgrade(state: AppState, request: Request) -> Response {
    let params = ws_socket::query_params(&request);
    let max_message = state.config.max_body_bytes.max(64 << 20);
    ws_socket::upgrade(request, max_message, move |socket| {
        session(state, params, Box::new(socket))
    })
}

/// A close frame.
fn close_frame(code: u16, reason: String) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.into(),
        reason: reason.into(),
    }))
}

/// Whether a request asks for a WebSocket.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn send_close(socket: &mut Socket, out: Outbound) {
    if let Outbound::Close {
        message,
        code,
        reason,
    } = out
    {
        let _ = socket.send(Message::Text(message.into())).await;
        let _ = socket.send(close_frame(code, reason)).await;
    }
}

/// A session whose token was verified, registered with its control channel.
struct Admitted {
    conn: SyncConnection,
    client_id: String,
    control_rx: mpsc::Receiver<Control>,
    health: watch::Receiver<ferry_store::Health>,
    sink: SplitSink<Socket, Message>,
    stream: SplitStream<Socket>,
    outbox: Outbox,
}

/// Verifies the token and registers the connection; `None` once the close
/// that refused it is sent. Runs boxed, so what only admission needs
/// (the query parameters, the unsplit socket) is not part of the
/// session's long-lived task.
async fn admit(
    state: &AppState,
    params: HashMap<String, String>,
    mut socket: Box<Socket>,
) -> Option<Admitted> {
    // While the database is unreachable sessions are refused (and open ones
    // closed below) with a retryable close: the client keeps its outbox and
    // comes back with its checkpoint.
    let mut health = state.db.store().health();
    if *health.borrow_and_update() == ferry_store::Health::Unavailable {
        send_close(&mut socket, store_unavailable()).await;
        return None;
    }
    let token = params.get("token").cloned().unwrap_or_default();
    let session = match Box::pin(verify_token(&state.verifier, state.time.as_ref(), &token)).await {
        Ok(s) => s,
        Err(e) => {
            send_close(
                &mut socket,
                close(CloseReason::Unauthorized, Some(&e.message())),
            )
            .await;
            return None;
        }
    };
    if session
        .expires_at_ms
        .is_some_and(|exp| exp < state.time.now_ms())
    {
        send_close(
            &mut socket,
            close(CloseReason::Unauthorized, Some("Token expired")),
        )
        .await;
        return None;
    }
    let client_id = new_client_id(state);
    let mut conn = SyncConnection::new(
        state.db.clone(),
        session,
        client_id.clone(),
        state.shared_results.clone(),
    );
    let (control_tx, control_rx) = mpsc::channel(8);
    state
        .connections
        .by_client
        .lock()
        .insert(client_id.clone(), control_tx);
    ::metrics::gauge!(OPEN_CONNECTIONS, "protocol" => "triplit").increment(1.0);

    let (sink, stream) = (*socket).split();
    let mut outbox = Outbox::default();
    let _ = push_pending(
        conn.start(params.get("schema").map(String::as_str)),
        &mut outbox,
    );
    Some(Admitted {
        conn,
        client_id,
        control_rx,
        health,
        sink,
        stream,
        outbox,
    })
}

/// One socket's session. Written as a block rather than an `async fn`, whose
/// arguments the future would hold twice; admission runs boxed (`admit`),
/// so the task keeps only what the loop needs.
#[allow(clippy::manual_async_fn)]
fn session(
    state: AppState,
    params: HashMap<String, String>,
    socket: Box<Socket>,
) -> impl Future<Output = ()> + Send {
    async move {
        let Some(Admitted {
            mut conn,
            client_id,
            mut control_rx,
            mut health,
            mut sink,
            mut stream,
            mut outbox,
        }) = Box::pin(admit(&state, params, socket)).await
        else {
            return;
        };
        let mut stalled = false;

        // Commits are followed only while the session needs them (live
        // queries, or a schema-hash admission): a writer-only socket is not
        // woken by every commit of every other socket.
        let mut commits: Option<broadcast::Receiver<Arc<Commit>>> = None;
        let mut flush_at: Option<Instant> = None;
        let mut live = 0usize;
        let want = conn.follows_commits();
        follow_commits(&state, &mut conn, &mut commits, want);
        loop {
            let expiry = conn.session().expires_at_ms.map(|exp| {
                Instant::now() + Duration::from_millis(exp.saturating_sub(state.time.now_ms()))
            });
            let settle_at = conn.settle_due_ms().map(|due| {
                Instant::now() + Duration::from_millis(due.saturating_sub(state.db.time().now_ms()))
            });
            // One timer for the earliest of the three (ties: expiry first).
            let (next_timer, due) = [
                (expiry, Timer::Expiry),
                (flush_at, Timer::Flush),
                (settle_at, Timer::Settle),
            ]
            .into_iter()
            .filter_map(|(at, which)| Some((at?, which)))
            .min_by_key(|(at, _)| *at)
            .map_or((None, Timer::Flush), |(at, which)| (Some(at), which));
            tokio::select! {
                written = outbox.write(&mut sink), if outbox.has_work() => {
                    match written {
                        Ok(false) => {}
                        // A close went out, or the client is gone.
                        Ok(true) | Err(_) => break,
                    }
                }
                frame = stream.next() => {
                    let Some(Ok(frame)) = frame else { break };
                    match frame {
                        Message::Text(text) => {
                            if let Some(token) = update_token_payload(text.as_str()) {
                                // `UPDATE_TOKEN {token}` over the socket: the same
                                // rules as POST /update-token.
                                let outcome = match Box::pin(verify_token(&state.verifier, state.time.as_ref(), &token)).await {
                                    Err(e) => Some(close(CloseReason::Unauthorized, Some(&e.message()))),
                                    Ok(new) => {
                                        let schema = state.db.schema();
                                        if ferry_triplit::sync::roles::same_roles(schema.as_deref(), conn.session(), &new) {
                                            conn.replace_session(new);
                                            flush_at.get_or_insert(Instant::now());
                                            None
                                        } else {
                                            Some(close(CloseReason::RolesMismatch, Some("Roles for new token don't match the old token.")))
                                        }
                                    }
                                };
                                if let Some(Outbound::Close { message, code, reason }) = outcome {
                                    let _ = outbox.push(Message::Text(message.into()));
                                    let _ = outbox.push(close_frame(code, reason));
                                    break;
                                }
                                continue;
                            }
                            let mut ok = true;
                            // Before a frame that may connect a query: the query
                            // must not miss a commit made after its read.
                            if !ferry_triplit::sync::protocol::never_connects_query(text.as_str()) {
                                follow_commits(&state, &mut conn, &mut commits, true);
                            }
                            for out in Box::pin(conn.handle_text(text.as_str())).await {
                                ok &= match out {
                                    Outbound::Text(t) => outbox.push(Message::Text(t.into())),
                                    Outbound::Close { message, code, reason } => {
                                        let _ = outbox.push(Message::Text(message.into()));
                                        let _ = outbox.push(close_frame(code, reason));
                                        false
                                    }
                                };
                            }
                            if !ok {
                                break;
                            }
                        }
                        Message::Close(frame) => {
                            // Echo the client's code and reason (the client reads
                            // its close event from our frame).
                            let _ = outbox.push(Message::Close(frame));
                            break;
                        }
                        Message::Binary(_) => {
                            let e = ferry_triplit::TriplitError::malformed_payload("Messages payloads must be valid JSON.", Some("binary frames are not supported".into()));
                            let _ = outbox.push(Message::Text(ferry_triplit::sync::protocol::error(None, &e, None).into()));
                        }
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
                commit = next_commit(&mut commits), if commits.is_some() => {
                    match commit {
                        Ok(c) => {
                            if conn.note_commit(&c) && flush_at.is_none() {
                                flush_at = Some(Instant::now() + FLUSH_DELAY);
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            conn.mark_all_dirty();
                            flush_at.get_or_insert(Instant::now());
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
                _ = sleep_until_opt(next_timer), if next_timer.is_some() => {
                    match due {
                        Timer::Flush => {
                            flush_at = None;
                            match Box::pin(conn.flush()).await {
                                Ok(Some(data)) => {
                                    if !outbox.push(Message::Text(data.into())) {
                                        tracing::warn!(client = %client_id, "outbox full: disconnecting a stalled client");
                                        stalled = true;
                                        break;
                                    }
                                }
                                Ok(None) => {}
                                Err(e) => tracing::error!(client = %client_id, error = %e, "refreshing queries failed"),
                            }
                            if conn.flush_waiting() {
                                // Commits it must include are still on their way.
                                flush_at = Some(Instant::now() + FLUSH_RETRY);
                            }
                        }
                        Timer::Settle => {
                            // Restate what the client may have applied out of order.
                            match Box::pin(conn.settle()).await {
                                Ok(Some(data)) => {
                                    if !outbox.push(Message::Text(data.into())) {
                                        stalled = true;
                                        break;
                                    }
                                }
                                Ok(None) => {}
                                Err(e) => tracing::error!(client = %client_id, error = %e, "restating entities failed"),
                            }
                        }
                        Timer::Expiry => {
                            let Outbound::Close { message, code, reason } = close(CloseReason::TokenExpired, None) else { break };
                            // Upstream's TOKEN_EXPIRED message carries no `message`.
                            let _ = message;
                            let _ = outbox.push(Message::Text(CloseReason::TokenExpired.message(None).into()));
                            let _ = outbox.push(close_frame(code, reason));
                            break;
                        }
                    }
                }
                control = control_rx.recv() => {
                    match control {
                        Some(Control::UpdateToken(update)) => {
                            let (new, done) = *update;
                            let schema = state.db.schema();
                            if ferry_triplit::sync::roles::same_roles(schema.as_deref(), conn.session(), &new) {
                                conn.replace_session(new);
                                flush_at.get_or_insert(Instant::now());
                            } else {
                                let out = close(CloseReason::RolesMismatch, Some("Roles for new token don't match the old token."));
                                if let Outbound::Close { message, code, reason } = out {
                                    let _ = outbox.push(Message::Text(message.into()));
                                    let _ = outbox.push(close_frame(code, reason));
                                }
                                let _ = done.send(());
                                break;
                            }
                            let _ = done.send(());
                        }
                        None => break,
                    }
                }
                _ = ferry_store::wait_unavailable(&mut health) => {
                    let _ = push_pending(vec![store_unavailable()], &mut outbox);
                    break;
                }
                _ = state.shutdown.cancelled() => {
                    let _ = outbox.push(close_frame(1001, String::new()));
                    break;
                }
            }
            // Frames the session produced on its own (after a schema change).
            if !push_pending(conn.take_outbound(), &mut outbox) {
                break;
            }
            let want = conn.follows_commits();
            follow_commits(&state, &mut conn, &mut commits, want);
            let now_live = conn.live_queries();
            if now_live != live {
                ::metrics::gauge!(LIVE_QUERIES, "protocol" => "triplit")
                    .increment(now_live as f64 - live as f64);
                live = now_live;
            }
        }
        ::metrics::gauge!(LIVE_QUERIES, "protocol" => "triplit").decrement(live as f64);
        ::metrics::gauge!(OPEN_CONNECTIONS, "protocol" => "triplit").decrement(1.0);
        state.connections.by_client.lock().remove(&client_id);
        if !stalled {
            // The last frames (a close, say); a client that is not reading is
            // dropped instead (it sees the connection end and reconnects).
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, outbox.write(&mut sink)).await;
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, sink.close()).await;
        }
    }
}

/// The retryable close for a session while the store is unreachable.
fn store_unavailable() -> Outbound {
    close_retry(
        CloseReason::StoreUnavailable,
        Some("The database is unavailable; reconnecting."),
    )
}

/// Queues `outs`; `false` when one was a close or the outbox is full.
fn push_pending(outs: Vec<Outbound>, outbox: &mut Outbox) -> bool {
    for out in outs {
        match out {
            Outbound::Text(t) => {
                if !outbox.push(Message::Text(t.into())) {
                    return false;
                }
            }
            Outbound::Close {
                message,
                code,
                reason,
            } => {
                let _ = outbox.push(Message::Text(message.into()));
                let _ = outbox.push(close_frame(code, reason));
                return false;
            }
        }
    }
    true
}

/// The token of an `UPDATE_TOKEN` frame, if `text` is one.
fn update_token_payload(text: &str) -> Option<String> {
    if !text.contains("UPDATE_TOKEN") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    if v.get("type")?.as_str()? != "UPDATE_TOKEN" {
        return None;
    }
    Some(v.get("payload")?.get("token")?.as_str()?.to_string())
}

/// Starts (`want`) or stops following commits. A session that starts again
/// has not been told of the commits in between: it holds no live query
/// then, so it only needs to know that it saw the feed up to here, which
/// `mark_all_dirty` records once the new receiver exists.
fn follow_commits(
    state: &AppState,
    conn: &mut SyncConnection,
    commits: &mut Option<broadcast::Receiver<Arc<Commit>>>,
    want: bool,
) {
    match (want, commits.is_some()) {
        (true, false) => {
            *commits = Some(state.db.subscribe_commits());
            conn.mark_all_dirty();
        }
        (false, true) => *commits = None,
        _ => {}
    }
}

/// The next commit, when following them.
async fn next_commit(
    commits: &mut Option<broadcast::Receiver<Arc<Commit>>>,
) -> Result<Arc<Commit>, broadcast::error::RecvError> {
    match commits {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What the session's one timer is set for.
#[derive(Clone, Copy)]
enum Timer {
    /// The token expires: close.
    Expiry,
    /// Coalesced commits are due: refresh the live queries.
    Flush,
    /// Entities the client may have applied out of order are due a restatement.
    Settle,
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn new_client_id(state: &AppState) -> String {
    let mut b = [0u8; 16];
    state.rng.fill(&mut b);
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Shared handle type.
pub type SharedConnections = Arc<Connections>;
