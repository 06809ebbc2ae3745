//! Frames of the sync protocol: `{type, payload}` JSON text.

use ferry_core::Hlc;
use serde_json::{Map, Value, json};

use crate::TriplitError;

/// Why the server closes a socket; sent as a `CLOSE` message and as the
/// close frame's JSON reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The token was missing, invalid or expired at connect.
    Unauthorized,
    /// The token expired on an open socket.
    TokenExpired,
    /// A refreshed token has different roles.
    RolesMismatch,
    /// The client's schema cannot work with the server's.
    SchemaMismatch,
    /// The server failed.
    InternalError,
    /// The schema changed under a session admitted by its schema hash
    /// (Ferry only; sent with `retry: true`, so the client reconnects and
    /// goes through the schema handshake again).
    SchemaChanged,
    /// The store cannot reach its database (Ferry only; sent with
    /// `retry: true` and code 1012 like [`CloseReason::SchemaChanged`]:
    /// the client keeps its outbox and reconnects with its checkpoint,
    /// and is refused the same way until the database is back).
    StoreUnavailable,
}

impl CloseReason {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::Unauthorized => "UNAUTHORIZED",
            CloseReason::TokenExpired => "TOKEN_EXPIRED",
            CloseReason::RolesMismatch => "ROLES_MISMATCH",
            CloseReason::SchemaMismatch => "SCHEMA_MISMATCH",
            CloseReason::InternalError => "INTERNAL_ERROR",
            CloseReason::SchemaChanged => "SCHEMA_CHANGED",
            CloseReason::StoreUnavailable => "STORE_UNAVAILABLE",
        }
    }

    /// The WebSocket close code upstream uses.
    pub fn code(self) -> u16 {
        match self {
            CloseReason::InternalError => 1011,
            // "Service Restart": come back and try again.
            CloseReason::SchemaChanged | CloseReason::StoreUnavailable => 1012,
            _ => 1008,
        }
    }

    /// The `CLOSE` message (the client closes its side when it gets it).
    pub fn message(self, text: Option<&str>) -> String {
        self.message_retry(text, false)
    }

    /// The `CLOSE` message with an explicit `retry`.
    pub fn message_retry(self, text: Option<&str>, retry: bool) -> String {
        let mut payload = Map::new();
        payload.insert("type".into(), json!(self.name()));
        if let Some(t) = text {
            payload.insert("message".into(), json!(t));
        }
        payload.insert("retry".into(), json!(retry));
        frame("CLOSE", Value::Object(payload))
    }

    /// The close frame's reason text (at most 123 bytes).
    pub fn frame_reason(self) -> String {
        self.frame_reason_retry(false)
    }

    /// The close frame's reason text with an explicit `retry`.
    pub fn frame_reason_retry(self, retry: bool) -> String {
        json!({"type": self.name(), "retry": retry}).to_string()
    }
}

/// `{type, payload}` as JSON text.
pub fn frame(kind: &str, payload: Value) -> String {
    let mut m = Map::new();
    m.insert("type".into(), json!(kind));
    m.insert("payload".into(), payload);
    Value::Object(m).to_string()
}

/// Whether the text frame `text` is one that never connects a query
/// (`CHANGES`, `PING`, `DISCONNECT_QUERY`), judged from its first bytes as
/// the client writes them (`{"type":"…"`). Any other frame, and any frame
/// written differently, may connect one: a session follows commits before
/// handling it (so the query misses no commit made after its read), while
/// a writer-only socket's writes need not follow them.
pub fn never_connects_query(text: &str) -> bool {
    const QUIET: [&str; 3] = ["CHANGES\"", "PING\"", "DISCONNECT_QUERY\""];
    text.strip_prefix(r#"{"type":""#)
        .is_some_and(|rest| QUIET.iter().any(|t| rest.starts_with(t)))
}

/// A timestamp as the wire writes it: `[ms, counter, "server"]`.
pub fn timestamp_json(t: Hlc) -> Value {
    json!([t.ms, t.counter, "server"])
}

/// Parses a wire timestamp `[ms, counter, id]`.
pub fn parse_timestamp(v: &Value) -> Option<Hlc> {
    let a = v.as_array()?;
    let ms = a.first()?.as_f64()?;
    let counter = a.get(1)?.as_f64()?;
    if !(ms >= 0.0 && counter >= 0.0) {
        return None;
    }
    Some(Hlc::new(ms as u64, counter.min(u32::MAX as f64) as u32))
}

/// `READY {clientId}`.
pub fn ready(client_id: &str) -> String {
    frame("READY", json!({"clientId": client_id}))
}

/// `ERROR` with optional `messageType` and `metadata`.
pub fn error(message_type: Option<&str>, error: &TriplitError, metadata: Option<Value>) -> String {
    let mut p = Map::new();
    if let Some(t) = message_type {
        p.insert("messageType".into(), json!(t));
    }
    p.insert("error".into(), error.to_json());
    if let Some(m) = metadata {
        p.insert("metadata".into(), m);
    }
    frame("ERROR", Value::Object(p))
}

/// The `QuerySyncError` that wraps a failing query.
pub fn query_sync_error(query_id: &str, inner: &TriplitError) -> String {
    let wrapped = TriplitError::new(
        "QuerySyncError",
        500,
        format!(
            "An error occurred while syncing your query: {}",
            inner.to_json()
        ),
        None,
    );
    error(
        Some("CONNECT_QUERY"),
        &wrapped,
        Some(json!({"queryKey": query_id, "innerError": inner.to_json()})),
    )
}

#[cfg(test)]
mod tests {
    use super::never_connects_query;

    #[test]
    fn only_frames_known_not_to_connect_a_query_skip_following_commits() {
        assert!(never_connects_query(r#"{"type":"CHANGES","payload":{}}"#));
        assert!(never_connects_query(r#"{"type":"PING","payload":{}}"#));
        assert!(never_connects_query(
            r#"{"type":"DISCONNECT_QUERY","payload":{"id":"q"}}"#
        ));
        for may in [
            r#"{"type":"CONNECT_QUERY","payload":{}}"#,
            r#"{"type":"CHUNK","payload":{}}"#,
            r#"{"type":"CHANGES_X","payload":{}}"#,
            r#"{"payload":{},"type":"CHANGES"}"#,
            r#"{ "type":"CHANGES"}"#,
            "",
        ] {
            assert!(!never_connects_query(may), "{may}");
        }
    }
}
