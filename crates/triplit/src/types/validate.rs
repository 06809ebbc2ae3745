//! Upstream's `Type.validateEncoded`, run on every write that reaches the
//! entity store (`CHANGES`, `/apply-changes`, `/update`, and the commit of
//! `/insert`): JS-type checks only, no enum and no date parsing.
//!
//! A failure surfaces as `DBSerializationError('record',
//! JSON.stringify(change), reason)` (`db.ts` `validateEntityChange`), e.g.
//! context `Property text is invalid: Encoded value 5 is not valid for type
//! string.`

use serde_json::{Map, Value};

use crate::error::TriplitError;
use crate::schema::DataType;

use super::encode::serialization_error;
use super::js::{has_no_value, js_get, js_json_stringify, js_string};

/// Why validation stopped: a reason, or a JS exception upstream would hit.
enum Invalid {
    Reason(String),
    Crash,
}

/// A non-Triplit exception during validation (a `TypeError` upstream on a
/// `null` record or `key in 5`); handlers answer it as their 500.
fn crash() -> TriplitError {
    TriplitError::internal("An unknown error occurred processing your request.")
}

/// Validates one entity change of a collection whose record type is
/// `record`: a full insert when `partial` is false, an update or upsert
/// when true.
pub fn validate_change(
    record: &DataType,
    change: &Map<String, Value>,
    partial: bool,
) -> Result<(), TriplitError> {
    // The change is read in place; it is copied only into an error.
    let checked = match record {
        DataType::Record { properties, .. } => validate_map(properties, change, partial),
        _ => validate(record, Some(&Value::Object(change.clone())), partial),
    };
    match checked {
        Ok(()) => Ok(()),
        Err(Invalid::Crash) => Err(crash()),
        Err(Invalid::Reason(reason)) => Err(serialization_error(
            "record",
            Some(&Value::String(js_json_stringify(&Value::Object(
                change.clone(),
            )))),
            Some(reason),
        )),
    }
}

fn mismatch(t: &DataType, v: Option<&Value>) -> Result<(), Invalid> {
    Err(Invalid::Reason(format!(
        "Encoded value {} is not valid for type {}.",
        js_string(v),
        t.error_label()
    )))
}

fn validate(t: &DataType, v: Option<&Value>, partial: bool) -> Result<(), Invalid> {
    let ok = match (t, v) {
        (DataType::Boolean(_), Some(Value::Bool(_)))
        | (DataType::Number(_), Some(Value::Number(_)))
        | (DataType::String(_), Some(Value::String(_)))
        | (DataType::Date(_), Some(Value::String(_)))
        | (DataType::Set { .. }, Some(Value::Object(_) | Value::Array(_)))
        | (DataType::Json(_), Some(_)) => true,
        (DataType::Record { properties, .. }, _) => return validate_record(properties, v, partial),
        _ => false,
    };
    if ok { Ok(()) } else { mismatch(t, v) }
}

/// [`validate_record`] of an object.
fn validate_map(
    properties: &[(String, DataType)],
    m: &Map<String, Value>,
    partial: bool,
) -> Result<(), Invalid> {
    for (key, prop) in properties {
        let value = m.get(key);
        if prop.is_optional() && has_no_value(value) {
            continue;
        }
        if partial && !m.contains_key(key) {
            continue;
        }
        validate(prop, value, partial).map_err(|e| in_property(key, e))?;
    }
    Ok(())
}

fn in_property(key: &str, e: Invalid) -> Invalid {
    match e {
        Invalid::Reason(r) => Invalid::Reason(format!("Property {key} is invalid: {r}")),
        Invalid::Crash => Invalid::Crash,
    }
}

fn validate_record(
    properties: &[(String, DataType)],
    v: Option<&Value>,
    partial: bool,
) -> Result<(), Invalid> {
    if let Some(Value::Object(m)) = v {
        return validate_map(properties, m, partial);
    }
    // Not an object: an array, a primitive, `null` or missing.
    for (key, prop) in properties {
        // `encoded[key]` and `key in encoded` throw on `null`/`undefined`.
        let Some(obj) = v.filter(|x| !x.is_null()) else {
            return Err(Invalid::Crash);
        };
        let value = js_get(obj, key);
        if prop.is_optional() && has_no_value(value) {
            continue;
        }
        if partial {
            // `key in 5` throws; on an array `in` sees its indexes.
            let present = match obj {
                Value::Array(_) => value.is_some(),
                _ => return Err(Invalid::Crash),
            };
            if !present {
                continue;
            }
        }
        validate(prop, value, partial).map_err(|e| in_property(key, e))?;
    }
    Ok(())
}
