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
//!
//! [`write_record_fields`] writes the same serialized form straight to JSON
//! bytes (what `/fetch` sends), without building the intermediate maps.

use serde_json::{Map, Value};
use std::borrow::Cow;

use crate::error::TriplitError;
use crate::jsnum::{js_number_to_json, js_string_to_number};
use crate::schema::DataType;

use super::date;
use super::encode::serialization_error;
use super::js::{js_entries, js_map_iter, js_normalize, js_string, js_truthy};

/// The decoded (JS-side) form of a stored value, borrowing the stored one.
enum Decoded<'a> {
    /// A value kept as is (strings, numbers, booleans, json, `null`).
    Plain(&'a Value),
    /// A `Date`: its time value, `None` for an invalid date.
    Date(Option<f64>),
    /// A `Set`'s items in insertion order.
    Set(Vec<Item>),
    /// A record's decoded properties (with their types), in JS order;
    /// keys borrowed from the stored entity where it has them.
    Record(Vec<(Cow<'a, str>, Decoded<'a>)>),
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
    let whole;
    let decoded = match record {
        // The entity is read in place (not copied into a `Value` first).
        DataType::Record { properties, .. } => {
            decode_record(properties, map_entries(entity), &|| {
                Value::Object(entity.clone())
            })?
        }
        _ => {
            whole = Value::Object(entity.clone());
            decode(record, &whole)?
        }
    };
    match serialize(record, decoded)? {
        Value::Object(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

/// Upstream's `Type.decode`.
fn decode<'a>(t: &DataType, v: &'a Value) -> Result<Decoded<'a>, TriplitError> {
    let mismatch = || deserialization_error(&t.error_label(), v, None);
    Ok(match t {
        DataType::Boolean(_) if v.is_boolean() => Decoded::Plain(v),
        DataType::Number(_) if v.is_number() => Decoded::Plain(v),
        DataType::String(_) if v.is_string() => Decoded::Plain(v),
        DataType::Json(_) => Decoded::Plain(v),
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
            decode_record(properties, value_entries(v), &|| v.clone())?
        }
        _ => return Err(mismatch()),
    })
}

/// A record's entries (in JavaScript key order) decoded by its
/// properties; `whole` is the record, for the error message.
fn decode_record<'a>(
    properties: &[(String, DataType)],
    entries: Vec<(Cow<'a, str>, &'a Value)>,
    whole: &dyn Fn() -> Value,
) -> Result<Decoded<'a>, TriplitError> {
    let mut out = Vec::new();
    for (key, value) in entries {
        let Some((_, prop)) = properties.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        if prop.is_optional() && value.is_null() {
            out.push((key, Decoded::Plain(value)));
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

/// An object's entries in JS order, keys borrowed.
fn map_entries(m: &Map<String, Value>) -> Vec<(Cow<'_, str>, &Value)> {
    js_map_iter(m)
        .map(|(k, v)| (Cow::Borrowed(k.as_str()), v))
        .collect()
}

/// [`js_entries`] with keys borrowed where the value has them.
fn value_entries(v: &Value) -> Vec<(Cow<'_, str>, &Value)> {
    match v {
        Value::Object(m) => map_entries(m),
        _ => js_entries(v)
            .into_iter()
            .map(|(k, x)| (Cow::Owned(k), x))
            .collect(),
    }
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
        Decoded::Plain(v) => js_normalize(v),
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
                out.insert(key.into_owned(), serialize(prop, value)?);
            }
            Value::Object(out)
        }
    })
}

/// [`serialize_record`] written as the fields of a JSON object (`"k":v`
/// pairs separated by commas, no braces) after `*any` earlier ones. Fields
/// for which `skip` holds are serialized (so their errors are the same) but
/// not written. Bytes equal `serde_json::to_vec` of the map
/// [`serialize_record`] returns, minus the skipped keys.
pub fn write_record_fields(
    record: &DataType,
    entity: &Map<String, Value>,
    skip: &dyn Fn(&str) -> bool,
    any: &mut bool,
    out: &mut Vec<u8>,
) -> Result<(), TriplitError> {
    let DataType::Record { properties, .. } = record else {
        // Not a record type (never a collection's schema): the map form.
        let map = serialize_record(record, entity)?;
        return write_normalized_fields(&map, skip, any, out);
    };
    let decoded = decode_record(properties, map_entries(entity), &|| {
        Value::Object(entity.clone())
    })?;
    let Decoded::Record(props) = decoded else {
        return Ok(());
    };
    write_props(record, &props, skip, any, out)
}

/// A decoded record's properties as object fields, as [`serialize`] keeps
/// them (known properties; optional `null`s omitted). A skipped field is
/// still written, to a scratch buffer, so its errors are the same.
fn write_props(
    record: &DataType,
    props: &[(Cow<'_, str>, Decoded)],
    skip: &dyn Fn(&str) -> bool,
    any: &mut bool,
    out: &mut Vec<u8>,
) -> Result<(), TriplitError> {
    let mut scratch = Vec::new();
    for (key, value) in props {
        let Some(prop) = record.property(key) else {
            continue;
        };
        if prop.is_optional() && matches!(value, Decoded::Plain(Value::Null)) {
            continue;
        }
        if skip(key) {
            scratch.clear();
            write_decoded(prop, value, &mut scratch)?;
            continue;
        }
        field_key(key, any, out)?;
        write_decoded(prop, value, out)?;
    }
    Ok(())
}

/// `js_normalize_map(map)` written as object fields, like
/// [`write_record_fields`] (the schemaless `/fetch`).
pub fn write_normalized_fields(
    map: &Map<String, Value>,
    skip: &dyn Fn(&str) -> bool,
    any: &mut bool,
    out: &mut Vec<u8>,
) -> Result<(), TriplitError> {
    for (key, value) in js_map_iter(map) {
        if !skip(key) {
            field_key(key, any, out)?;
            write_normalized(value, out)?;
        }
    }
    Ok(())
}

/// `,"key":` (no comma before the first field).
pub fn field_key(key: &str, any: &mut bool, out: &mut Vec<u8>) -> Result<(), TriplitError> {
    if std::mem::replace(any, true) {
        out.push(b',');
    }
    write_json(&key, out)?;
    out.push(b':');
    Ok(())
}

fn write_json<T: serde::Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) -> Result<(), TriplitError> {
    serde_json::to_writer(out, v).map_err(|_| crash())
}

/// [`js_normalize`] written as JSON.
pub fn write_normalized(v: &Value, out: &mut Vec<u8>) -> Result<(), TriplitError> {
    match v {
        Value::Object(m) => {
            out.push(b'{');
            let mut any = false;
            write_normalized_fields(m, &|_| false, &mut any, out)?;
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_normalized(item, out)?;
            }
            out.push(b']');
        }
        Value::Number(n) => write_json(&js_number_to_json(n.as_f64().unwrap_or(f64::NAN)), out)?,
        other => write_json(other, out)?,
    }
    Ok(())
}

/// [`serialize`] written as JSON.
fn write_decoded(t: &DataType, d: &Decoded, out: &mut Vec<u8>) -> Result<(), TriplitError> {
    match d {
        Decoded::Plain(v) => write_normalized(v, out)?,
        Decoded::Date(ms) => write_json(&iso(*ms)?, out)?,
        Decoded::Set(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match item {
                    Item::Str(s) => write_json(s, out)?,
                    Item::Num(n) => write_json(&js_number_to_json(*n), out)?,
                    Item::Bool(b) => write_json(b, out)?,
                    Item::Date(ms) => write_json(&iso(*ms)?, out)?,
                }
            }
            out.push(b']');
        }
        Decoded::Record(props) => {
            out.push(b'{');
            write_props(t, props, &|_| false, &mut false, out)?;
            out.push(b'}');
        }
    }
    Ok(())
}
