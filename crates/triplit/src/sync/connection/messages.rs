//! Incoming frames: decoding the envelope, dispatching by message type,
//! reassembling `CHUNK`s and committing `CHANGES`.

use serde_json::{Map, Value, json};

use super::super::chunks::raw_chunk_data;
use super::super::entity_key::{EntityKey, keys_of};
use super::super::protocol::{self, frame, timestamp_json};
use super::{Outbound, SyncConnection};
use crate::TriplitError;
use crate::db::Transaction;
use crate::superjson::decode_changes;

pub(super) fn bad_payload(message_type: &str, context: String) -> String {
    protocol::error(
        Some(message_type),
        &TriplitError::malformed_payload("The message payload is invalid.", Some(context)),
        None,
    )
}

impl SyncConnection {
    /// Handles one text frame from the client. A schema change noticed
    /// now is dealt with first (see [`SyncConnection::take_outbound`]).
    pub async fn handle_text(&mut self, text: &str) -> Vec<Outbound> {
        self.check_schema();
        let mut out = std::mem::take(&mut self.pending);
        if out.iter().any(|o| matches!(o, Outbound::Close { .. })) {
            return out;
        }
        out.extend(self.handle_frame(text).await);
        out
    }

    async fn handle_frame(&mut self, text: &str) -> Vec<Outbound> {
        #[derive(serde::Deserialize)]
        struct Envelope<'a> {
            #[serde(rename = "type")]
            kind: Option<Value>,
            #[serde(borrow)]
            payload: Option<&'a serde_json::value::RawValue>,
        }
        let envelope: Envelope = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(_) => {
                let e =
                    TriplitError::malformed_payload("Messages payloads must be valid JSON.", None);
                return vec![Outbound::Text(protocol::error(
                    None,
                    &e,
                    Some(json!({"message": text})),
                ))];
            }
        };
        let kind = match &envelope.kind {
            Some(Value::String(s)) => s.clone(),
            other => {
                let shown = other
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "undefined".into());
                let e = TriplitError::new(
                    "UnrecognizedMessageTypeError",
                    400,
                    format!("Unrecognized message type: {shown}."),
                    None,
                );
                return vec![Outbound::Text(protocol::error(Some(&shown), &e, None))];
            }
        };
        if self.awaiting_schema.is_some() && kind != "SCHEMA_RESPONSE" {
            let e = TriplitError::internal("Server not ready for messages");
            return vec![Outbound::Text(protocol::error(Some(&kind), &e, None))];
        }
        if kind == "CHUNK" {
            return self.handle_chunk(text).await;
        }
        let payload: Value = match envelope.payload.map(|p| serde_json::from_str(p.get())) {
            None => Value::Null,
            Some(Ok(v)) => v,
            Some(Err(_)) => {
                let e =
                    TriplitError::malformed_payload("Messages payloads must be valid JSON.", None);
                return vec![Outbound::Text(protocol::error(
                    None,
                    &e,
                    Some(json!({"message": text})),
                ))];
            }
        };
        match kind.as_str() {
            "CONNECT_QUERY" => self.connect_query(&payload).await,
            "DISCONNECT_QUERY" => match payload.get("id").and_then(Value::as_str) {
                Some(id) => {
                    self.queries.remove(id);
                    self.view.forget(id);
                    Vec::new()
                }
                None => vec![Outbound::Text(bad_payload(
                    "DISCONNECT_QUERY",
                    "id must be a string".into(),
                ))],
            },
            "CHANGES" => vec![Outbound::Text(self.changes(&payload).await)],
            "PING" => {
                let mut p = Map::new();
                if let Some(t) = payload.get("clientTimestamp") {
                    p.insert("clientTimestamp".into(), t.clone());
                }
                p.insert("serverTimestamp".into(), json!(self.db.time().now_ms()));
                vec![Outbound::Text(frame("PONG", Value::Object(p)))]
            }
            "SCHEMA_RESPONSE" => self.schema_response(&payload),
            other => {
                let e = TriplitError::new(
                    "UnrecognizedMessageTypeError",
                    400,
                    format!("Unrecognized message type: {other}."),
                    None,
                );
                vec![Outbound::Text(protocol::error(Some(other), &e, None))]
            }
        }
    }

    async fn handle_chunk(&mut self, text: &str) -> Vec<Outbound> {
        let result = raw_chunk_data(text).and_then(|(meta, data)| {
            let id = match &meta["id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let index = meta["index"].as_u64().ok_or_else(|| {
                TriplitError::malformed_payload(
                    "Invalid CHUNK message.",
                    Some("index must be a number".into()),
                )
            })? as usize;
            let total = meta["total"].as_u64().ok_or_else(|| {
                TriplitError::malformed_payload(
                    "Invalid CHUNK message.",
                    Some("total must be a number".into()),
                )
            })? as usize;
            self.chunks.add(&id, index, total, &data)
        });
        match result {
            Ok(None) => Vec::new(),
            Ok(Some(whole)) => Box::pin(self.handle_frame(&whole)).await,
            Err(e) => vec![Outbound::Text(protocol::error(Some("CHUNK"), &e, None))],
        }
    }

    async fn changes(&mut self, payload: &Value) -> String {
        let decoded = match decode_changes(payload.get("changes").unwrap_or(&Value::Null)) {
            Ok(c) => c,
            Err(e) => return protocol::error(Some("CHANGES"), &e, Some(json!({"failures": []}))),
        };
        let first_collection = decoded.collections.first().map(|(c, _)| c.clone());
        let written: Vec<EntityKey> = keys_of(&decoded).collect();
        match self
            .db
            .commit(&self.session, Transaction::from_changes(decoded))
            .await
        {
            Ok(stamp) => {
                if !written.is_empty() {
                    self.stamps.acked(stamp);
                    self.settle.acked(self.db.time().now_ms(), stamp, written);
                }
                frame("CHANGES_ACK", json!({"timestamp": timestamp_json(stamp)}))
            }
            Err(e) => {
                let tx_id = timestamp_json(self.db.last_timestamp()).to_string();
                let failures =
                    json!([{"txId": tx_id, "collection": first_collection, "error": e.to_json()}]);
                protocol::error(Some("CHANGES"), &e, Some(json!({"failures": failures})))
            }
        }
    }
}
