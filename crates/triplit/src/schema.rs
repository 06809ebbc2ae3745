//! The Triplit schema: `{collections: {name: {schema, relationships?,
//! permissions?}}, roles?}` as `POST /schema` returns it and
//! `/override-schema` accepts it.
//!
//! A [`Schema`] keeps the JSON it was parsed from (in JS key order, which
//! is how upstream holds and re-emits it) next to the parsed record type of
//! each collection. Relationships and permissions stay raw JSON for the
//! query engine to prepare.

pub mod data_type;
pub mod diff;
pub mod hash;
pub mod issues;
pub mod validation;

use serde_json::{Map, Value, json};

pub use data_type::{DataType, DefaultFunc, DefaultValue, TypeConfig};
pub use validation::validate_schema;

use crate::types::js::{js_entries, js_get, js_normalize, js_truthy};

/// Why a schema is invalid: upstream's `validateSchema` message, the
/// `message` of a `SCHEMA_INVALID` result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SchemaError {
    /// The reason, e.g. `schema collections definition is invalid: …`.
    pub message: String,
}

impl SchemaError {
    /// The `code` of the override-schema result this error produces.
    pub const CODE: &'static str = "SCHEMA_INVALID";
}

/// One collection of a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    /// The entity type: always a [`DataType::Record`] with an `id` string.
    pub schema: DataType,
    /// `relationships` as given (empty when absent or `null`).
    pub relationships: Map<String, Value>,
    /// `permissions` as given (`None` when absent or `null`).
    pub permissions: Option<Value>,
}

impl Collection {
    /// The record's properties in order.
    pub fn properties(&self) -> &[(String, DataType)] {
        self.schema.properties().unwrap_or_default()
    }

    /// A top-level property's type.
    pub fn property(&self, name: &str) -> Option<&DataType> {
        self.schema.property(name)
    }
}

/// A parsed, valid schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    raw: Value,
    collections: Vec<(String, Collection)>,
    roles: Option<Map<String, Value>>,
}

/// Upstream's `DEFAULT_ROLES`: what a schema with collections but no roles
/// gets (`anonymous` for anon tokens, `authenticated` for any `sub`).
pub fn default_roles() -> Map<String, Value> {
    let v = json!({
        "anonymous": {"match": {"x-triplit-token-type": "anon"}},
        "authenticated": {"match": {"sub": "$sub"}}
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// What the server does to a schema body before `/override-schema`
/// validates it (`session.ts`): `if (!!schema.collections &&
/// !schema.roles) schema.roles = DEFAULT_ROLES`, with JS truthiness (so a
/// `roles` of `false`, `0` or `""` is replaced too). An existing `roles`
/// key keeps its position; a new one goes last.
pub fn apply_default_roles(raw: &mut Value) {
    let Value::Object(m) = raw else { return };
    let has_collections = m.get("collections").is_some_and(js_truthy);
    let has_roles = m.get("roles").is_some_and(js_truthy);
    if has_collections && !has_roles {
        m.insert("roles".into(), Value::Object(default_roles()));
    }
}

impl Schema {
    /// The schema stored in `txn` (`keys::schema()`); `None` in schemaless
    /// mode.
    pub(crate) fn load_stored(
        txn: &dyn ferry_store::ReadTxn,
    ) -> Result<Option<Schema>, crate::TriplitError> {
        let internal = crate::TriplitError::internal;
        let Some(bytes) = txn.get(&crate::keys::schema())? else {
            return Ok(None);
        };
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| internal(format!("stored schema is not JSON: {e}")))?;
        Schema::from_json(&v)
            .map(Some)
            .map_err(|e| internal(format!("stored schema is invalid: {e}")))
    }

    /// Parses Triplit's schema JSON. An invalid schema gives upstream's
    /// exact reason ([`validate_schema`]).
    pub fn from_json(v: &Value) -> Result<Schema, SchemaError> {
        validate_schema(v).map_err(|message| SchemaError { message })?;
        let raw = js_normalize(v);
        let invalid = || SchemaError {
            message: "schema is not valid".into(),
        };
        let mut collections = Vec::new();
        if let Some(cs) = js_get(&raw, "collections") {
            for (name, c) in js_entries(cs) {
                let schema = js_get(c, "schema")
                    .and_then(DataType::from_json)
                    .ok_or_else(invalid)?;
                let relationships = match js_get(c, "relationships") {
                    Some(Value::Object(r)) => r.clone(),
                    _ => Map::new(),
                };
                let permissions = js_get(c, "permissions").filter(|p| !p.is_null()).cloned();
                collections.push((
                    name,
                    Collection {
                        schema,
                        relationships,
                        permissions,
                    },
                ));
            }
        }
        let roles = match js_get(&raw, "roles") {
            Some(Value::Object(r)) => Some(r.clone()),
            // An (empty) array is a valid, truthy `roles` with no role in it.
            Some(Value::Array(_)) => Some(Map::new()),
            _ => None,
        };
        Ok(Schema {
            raw,
            collections,
            roles,
        })
    }

    /// The schema JSON as given, in JS key order (array-index keys first,
    /// then insertion order), which is how upstream re-emits it.
    pub fn to_json(&self) -> Value {
        self.raw.clone()
    }

    /// Inserts [`default_roles`] when the schema has no `roles` (absent or
    /// `null`), as both upstream server entry points do. A valid schema
    /// always has (truthy) collections. Custom roles replace the defaults,
    /// so a schema with roles is returned unchanged.
    pub fn with_default_roles(mut self) -> Schema {
        if self.roles.is_none() {
            apply_default_roles(&mut self.raw);
            self.roles = Some(default_roles());
        }
        self
    }

    /// A collection by name.
    pub fn collection(&self, name: &str) -> Option<&Collection> {
        self.collections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c)
    }

    /// Collection names in schema order.
    pub fn collection_names(&self) -> impl Iterator<Item = &str> {
        self.collections.iter().map(|(n, _)| n.as_str())
    }

    /// Collections in schema order.
    pub fn collections(&self) -> impl Iterator<Item = (&str, &Collection)> {
        self.collections.iter().map(|(n, c)| (n.as_str(), c))
    }

    /// `roles`: `None` when absent or `null`.
    pub fn roles(&self) -> Option<&Map<String, Value>> {
        self.roles.as_ref()
    }
}
