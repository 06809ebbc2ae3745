//! The HTTP insert path: upstream's `parseInsert` (`struct` + `assign` with
//! defaults, then `encode`) and the set-key encoding it shares with the
//! update proxy.
//!
//! Where upstream's JS throws a `TypeError` or `RangeError` (a required
//! nested record that is missing or `null`, an epoch-ms date out of range)
//! the result is [`crash`]: the 500 `TriplitError` the server's
//! `errorResponse` turns any non-Triplit exception into on `/insert` and
//! `/bulk-insert`.

use serde_json::{Map, Value};

use crate::error::TriplitError;
use crate::ids;
use crate::jsnum::js_number_to_string;
use crate::schema::{DataType, DefaultFunc, DefaultValue};

use super::DefaultsContext;
use super::date;
use super::js::{has_no_value, is_js_object, js_entries, js_get, js_string};

/// The error `/insert` and `/bulk-insert` answer when upstream's insert
/// code throws something other than a `TriplitError`.
pub fn crash() -> TriplitError {
    TriplitError::internal("Could not insert entity. An unknown error occurred.")
}

/// `DBSerializationError(targetType, value)`.
pub fn serialization_error(
    target: &str,
    value: Option<&Value>,
    context: Option<String>,
) -> TriplitError {
    TriplitError::serialization(
        format!(
            "There was an error serializing an input to an acceptable format. Could not transform the data: {} as type: {target}",
            js_string(value)
        ),
        context,
    )
}

/// `Type.assign(record, Type.struct(record), input)` followed by
/// `recursivelyDeleteUndefinedKeys`: the schema's properties in schema
/// order, each from the input or its default; unknown input keys dropped.
pub fn assign_record(
    properties: &[(String, DataType)],
    input: Option<&Value>,
    ctx: &DefaultsContext,
) -> Result<Map<String, Value>, TriplitError> {
    let mut out = Map::new();
    for (key, prop) in properties {
        // `input[key]` throws on `undefined`/`null`.
        let value = match input {
            None | Some(Value::Null) => return Err(crash()),
            Some(v) => js_get(v, key),
        };
        if prop.is_optional() && has_no_value(value) && prop.config().default.is_none() {
            if let Some(v) = value {
                out.insert(key.clone(), v.clone());
            }
            continue;
        }
        match prop {
            DataType::Record { properties, .. } => {
                out.insert(
                    key.clone(),
                    Value::Object(assign_record(properties, value, ctx)?),
                );
            }
            _ => {
                let v = match value {
                    Some(v) => Some(v.clone()),
                    None => default_value(prop, ctx)?,
                };
                if let Some(v) = v {
                    out.insert(key.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

/// Upstream's `calcDefaultValue` for a property's `config.default`.
pub fn default_value(t: &DataType, ctx: &DefaultsContext) -> Result<Option<Value>, TriplitError> {
    Ok(match &t.config().default {
        None => None,
        Some(DefaultValue::Literal(v)) => Some(v.clone()),
        Some(DefaultValue::Func { func, args }) => Some(match func {
            DefaultFunc::Now => Value::String(now_iso(ctx)),
            DefaultFunc::SetEmpty => Value::Object(Map::new()),
            f => {
                let args = args.clone().unwrap_or(Value::Null);
                match ids::default_id(f.id(), &args, ctx.rng, ctx.time) {
                    Some(id) => Value::String(id?),
                    None => return Ok(None),
                }
            }
        }),
    })
}

fn now_iso(ctx: &DefaultsContext) -> String {
    date::to_iso_string(ctx.time.now_ms() as f64).unwrap_or_default()
}

/// Upstream's `Type.encode(type, input)`: `Ok(None)` is `undefined` (an
/// optional type given no value).
pub fn encode(t: &DataType, input: &Value) -> Result<Option<Value>, TriplitError> {
    if t.is_optional() && input.is_null() {
        return Ok(None);
    }
    let mismatch = || serialization_error(&t.error_label(), Some(input), None);
    Ok(Some(match t {
        DataType::Boolean(_) if input.is_boolean() => input.clone(),
        DataType::Number(_) if input.is_number() => input.clone(),
        DataType::Json(_) if !input.is_null() => input.clone(),
        DataType::String(c) => match (input, &c.enum_values) {
            (Value::String(s), Some(values)) if values.contains(s) => input.clone(),
            (Value::String(_), None) => input.clone(),
            _ => return Err(mismatch()),
        },
        DataType::Date(_) => Value::String(encode_date(input)?.ok_or_else(mismatch)?),
        DataType::Record { properties, .. } if is_js_object(input) => {
            let mut out = Map::new();
            for (key, v) in js_entries(input) {
                let Some((_, prop)) = properties.iter().find(|(k, _)| *k == key) else {
                    return Err(serialization_error(
                        "record",
                        Some(input),
                        Some(format!("Unrecognized property: {key}")),
                    ));
                };
                if prop.is_optional() && v.is_null() {
                    out.insert(key, Value::Null);
                    continue;
                }
                match encode(prop, v) {
                    Ok(Some(e)) => {
                        out.insert(key, e);
                    }
                    Ok(None) => {}
                    Err(e) if e.name == "DBSerializationError" => {
                        return Err(serialization_error(
                            "record",
                            Some(input),
                            Some(format!(
                                "Could not encode property: '{key}'. Error: {}",
                                e.message()
                            )),
                        ));
                    }
                    Err(e) => return Err(e),
                }
            }
            Value::Object(out)
        }
        DataType::Set { items, .. } => match input {
            Value::Array(list) => {
                let mut out = Map::new();
                for item in list {
                    out.insert(collection_key_encode(items, item)?, Value::Bool(true));
                }
                Value::Object(out)
            }
            // An already encoded set is accepted as is.
            Value::Object(_) => input.clone(),
            _ => return Err(mismatch()),
        },
        _ => return Err(mismatch()),
    }))
}

/// A date input (`Date.parse`-able string or epoch ms) as its ISO string;
/// `Ok(None)` for input upstream rejects with a serialization error.
fn encode_date(input: &Value) -> Result<Option<String>, TriplitError> {
    match input {
        Value::String(s) => Ok(date::parse(s).and_then(date::to_iso_string)),
        // `new Date(ms).toISOString()` throws a RangeError out of range.
        Value::Number(n) => match n.as_f64() {
            Some(ms) => date::to_iso_string(ms).map(Some).ok_or_else(crash),
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

/// Upstream's `collectionKeyEncode`: `encode(items, v).toString()`.
pub fn collection_key_encode(items: &DataType, v: &Value) -> Result<String, TriplitError> {
    if !items.is_primitive() {
        return Err(TriplitError::internal(
            "Cannot encode collection key for non-primitive type",
        ));
    }
    match encode(items, v)? {
        Some(Value::String(s)) => Ok(s),
        Some(Value::Number(n)) => Ok(js_number_to_string(n.as_f64().unwrap_or(f64::NAN))),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        // `undefined.toString()`: an optional item type given `null`.
        _ => Err(crash()),
    }
}
