//! The frames a session sends that are built from its state: `ENTITY_DATA`
//! and the `CLOSE` message with its close frame, and [`Outbound`], what the
//! session asks the transport to do.

use std::sync::Arc;

use ferry_core::Hlc;
use serde_json::{Value, json};

use super::super::protocol::{CloseReason, frame, timestamp_json};
use crate::DbChanges;
use crate::superjson::encode_changes;

/// What the connection wants the transport to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// Send a text frame.
    Text(String),
    /// Send a `CLOSE` message, then close with `code` and `reason`.
    Close {
        /// The `CLOSE` message text.
        message: String,
        /// WebSocket close code.
        code: u16,
        /// Close frame reason (JSON `{type, retry}`).
        reason: String,
    },
}

/// `ENTITY_DATA {changes, timestamp, forQueries}`.
///
/// A set of the `_metadata/_schema` entity goes with a delete of it (the
/// client applies deletes first): the client replaces its copy instead of
/// merging into it, so collections, attributes and permissions removed
/// from the schema disappear from it too (upstream overwrites its own
/// stored copy the same way).
pub fn entity_data(changes: &DbChanges, stamp: Hlc, for_queries: &[String]) -> String {
    let (meta, schema_id) = crate::db::SCHEMA_ENTITY;
    let overwrite = changes.collections.iter().any(|(c, cc)| {
        c == meta
            && cc.sets.iter().any(|(id, _)| id == schema_id)
            && !cc.deletes.iter().any(|id| id == schema_id)
    });
    let mut owned;
    let changes = if overwrite {
        owned = changes.clone();
        owned
            .collection_mut(meta)
            .deletes
            .push(schema_id.to_string());
        &owned
    } else {
        changes
    };
    frame(
        "ENTITY_DATA",
        json!({"changes": encode_changes(changes), "timestamp": timestamp_json(stamp), "forQueries": for_queries}),
    )
}

/// [`entity_data`] with some sets given as shared encoded entries.
pub(super) fn entity_data_shared(
    changes: &DbChanges,
    shared: &[(String, String, Arc<str>)],
    stamp: Hlc,
    for_queries: &[String],
) -> String {
    if shared.is_empty() {
        return entity_data(changes, stamp, for_queries);
    }
    format!(
        "{{\"type\":\"ENTITY_DATA\",\"payload\":{{\"changes\":{},\"timestamp\":{},\"forQueries\":{}}}}}",
        crate::superjson::encode_changes_text(changes, shared),
        timestamp_json(stamp),
        Value::from(for_queries.to_vec()),
    )
}

pub(super) fn schema_mismatch() -> Outbound {
    close(
        CloseReason::SchemaMismatch,
        Some("The client schema is not backwards compatible with the server schema."),
    )
}

/// A close after which the client reconnects by itself.
pub fn close_retry(reason: CloseReason, message: Option<&str>) -> Outbound {
    Outbound::Close {
        message: reason.message_retry(message, true),
        code: reason.code(),
        reason: reason.frame_reason_retry(true),
    }
}

/// The `CLOSE` message and close frame for `reason`.
pub fn close(reason: CloseReason, message: Option<&str>) -> Outbound {
    Outbound::Close {
        message: reason.message(message),
        code: reason.code(),
        reason: reason.frame_reason(),
    }
}
