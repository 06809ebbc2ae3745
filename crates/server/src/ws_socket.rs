//! The WebSocket transport under a sync session: the HTTP/1.1 upgrade
//! handshake and writes that keep each socket's buffers small.
//!
//! The upgrade is done here rather than by axum's extractor so the session
//! owns the tungstenite stream itself: a text message larger than
//! [`FRAGMENT`] is written as a fragmented message (a text frame and
//! continuation frames, which every WebSocket client reassembles). The
//! stream's write buffer keeps the capacity of the largest frame it ever
//! held, so writing whole messages would leave every connection that once
//! received a large `ENTITY_DATA` (a query's first result) holding a buffer
//! that size for as long as it lives.

use std::collections::HashMap;
use std::future::Future;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Sink, SinkExt};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error, Message};

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

/// Writes `msg` and flushes it; a text message longer than [`FRAGMENT`]
/// goes as a fragmented message.
pub async fn write<S>(sink: &mut S, msg: Message) -> Result<(), Error>
where
    S: Sink<Message, Error = Error> + Unpin,
{
    match msg {
        Message::Text(text) if text.len() > FRAGMENT => {
            let data = Bytes::from(text);
            let mut at = 0;
            while at < data.len() {
                let end = (at + FRAGMENT).min(data.len());
                let opcode = if at == 0 { Data::Text } else { Data::Continue };
                let frame =
                    Frame::message(data.slice(at..end), OpCode::Data(opcode), end == data.len());
                sink.feed(Message::Frame(frame)).await?;
                at = end;
            }
            sink.flush().await
        }
        other => sink.send(other).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode;

    async fn written(msg: Message) -> Vec<Message> {
        let mut out = Vec::new();
        {
            let mut sink = Box::pin(futures::sink::unfold(
                &mut out,
                |out, m: Message| async move {
                    out.push(m);
                    Ok::<_, Error>(out)
                },
            ));
            write(&mut sink, msg).await.unwrap();
        }
        out
    }

    #[tokio::test]
    async fn long_text_is_written_as_one_fragmented_message() {
        let text: String = (0..FRAGMENT * 2 + 100)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let frames = written(Message::Text(text.clone().into())).await;
        assert_eq!(frames.len(), 3);
        let mut joined = Vec::new();
        for (i, m) in frames.iter().enumerate() {
            let Message::Frame(f) = m else {
                panic!("frame {i} is {m:?}")
            };
            let want = if i == 0 { Data::Text } else { Data::Continue };
            assert_eq!(f.header().opcode, OpCode::Data(want));
            assert_eq!(f.header().is_final, i == 2);
            assert!(f.payload().len() <= FRAGMENT);
            joined.extend_from_slice(f.payload());
        }
        assert_eq!(joined, text.as_bytes());
    }

    #[tokio::test]
    async fn short_text_and_control_frames_go_whole() {
        let frames = written(Message::Text("hello".into())).await;
        assert!(matches!(&frames[..], [Message::Text(t)] if t.as_str() == "hello"));
        let frames = written(Message::Close(None)).await;
        assert!(matches!(&frames[..], [Message::Close(None)]));
    }
}
