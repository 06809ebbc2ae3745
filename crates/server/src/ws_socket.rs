//! The WebSocket transport under a sync session: the HTTP/1.1 upgrade
//! handshake and writes that keep each socket's buffers small.
//!
//! The upgrade is done here rather than by axum's extractor so the session
//! owns the tungstenite stream itself: a text message larger than
//! [`FRAGMENT`] is written as a fragmented message (a text frame and
//! continuation frames, which every WebSocket client reassembles; see
//! `outbox.rs`). The stream's write buffer keeps the capacity of the
//! largest frame it ever held, so writing whole messages would leave every
//! connection that once received a large `ENTITY_DATA` (a query's first
//! result) holding a buffer that size for as long as it lives.

use std::collections::HashMap;
use std::future::Future;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// A server-side socket.
pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Largest frame written: longer text messages are fragmented.
pub const FRAGMENT: usize = 1024;
/// Bytes the stream reads from the socket at a time (its read buffer
/// starts this large and grows only for a larger frame).
const READ_BUFFER: usize = 1024;

/// Answers a WebSocket upgrade request: `101 Switching Protocols`, then
/// `session` runs on the upgraded socket in its own task. A request that
/// is no valid WebSocket handshake gets `400`.
pub fn upgrade<F, Fut>(mut request: Request, max_message: usize, session: F) -> Response
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let key = match handshake_key(request.headers()) {
        Ok(k) => k,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return (StatusCode::UPGRADE_REQUIRED, "Connection is not upgradable").into_response();
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(max_message));
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        session(socket).await;
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    response
}

/// The `Sec-WebSocket-Key` of a valid version 13 handshake.
fn handshake_key(headers: &HeaderMap) -> Result<String, &'static str> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") {
        return Err("Connection header did not include 'upgrade'");
    }
    if !has_token(header::UPGRADE, "websocket") {
        return Err("`Upgrade` header did not include 'websocket'");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err("`Sec-WebSocket-Version` header did not include '13'");
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or("`Sec-WebSocket-Key` header missing")
}

/// The query parameters of an upgrade request.
pub fn query_params(request: &Request) -> HashMap<String, String> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(request.uri())
        .map(|q| q.0)
        .unwrap_or_default()
}
