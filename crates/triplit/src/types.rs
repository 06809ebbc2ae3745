//! Triplit's data-type rules on entities: the HTTP insert encoding with
//! defaults, the HTTP "serialized" output, `validateEncoded` for writes,
//! set keys and the operators each type supports.
//!
//! Three forms of an entity exist upstream:
//! - **encoded** — what is stored and travels in `CHANGES`/`ENTITY_DATA`:
//!   sets as `{key: bool}`, dates as ISO strings;
//! - **decoded** — JS values (`Set`, `Date`), never on the wire;
//! - **serialized** — the HTTP JSON: sets as arrays of live items, dates as
//!   ISO strings, optional `null`s omitted.
//!
//! Every function returns values as a JS program would hold them after
//! `JSON.parse`: object keys in JS order (array-index keys first) and
//! numbers as doubles (see [`js`]).

pub mod date;
pub mod encode;
pub mod js;
pub mod serialize;
pub mod validate;

use ferry_core::{RandomSource, TimeSource};
use serde_json::{Map, Value};

use crate::error::TriplitError;
use crate::ids;
use crate::schema::{Collection, DataType};

/// Randomness and time for default values (`nanoid`, `uuid*`, `now`).
#[derive(Clone, Copy)]
pub struct DefaultsContext<'a> {
    /// For `nanoid`, `uuid`, `uuidv4`, `uuidv7` and generated ids.
    pub rng: &'a dyn RandomSource,
    /// For `now` and `uuidv7`.
    pub time: &'a dyn TimeSource,
}

/// HTTP `/insert` and `/bulk-insert`: the input entity → the encoded entity
/// to store (upstream's `parseInsert` plus the id fallback of
/// `DBTransaction.insert`).
///
/// With a schema: the schema's properties in schema order, each from the
/// input or its default (applied only when the key is absent; an explicit
/// `null` stays), **unknown properties dropped** at every level, then
/// encoded (sets from arrays, dates from `Date.parse`-able strings or epoch
/// ms, enums checked). Errors are upstream's `DBSerializationError`s, or a
/// 500 `TriplitError` where upstream crashes (a required nested record
/// absent or `null`, an out-of-range epoch-ms date).
///
/// Without a schema the entity is kept as given. In both cases a falsy
/// `id` (absent, `null`, `""`, `0`, `false`) is replaced by a 21-character
/// nanoid, in place or appended last; a truthy non-string id is kept.
///
/// Upstream then validates the result at commit: callers must run
/// [`validate_encoded`] with `partial` = "the id already exists" (an insert
/// over an existing entity is an upsert), which is what rejects a missing
/// required property without a default.
pub fn encode_insert(
    collection: Option<&Collection>,
    input: &Map<String, Value>,
    ctx: &DefaultsContext,
) -> Result<Map<String, Value>, TriplitError> {
    let mut out = match collection {
        None => input.clone(),
        Some(c) => {
            let assigned =
                encode::assign_record(c.properties(), Some(&Value::Object(input.clone())), ctx)?;
            match encode::encode(&c.schema, &Value::Object(assigned))? {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            }
        }
    };
    if !out.get("id").is_some_and(js::js_truthy) {
        out.insert("id".into(), Value::String(ids::nanoid(ctx.rng)));
    }
    Ok(js::js_normalize_map(&out))
}

/// HTTP `/update` with a plain-object `changes` (`DBTransaction.update`):
/// an `id` key is refused with upstream's `InvalidOperationError`, then the
/// patch is encoded as given — no defaults, only the keys present, sets
/// from arrays (or already encoded objects), dates from any
/// `Date.parse`-able string or epoch ms, enums checked, and an **unknown
/// property rejected** (`… as type: record | Context: Unrecognized
/// property: zz`). Schemaless patches are returned unchanged. Upstream then
/// skips an empty patch and validates the rest at commit: callers run
/// [`validate_encoded`] with `partial = true`.
pub fn encode_update(
    collection_name: &str,
    collection: Option<&Collection>,
    changes: &Map<String, Value>,
) -> Result<Map<String, Value>, TriplitError> {
    if let Some(id) = changes.get("id") {
        return Err(TriplitError::new(
            "InvalidOperationError",
            400,
            "You are attempting to perform an operation that is not valid.",
            Some(format!(
                "Attempted to update the id of an entity in the {collection_name} to {}. The 'id' attribute of an entity is immutable and cannot be updated.",
                js::js_string(Some(id))
            )),
        ));
    }
    let Some(c) = collection else {
        return Ok(js::js_normalize_map(changes));
    };
    match encode::encode(&c.schema, &Value::Object(changes.clone()))? {
        Some(Value::Object(m)) => Ok(js::js_normalize_map(&m)),
        _ => Ok(Map::new()),
    }
}

/// A stored (encoded) entity → its HTTP serialized form, as `/fetch` and
/// the insert routes answer (`serializeEntity(schema, decode(entity))`).
///
/// With a schema: unknown properties dropped, optional `null`s omitted,
/// sets as arrays of live items converted back to their item type
/// (`Number(key)`, so `"0x10"` → 16 and `"abc"` → `null`; booleans from
/// `"true"`; dates re-parsed), deduplicated like a JS `Set`; dates
/// normalised through `Date`. Fails like upstream: `DBDeserializationError`
/// for a stored value of the wrong JS type, `DBSerializationError` (`…
/// Invalid Date as type: date`) for an unparseable date. Schemaless: the
/// entity as stored.
pub fn serialize_entity(
    collection: Option<&Collection>,
    entity: &Map<String, Value>,
) -> Result<Map<String, Value>, TriplitError> {
    match collection {
        None => Ok(js::js_normalize_map(entity)),
        Some(c) => serialize::serialize_record(&c.schema, entity),
    }
}

/// [`serialize_entity`] written straight to JSON bytes: equal to
/// `serde_json::to_vec` of its map, with the same errors.
pub fn serialize_entity_json(
    collection: Option<&Collection>,
    entity: &Map<String, Value>,
) -> Result<Vec<u8>, TriplitError> {
    let mut out = vec![b'{'];
    write_entity_fields(collection, entity, &|_| false, &mut false, &mut out)?;
    out.push(b'}');
    Ok(out)
}

/// [`serialize_entity`]'s fields written as JSON object fields after `*any`
/// earlier ones, leaving out (after checking) those `skip` names.
pub fn write_entity_fields(
    collection: Option<&Collection>,
    entity: &Map<String, Value>,
    skip: &dyn Fn(&str) -> bool,
    any: &mut bool,
    out: &mut Vec<u8>,
) -> Result<(), TriplitError> {
    match collection {
        None => serialize::write_normalized_fields(entity, skip, any, out),
        Some(c) => serialize::write_record_fields(&c.schema, entity, skip, any, out),
    }
}

/// `validateEncoded` for a write to a collection of the schema (writes to
/// collections missing from the schema are not validated upstream).
/// `partial = false` for an insert of a new id: every non-optional property
/// must be present with the right JS type. `partial = true` for an update
/// or upsert: only the keys present are checked. Unknown properties are
/// accepted; enums and date strings are not checked.
///
/// Failures are `DBSerializationError` (400) with base `… Could not
/// transform the data: <JSON.stringify(change)> as type: record` and
/// context `Property <key> is invalid: …`. A `null` or primitive where a
/// record is required (a JS `TypeError` upstream) gives a 500
/// `TriplitError`.
pub fn validate_encoded(
    collection: &Collection,
    change: &Map<String, Value>,
    partial: bool,
) -> Result<(), TriplitError> {
    validate::validate_change(&collection.schema, change, partial)
}

/// The key a set item is stored under (`collectionKeyEncode`): strings as
/// is (enum checked), numbers in JS `String(n)` form, booleans
/// `"true"`/`"false"`, dates as ISO strings (from any `Date.parse`-able
/// string or epoch ms). A value of the wrong type is a
/// `DBSerializationError`.
pub fn set_key(item_type: &DataType, v: &Value) -> Result<String, TriplitError> {
    encode::collection_key_encode(item_type, v)
}

const STRING_OPS: &[&str] = &[
    "isDefined",
    "=",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "in",
    "nin",
    "like",
    "nlike",
];
const NUMBER_OPS: &[&str] = &["isDefined", "=", "!=", "<", ">", "<=", ">=", "in", "nin"];
const COMPARISON_OPS: &[&str] = &["isDefined", "=", "!=", "<", ">", "<=", ">="];
const RECORD_OPS: &[&str] = &["isDefined"];
const JSON_OPS: &[&str] = &[
    "isDefined",
    "=",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "in",
    "nin",
    "like",
    "nlike",
    "has",
    "!has",
];
const SET_STRING_OPS: &[&str] = &[
    "SET_isDefined",
    "SET_has",
    "SET_!has",
    "SET_=",
    "SET_!=",
    "SET_<",
    "SET_>",
    "SET_<=",
    "SET_>=",
    "SET_in",
    "SET_nin",
    "SET_like",
    "SET_nlike",
];
const SET_NUMBER_OPS: &[&str] = &[
    "SET_isDefined",
    "SET_has",
    "SET_!has",
    "SET_=",
    "SET_!=",
    "SET_<",
    "SET_>",
    "SET_<=",
    "SET_>=",
    "SET_in",
    "SET_nin",
];
const SET_COMPARISON_OPS: &[&str] = &[
    "SET_isDefined",
    "SET_has",
    "SET_!has",
    "SET_=",
    "SET_!=",
    "SET_<",
    "SET_>",
    "SET_<=",
    "SET_>=",
];

/// The operators a `where` filter may use on a path of type `t`
/// (`Type.supportedOperations`). Set operators carry the `SET_` prefix the
/// query preparation adds to every operator on a set path; upstream's list
/// for sets names `SET_isDefined` twice, this one once.
pub fn supported_operators(t: &DataType) -> &'static [&'static str] {
    match t {
        DataType::String(_) => STRING_OPS,
        DataType::Number(_) => NUMBER_OPS,
        DataType::Boolean(_) | DataType::Date(_) => COMPARISON_OPS,
        DataType::Record { .. } => RECORD_OPS,
        DataType::Json(_) => JSON_OPS,
        DataType::Set { items, .. } => match items.as_ref() {
            DataType::String(_) => SET_STRING_OPS,
            DataType::Number(_) => SET_NUMBER_OPS,
            _ => SET_COMPARISON_OPS,
        },
    }
}
