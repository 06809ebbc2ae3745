//! Stored entity → HTTP "serialized" JSON: upstream's
//! `serializeEntity(schema, Type.decode(schema, entity))`, which `/fetch`,
//! `/insert` and `/bulk-insert` answer with.
//!
//! Decoding drops properties the schema does not know, turns sets into the
//! live keys converted back to their item type (`Number(key)`,
//! `key === "true"`, `new Date(key)`, deduplicated like a JS `Set`), and
//! keeps optional `null`s, which serializing then omits. Dates go through
//! `new Date(string).toISOString()`, so stored dates are normalised and an
//! unparseable one fails with `… Invalid Date as type: date`.

use serde_json::{Map, Value};

use crate::error::TriplitError;
use crate::jsnum::{js_number_to_json, js_string_to_number};
use crate::schema::DataType;

use super::date;
use super::encode::serialization_error;
use super::js::{js_entries, js_map_entries, js_normalize, js_string, js_truthy};

/// The decoded (JS-side) form of a stored value.
enum Decoded {
    /// A value kept as is (strings, numbers, booleans, json, `null`).
    Plain(Value),
    /// A `Date`: its time value, `None` for an invalid date.
    Date(Option<f64>),
    /// A `Set`'s items in insertion order.
    Set(Vec<Item>),
    /// A record's decoded properties (with their types), in JS order.
    Record(Vec<(String, Decoded)>),
}

/// One decoded set item.
enum Item {
    Str(String),
    Num(f64),
    Bool(bool),
    Date(Option<f64>),
}

impl Item {
    /// JS `SameValueZero`, as a `Set` compares primitives; dates are objects
    /// and never equal.
    fn same(&self, other: &Item) -> bool {
        match (self, other) {
            (Item::Str(a), Item::Str(b)) => a == b,
            (Item::Num(a), Item::Num(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Item::Bool(a), Item::Bool(b)) => a == b,
            _ => false,
        }
    }
}

/// An error while serializing a fetched entity that upstream would throw as
/// a plain JS exception (answered as a 500 by `/fetch`).
fn crash() -> TriplitError {
    TriplitError::internal("An unknown error occurred processing your request.")
}

/// `DBDeserializationError(targetType, value)`.
fn deserialization_error(target: &str, value: &Value, context: Option<String>) -> TriplitError {
    TriplitError::new(
        "DBDeserializationError",
        400,
        format!(
            "There was an error deserializing a database value to JS. Could not transform the data: {} as type: {target}",
            js_string(Some(value))
        ),
        context,
    )
}

/// Serializes a stored entity of a collection with record type `record`.
pub fn serialize_record(
    record: &DataType,
    entity: &Map<String, Value>,
) -> Result<Map<String, Value>, TriplitError> {
    let decoded = match record {
        // The entity is read in place (not copied into a `Value` first).
        DataType::Record { properties, .. } => {
            decode_record(properties, js_map_entries(entity), &|| {
                Value::Object(entity.clone())
            })?
        }
        _ => decode(record, &Value::Object(entity.clone()))?,
    };
    match serialize(record, decoded)? {
        Value::Object(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

/// Upstream's `Type.decode`.
fn decode(t: &DataType, v: &Value) -> Result<Decoded, TriplitError> {
    let mismatch = || deserialization_error(&t.error_label(), v, None);
    Ok(match t {
        DataType::Boolean(_) if v.is_boolean() => Decoded::Plain(v.clone()),
        DataType::Number(_) if v.is_number() => Decoded::Plain(v.clone()),
        DataType::String(_) if v.is_string() => Decoded::Plain(v.clone()),
        DataType::Json(_) => Decoded::Plain(v.clone()),
        DataType::Date(_) => match v {
            Value::String(s) => Decoded::Date(date::parse(s)),
            _ => return Err(mismatch()),
        },
        DataType::Set { items, .. } => match v {
            // `Object.entries(null)` throws a TypeError.
            Value::Null => return Err(crash()),
            Value::Object(_) | Value::Array(_) => {
                let mut out: Vec<Item> = Vec::new();
                for (key, live) in js_entries(v) {
                    if !js_truthy(live) {
                        continue;
                    }
                    let item = match items.as_ref() {
                        DataType::Number(_) => Item::Num(js_string_to_number(&key)),
                        DataType::Boolean(_) => Item::Bool(key == "true"),
                        DataType::Date(_) => Item::Date(date::parse(&key)),
                        _ => Item::Str(key),
                    };
                    if !out.iter().any(|x| x.same(&item)) {
                        out.push(item);
                    }
                }
                Decoded::Set(out)
            }
            _ => return Err(mismatch()),
        },
        DataType::Record { properties, .. } => {
            decode_record(properties, js_entries(v), &|| v.clone())?
        }
        _ => return Err(mismatch()),
    })
}

/// A record's entries (in JavaScript key order) decoded by its
/// properties; `whole` is the record, for the error message.
fn decode_record(
    properties: &[(String, DataType)],
    entries: Vec<(String, &Value)>,
    whole: &dyn Fn() -> Value,
) -> Result<Decoded, TriplitError> {
    let mut out = Vec::new();
    for (key, value) in entries {
        let Some((_, prop)) = properties.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        if prop.is_optional() && value.is_null() {
            out.push((key, Decoded::Plain(Value::Null)));
            continue;
        }
        match decode(prop, value) {
            Ok(d) => out.push((key, d)),
            Err(e) if e.name == "DBDeserializationError" => {
                return Err(deserialization_error(
                    "record",
                    &whole(),
                    Some(format!(
                        "Could not decode property: '{key}'. Error: {}",
                        e.message()
                    )),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Decoded::Record(out))
}

fn invalid_date() -> TriplitError {
    serialization_error("date", Some(&Value::String("Invalid Date".into())), None)
}

fn iso(ms: Option<f64>) -> Result<Value, TriplitError> {
    ms.and_then(date::to_iso_string)
        .map(Value::String)
        .ok_or_else(invalid_date)
}

/// Upstream's `Type.serialize(type, decoded, 'decoded')`.
fn serialize(t: &DataType, d: Decoded) -> Result<Value, TriplitError> {
    Ok(match d {
        Decoded::Plain(v) => js_normalize(&v),
        Decoded::Date(ms) => iso(ms)?,
        Decoded::Set(items) => Value::Array(
            items
                .into_iter()
                .map(|i| match i {
                    Item::Str(s) => Ok(Value::String(s)),
                    Item::Num(n) => Ok(js_number_to_json(n)),
                    Item::Bool(b) => Ok(Value::Bool(b)),
                    Item::Date(ms) => iso(ms),
                })
                .collect::<Result<_, _>>()?,
        ),
        Decoded::Record(props) => {
            let mut out = Map::new();
            for (key, value) in props {
                let Some(prop) = t.property(&key) else {
                    continue;
                };
                if prop.is_optional() && matches!(value, Decoded::Plain(Value::Null)) {
                    continue;
                }
                out.insert(key, serialize(prop, value)?);
            }
            Value::Object(out)
        }
    })
}
