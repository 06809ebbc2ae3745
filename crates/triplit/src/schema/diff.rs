//! Upstream's `diffSchemas(old, new)`: the list of differences between two
//! schemas that `/override-schema` reports as `diff` and classifies into
//! issues ([`issues`](super::issues)).
//!
//! The comparison runs on the schema JSON with JavaScript semantics, because
//! that is what upstream compares and the quirks are visible on the wire:
//! - attributes are walked in `Object.keys` order of the old record, then
//!   the new one's additions; records on both sides recurse instead of
//!   reporting an update, so a record's own `config` is never compared;
//! - two attributes are equal by upstream's `Type.equal` (`optional` and
//!   `nullable` by truthiness, defaults by `===`, so two object defaults
//!   are never equal; string enums as sets; a set's own `enum` ignored);
//! - an update's `changes.config` compares raw values with `!==`, so an
//!   absent `nullable` against `nullable: false` reports `nullable: false`
//!   once the attribute differs in any other way;
//! - relationships compare `cardinality` and `hashQuery(query)`,
//!   permission filters and role matchers compare `JSON.stringify`.

use serde_json::{Map, Value, json};

mod equal;

pub(crate) use equal::strict_eq;

use super::Schema;
use crate::types::js::{js_entries, js_get, js_truthy};
use equal::{
    every_included, field, keyed_equal, operation_permissions_equal, relationship_equal,
    role_equal, types_equal,
};

/// One entry of upstream's `diffSchemas` result.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemaDiff {
    /// `{_diff: 'collectionAttribute', collection, type, attribute, …}`.
    Attribute(AttributeDiff),
    /// `{_diff: 'collectionRelationships', collection}`.
    Relationships {
        /// The collection whose relationships differ.
        collection: String,
    },
    /// `{_diff: 'collectionPermissions', collection}`.
    Permissions {
        /// The collection whose permissions differ.
        collection: String,
    },
    /// `{_diff: 'roles'}`.
    Roles,
}

/// A changed attribute of a collection (nested attributes have longer paths).
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeDiff {
    /// The collection.
    pub collection: String,
    /// The attribute path, e.g. `["meta", "prio"]`.
    pub attribute: Vec<String>,
    /// What happened to it.
    pub change: AttributeChange,
}

/// The `type` of an attribute diff and what comes with it.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeChange {
    /// Added: the new type's JSON, and whether the whole collection is new.
    Insert {
        /// `dataType`: the attribute's type JSON in the new schema.
        data_type: Value,
        /// `isNewCollection`.
        is_new_collection: bool,
    },
    /// Removed: the old type's JSON.
    Delete {
        /// `dataType`: the attribute's type JSON in the old schema.
        data_type: Value,
    },
    /// Changed in place.
    Update(Box<AttributeChanges>),
}

/// `changes` of an update: `{config: {nullable?, optional?, default?,
/// enum?}, type?, items?}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttributeChanges {
    /// `config.nullable`: the new truthiness, when the raw values differ.
    pub nullable: Option<bool>,
    /// `config.optional`: the new truthiness, when the raw values differ.
    pub optional: Option<bool>,
    /// `config.default`: the new default, when it is not `===` the old one
    /// (`None` also when the new default is absent, as `JSON.stringify`
    /// drops an `undefined`).
    pub default: Option<Value>,
    /// `config.enum`: the new enum, when one was added or an option removed.
    pub enum_values: Option<Value>,
    /// `type`: the new type name, when it changed.
    pub type_name: Option<Value>,
    /// `items.type`: a set's new item type, when it changed.
    pub items_type: Option<Value>,
}

impl SchemaDiff {
    /// The entry as upstream serialises it.
    pub fn to_json(&self) -> Value {
        match self {
            SchemaDiff::Attribute(a) => a.to_json(),
            SchemaDiff::Relationships { collection } => {
                json!({"_diff": "collectionRelationships", "collection": collection})
            }
            SchemaDiff::Permissions { collection } => {
                json!({"_diff": "collectionPermissions", "collection": collection})
            }
            SchemaDiff::Roles => json!({"_diff": "roles"}),
        }
    }
}

impl AttributeDiff {
    /// The entry as upstream serialises it (also an issue's `context`).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("_diff".into(), json!("collectionAttribute"));
        m.insert("collection".into(), json!(self.collection));
        let kind = match &self.change {
            AttributeChange::Insert { .. } => "insert",
            AttributeChange::Delete { .. } => "delete",
            AttributeChange::Update(_) => "update",
        };
        m.insert("type".into(), json!(kind));
        m.insert("attribute".into(), json!(self.attribute));
        match &self.change {
            AttributeChange::Insert {
                data_type,
                is_new_collection,
            } => {
                m.insert("dataType".into(), data_type.clone());
                m.insert("isNewCollection".into(), json!(is_new_collection));
            }
            AttributeChange::Delete { data_type } => {
                m.insert("dataType".into(), data_type.clone());
            }
            AttributeChange::Update(c) => {
                m.insert("changes".into(), c.to_json());
            }
        }
        Value::Object(m)
    }
}

impl AttributeChanges {
    fn to_json(&self) -> Value {
        let mut config = Map::new();
        if let Some(n) = self.nullable {
            config.insert("nullable".into(), json!(n));
        }
        if let Some(o) = self.optional {
            config.insert("optional".into(), json!(o));
        }
        if let Some(d) = &self.default {
            config.insert("default".into(), d.clone());
        }
        if let Some(e) = &self.enum_values {
            config.insert("enum".into(), e.clone());
        }
        let mut m = Map::new();
        m.insert("config".into(), Value::Object(config));
        if let Some(t) = &self.type_name {
            m.insert("type".into(), t.clone());
        }
        if let Some(t) = &self.items_type {
            m.insert("items".into(), json!({ "type": t }));
        }
        Value::Object(m)
    }
}

/// Upstream's `diffSchemas(old, new)` for two parsed schemas.
pub fn diff_schemas(old: &Schema, new: &Schema) -> Vec<SchemaDiff> {
    diff_schema_json(&old.to_json(), &new.to_json())
}

/// [`diff_schemas`] on schema JSON (`{collections, roles?}`), e.g. a
/// client's schema as it arrives in `SCHEMA_RESPONSE`.
pub fn diff_schema_json(old: &Value, new: &Value) -> Vec<SchemaDiff> {
    let none = Value::Null;
    let old_cs = js_get(old, "collections").unwrap_or(&none);
    let new_cs = js_get(new, "collections").unwrap_or(&none);
    let mut out = Vec::new();
    for name in union_keys(old_cs, new_cs) {
        let a = js_get(old_cs, &name);
        let b = js_get(new_cs, &name);
        let model_a = a.and_then(|c| js_get(c, "schema"));
        let model_b = b.and_then(|c| js_get(c, "schema"));
        let mut attrs = Vec::new();
        diff_records(model_a, model_b, &[], &mut attrs);
        out.extend(attrs.into_iter().map(|(attribute, change)| {
            SchemaDiff::Attribute(AttributeDiff {
                collection: name.clone(),
                attribute,
                change,
            })
        }));
        if !keyed_equal(
            field(a, "relationships"),
            field(b, "relationships"),
            relationship_equal,
        ) {
            out.push(SchemaDiff::Relationships {
                collection: name.clone(),
            });
        }
        if !keyed_equal(
            field(a, "permissions"),
            field(b, "permissions"),
            operation_permissions_equal,
        ) {
            out.push(SchemaDiff::Permissions { collection: name });
        }
    }
    if !keyed_equal(js_get(old, "roles"), js_get(new, "roles"), role_equal) {
        out.push(SchemaDiff::Roles);
    }
    out
}

/// `new Set([...Object.keys(a), ...Object.keys(b)])`.
fn union_keys(a: &Value, b: &Value) -> Vec<String> {
    let mut keys: Vec<String> = js_entries(a).into_iter().map(|(k, _)| k).collect();
    for (k, _) in js_entries(b) {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

fn diff_records(
    a: Option<&Value>,
    b: Option<&Value>,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, AttributeChange)>,
) {
    if a.is_none() && b.is_none() {
        return;
    }
    let empty = Value::Object(Map::new());
    let props_a = field(a, "properties")
        .filter(|p| !p.is_null())
        .unwrap_or(&empty);
    let props_b = field(b, "properties")
        .filter(|p| !p.is_null())
        .unwrap_or(&empty);
    for prop in union_keys(props_a, props_b) {
        let mut path = prefix.to_vec();
        path.push(prop.clone());
        let (pa, pb) = match (js_get(props_a, &prop), js_get(props_b, &prop)) {
            (None, Some(pb)) => {
                let change = AttributeChange::Insert {
                    data_type: pb.clone(),
                    is_new_collection: a.is_none(),
                };
                out.push((path, change));
                continue;
            }
            (Some(pa), None) => {
                out.push((
                    path,
                    AttributeChange::Delete {
                        data_type: pa.clone(),
                    },
                ));
                continue;
            }
            (Some(pa), Some(pb)) => (pa, pb),
            (None, None) => continue,
        };
        if types_equal(pa, pb) {
            continue;
        }
        let ta = js_get(pa, "type");
        let tb = js_get(pb, "type");
        let is = |t: Option<&Value>, name: &str| t.and_then(Value::as_str) == Some(name);
        if is(ta, "record") && is(tb, "record") {
            diff_records(Some(pa), Some(pb), &path, out);
            continue;
        }
        let mut changes = config_changes(config_or_empty(pa), config_or_empty(pb));
        if !strict_eq(ta, tb) {
            changes.type_name = Some(tb.cloned().unwrap_or(Value::Null));
        }
        if is(ta, "set") && is(tb, "set") {
            let item_type = |t: &Value| js_get(t, "items").and_then(|i| js_get(i, "type")).cloned();
            let (ia, ib) = (item_type(pa), item_type(pb));
            if !strict_eq(ia.as_ref(), ib.as_ref()) {
                changes.items_type = Some(ib.unwrap_or(Value::Null));
            }
        }
        out.push((path, AttributeChange::Update(Box::new(changes))));
    }
}

/// `type.config ?? {}`.
fn config_or_empty(t: &Value) -> Option<&Value> {
    js_get(t, "config").filter(|c| !c.is_null())
}

/// Upstream's `diffAttributeOptions(old config, new config)`.
fn config_changes(a: Option<&Value>, b: Option<&Value>) -> AttributeChanges {
    let get = field;
    let truthy = |v: Option<&Value>| v.is_some_and(js_truthy);
    let mut changes = AttributeChanges::default();
    if !strict_eq(get(a, "nullable"), get(b, "nullable")) {
        changes.nullable = Some(truthy(get(b, "nullable")));
    }
    if !strict_eq(get(a, "optional"), get(b, "optional")) {
        changes.optional = Some(truthy(get(b, "optional")));
    }
    if !strict_eq(get(a, "default"), get(b, "default")) {
        changes.default = get(b, "default").cloned();
    }
    let (ea, eb) = (get(a, "enum"), get(b, "enum"));
    let added = truthy(eb) && !truthy(ea);
    let removed = truthy(ea) && truthy(eb) && !every_included(ea, eb);
    if added || removed {
        changes.enum_values = eb.cloned();
    }
    changes
}
