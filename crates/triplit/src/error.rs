//! Triplit's error shape.
//!
//! Every error a Triplit client can receive is a `TriplitError` JSON body
//! `{name, message, baseMessage, status, contextMessage?}` where
//! `message = baseMessage + " | Context: " + contextMessage` when a context
//! is present. The `name` is the stable code clients and tests read.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

/// A Triplit-shaped error: a stable `name`, an HTTP status and messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {}", self.message())]
pub struct TriplitError {
    /// The upstream error class name, e.g. `InvalidCollectionNameError`.
    pub name: Cow<'static, str>,
    /// HTTP status upstream attaches to this error.
    pub status: u16,
    /// The message without context.
    pub base_message: String,
    /// Extra detail, appended to `message` after ` | Context: `.
    pub context_message: Option<String>,
}

impl TriplitError {
    /// A new error.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        status: u16,
        base_message: impl Into<String>,
        context_message: Option<String>,
    ) -> Self {
        Self {
            name: name.into(),
            status,
            base_message: base_message.into(),
            context_message,
        }
    }

    /// The generic `TriplitError` (status 500).
    pub fn internal(context: impl Into<String>) -> Self {
        Self::new("TriplitError", 500, "Triplit Error", Some(context.into()))
    }

    /// `message` as upstream composes it.
    pub fn message(&self) -> String {
        match &self.context_message {
            Some(ctx) => format!("{} | Context: {}", self.base_message, ctx),
            None => self.base_message.clone(),
        }
    }

    /// The JSON body `{name, message, baseMessage, status, contextMessage?}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("message".into(), json!(self.message()));
        m.insert("baseMessage".into(), json!(self.base_message));
        m.insert("status".into(), json!(self.status));
        if let Some(ctx) = &self.context_message {
            m.insert("contextMessage".into(), json!(ctx));
        }
        Value::Object(m)
    }

    /// `InvalidCollectionNameError` (400).
    pub fn invalid_collection_name(name: &str, context: Option<String>) -> Self {
        Self::new(
            "InvalidCollectionNameError",
            400,
            format!("{name} is not a valid collection name."),
            context,
        )
    }

    /// `DBSerializationError` (400): an input could not be encoded.
    pub fn serialization(base: impl Into<String>, context: Option<String>) -> Self {
        Self::new("DBSerializationError", 400, base, context)
    }

    /// `RouteNotFoundError` (404).
    pub fn route_not_found(path: &str) -> Self {
        Self::new(
            "RouteNotFoundError",
            404,
            format!("The server does not have a handler for this request: {path}"),
            None,
        )
    }

    /// `ServiceKeyRequiredError` (401): an admin route without the service token.
    pub fn service_key_required() -> Self {
        Self::new(
            "ServiceKeyRequiredError",
            401,
            "Service token required.",
            None,
        )
    }

    /// `MalformedMessagePayloadError` (400).
    pub fn malformed_payload(base: impl Into<String>, context: Option<String>) -> Self {
        Self::new("MalformedMessagePayloadError", 400, base, context)
    }
}

impl From<ferry_store::StoreError> for TriplitError {
    /// An unreachable database is `ServiceUnavailableError` (503, a
    /// Ferry name: upstream has no such error) so clients and load
    /// balancers can tell it from a bug; anything else is a 500.
    fn from(e: ferry_store::StoreError) -> Self {
        if e.is_unavailable() {
            return Self::new(
                "ServiceUnavailableError",
                503,
                "The database is unavailable; try again later.",
                Some(format!("storage unavailable ({})", e.code())),
            );
        }
        Self::internal(format!("storage failed ({})", e.code()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_store_is_a_503() {
        let e = TriplitError::from(ferry_store::StoreError::Unavailable("gone".into()));
        assert_eq!(
            (e.name.as_ref(), e.status),
            ("ServiceUnavailableError", 503)
        );
        let e = TriplitError::from(ferry_store::StoreError::Backend("bug".into()));
        assert_eq!((e.name.as_ref(), e.status), ("TriplitError", 500));
    }

    #[test]
    fn json_shape_matches_upstream() {
        let e = TriplitError::invalid_collection_name(
            "nope",
            Some("Collection 'nope' does not exist in the schema".into()),
        );
        assert_eq!(
            e.to_json(),
            json!({"name":"InvalidCollectionNameError","message":"nope is not a valid collection name. | Context: Collection 'nope' does not exist in the schema","baseMessage":"nope is not a valid collection name.","status":400,"contextMessage":"Collection 'nope' does not exist in the schema"})
        );
        let e = TriplitError::route_not_found("/nope");
        assert!(e.to_json().get("contextMessage").is_none());
    }
}
