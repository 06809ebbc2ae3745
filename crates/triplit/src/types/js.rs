//! The few JavaScript value semantics Triplit's type code leaks into its
//! wire output and error messages.
//!
//! Upstream runs on JS objects, so everything it emits enumerates keys in
//! JS order (array-index keys first, ascending, then the rest in insertion
//! order), prints values with `String(value)` inside messages and with
//! `JSON.stringify` inside others. These helpers reproduce exactly that on
//! `serde_json` values. A JS `undefined` is modelled as `None`.

use serde_json::{Map, Value};

use crate::jsnum::{js_number_to_json, js_number_to_string};

/// Whether `key` is an array index (a canonical integer in `0..2^32-1`),
/// which JS enumerates before every other key of an object.
pub fn is_array_index(key: &str) -> bool {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 10 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if b.len() > 1 && b[0] == b'0' {
        return false;
    }
    key.parse::<u64>().is_ok_and(|n| n < u64::from(u32::MAX))
}

/// The keys of `m` in JS enumeration order.
pub fn js_key_order(m: &Map<String, Value>) -> Vec<&String> {
    let mut index: Vec<(u64, &String)> = Vec::new();
    let mut rest = Vec::new();
    for k in m.keys() {
        if is_array_index(k) {
            index.push((k.parse().unwrap_or(0), k));
        } else {
            rest.push(k);
        }
    }
    index.sort_by_key(|(n, _)| *n);
    index.into_iter().map(|(_, k)| k).chain(rest).collect()
}

/// The `for…in` / `Object.entries` view of a value: an object's entries in
/// JS order, an array's `(index, item)` pairs, nothing for primitives.
pub fn js_entries(v: &Value) -> Vec<(String, &Value)> {
    match v {
        Value::Object(m) => js_map_entries(m),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, x)| (i.to_string(), x))
            .collect(),
        _ => Vec::new(),
    }
}

/// [`js_entries`] of an object.
pub fn js_map_entries(m: &Map<String, Value>) -> Vec<(String, &Value)> {
    js_map_iter(m).map(|(k, x)| (k.clone(), x)).collect()
}

/// The entries of `m` in JS enumeration order, borrowed. Builds the order
/// (and looks each key up again) only when some key is an array index;
/// otherwise JS order is insertion order.
pub fn js_map_iter(m: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    let reordered = m.keys().any(|k| is_array_index(k)).then(|| js_key_order(m));
    let as_stored = reordered.is_none().then(|| m.iter());
    as_stored.into_iter().flatten().chain(
        reordered
            .into_iter()
            .flatten()
            .map(move |k| (k, &m[k.as_str()])),
    )
}

/// `value[key]` for an object or array (arrays by index only); `None` is
/// `undefined`.
pub fn js_get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(key),
        Value::Array(a) if is_array_index(key) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    }
}

/// `typeof v === 'object' && v !== null` (arrays included).
pub fn is_js_object(v: &Value) -> bool {
    matches!(v, Value::Object(_) | Value::Array(_))
}

/// Upstream's `hasNoValue`: `null` or `undefined`.
pub fn has_no_value(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null))
}

/// JS truthiness.
pub fn js_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `String(value)` as used in upstream's error messages (`${value}`).
pub fn js_string(v: Option<&Value>) -> String {
    match v {
        None => "undefined".into(),
        Some(v) => js_string_value(v, true),
    }
}

fn js_string_value(v: &Value, top: bool) -> String {
    match v {
        // `[null].join()` is "" but `String(null)` is "null".
        Value::Null => if top { "null" } else { "" }.into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => js_number_to_string(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| js_string_value(x, false))
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".into(),
    }
}

/// `JSON.stringify(value)`: keys in JS order, numbers as JS prints them.
pub fn js_json_stringify(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.is_finite() {
                out.push_str(&js_number_to_string(f));
            } else {
                out.push_str("null");
            }
        }
        Value::String(s) => out.push_str(&Value::String(s.clone()).to_string()),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, k) in js_key_order(m).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(x) = m.get(k) {
                    write_json(x, out);
                }
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The value as a JS program would hold it after `JSON.parse`: object keys
/// in JS order (recursively) and numbers as doubles (`1.0` → `1`).
pub fn js_normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(js_normalize_map(m)),
        Value::Array(a) => Value::Array(a.iter().map(js_normalize).collect()),
        Value::Number(n) => js_number_to_json(n.as_f64().unwrap_or(f64::NAN)),
        other => other.clone(),
    }
}

/// [`js_normalize`] for an object's map.
pub fn js_normalize_map(m: &Map<String, Value>) -> Map<String, Value> {
    js_key_order(m)
        .into_iter()
        .filter_map(|k| m.get(k).map(|x| (k.clone(), js_normalize(x))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn array_index_keys() {
        for k in ["0", "1", "10", "4294967294"] {
            assert!(is_array_index(k), "{k}");
        }
        for k in [
            "",
            "01",
            "-1",
            "1.5",
            "4294967295",
            "99999999999",
            "a",
            " 1",
        ] {
            assert!(!is_array_index(k), "{k}");
        }
    }

    #[test]
    fn key_order_and_stringify() {
        let v = json!({"b": 1, "2": 2, "a": [1.0, 1e21, null], "1": {"z": 0.1, "0": true}});
        assert_eq!(
            js_json_stringify(&v),
            r#"{"1":{"0":true,"z":0.1},"2":2,"b":1,"a":[1,1e+21,null]}"#
        );
        let n = js_normalize(&v);
        assert_eq!(
            n.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["1".into(), "2".into(), "b".into(), "a".into()])
        );
        assert_eq!(n["a"][0], json!(1));
    }

    #[test]
    fn map_entries_in_js_order() {
        let keys = |v: Value| {
            let m = v.as_object().unwrap().clone();
            let it: Vec<String> = js_map_iter(&m).map(|(k, _)| k.clone()).collect();
            let order: Vec<String> = js_key_order(&m).into_iter().cloned().collect();
            assert_eq!(it, order);
            let values: Vec<Value> = js_map_iter(&m).map(|(_, x)| x.clone()).collect();
            let looked_up: Vec<Value> = it.iter().map(|k| m[k.as_str()].clone()).collect();
            assert_eq!(values, looked_up);
            it
        };
        // Insertion order when no key is an array index.
        assert_eq!(keys(json!({"b": 1, "a": 2, "01": 3})), ["b", "a", "01"]);
        // Array indices first, ascending, then the rest as inserted.
        assert_eq!(
            keys(json!({"b": 1, "10": 2, "a": 3, "2": 4})),
            ["2", "10", "b", "a"]
        );
        assert!(keys(json!({})).is_empty());
    }

    #[test]
    fn string_conversion() {
        assert_eq!(js_string(None), "undefined");
        assert_eq!(js_string(Some(&json!(null))), "null");
        assert_eq!(
            js_string(Some(&json!(["a", ["b", null], {"x": 1}]))),
            "a,b,,[object Object]"
        );
        assert_eq!(js_string(Some(&json!(1e21))), "1e+21");
        assert_eq!(js_string(Some(&json!({}))), "[object Object]");
    }

    #[test]
    fn truthiness() {
        assert!(!js_truthy(&json!(0)) && !js_truthy(&json!("")) && !js_truthy(&json!(false)));
        assert!(js_truthy(&json!([])) && js_truthy(&json!({})) && js_truthy(&json!(-1)));
    }
}
