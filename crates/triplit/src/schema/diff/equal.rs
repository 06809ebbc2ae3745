//! What upstream's schema diff counts as equal: `Type.equal` for
//! attribute types, `!==` for config values, and the keyed comparisons of
//! relationships (`cardinality`, `hashQuery`), permissions and roles
//! (`JSON.stringify` of filters and matchers).

use serde_json::{Map, Value};

use crate::schema::hash::hash_object;
use crate::types::js::{js_entries, js_get, js_json_stringify, js_truthy};

/// `v?.[key]`.
pub(crate) fn field<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    v.and_then(|v| js_get(v, key))
}

/// `a.every(v => b.includes(v))` on enum arrays. A non-array `a` (only
/// possible on non-string types, where upstream throws) counts as not
/// included.
pub(crate) fn every_included(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Array(a)), Some(Value::Array(b))) => a
            .iter()
            .all(|v| b.iter().any(|w| strict_eq(Some(v), Some(w)))),
        _ => false,
    }
}

/// JavaScript `===` on JSON values (`None` is `undefined`): objects and
/// arrays are distinct references, so never equal.
pub(crate) fn strict_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (Some(Value::Array(_) | Value::Object(_)), _)
        | (_, Some(Value::Array(_) | Value::Object(_))) => false,
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// `typeof`.
fn type_of(v: Option<&Value>) -> &'static str {
    match v {
        None => "undefined",
        Some(Value::Null | Value::Array(_) | Value::Object(_)) => "object",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
    }
}

/// Upstream's `Type.equal`.
pub(crate) fn types_equal(a: &Value, b: &Value) -> bool {
    let name = |t: &Value| js_get(t, "type").and_then(Value::as_str).map(str::to_owned);
    let (Some(ta), Some(tb)) = (name(a), name(b)) else {
        return false;
    };
    if ta != tb {
        return false;
    }
    let config = |t| js_get(t, "config");
    match ta.as_str() {
        "boolean" | "date" | "number" | "json" => config_equal(config(a), config(b)),
        "record" => {
            let props = |t| js_get(t, "properties");
            let (pa, pb) = (props(a), props(b));
            let ea = pa.map(js_entries).unwrap_or_default();
            let eb = pb.map(js_entries).unwrap_or_default();
            ea.len() == eb.len()
                && ea.iter().all(|(k, va)| {
                    pb.and_then(|pb| js_get(pb, k))
                        .is_some_and(|vb| js_truthy(vb) && types_equal(va, vb))
                })
        }
        "set" => {
            let items = |t| js_get(t, "items");
            config_equal(config(a), config(b))
                && match (items(a), items(b)) {
                    (Some(ia), Some(ib)) => types_equal(ia, ib),
                    _ => false,
                }
        }
        "string" => {
            let en = |t| config(t).and_then(|c| js_get(c, "enum"));
            let (ea, eb) = (en(a), en(b));
            let (ta, tb) = (ea.is_some_and(js_truthy), eb.is_some_and(js_truthy));
            if ta != tb {
                return false;
            }
            if ta && tb {
                let len = |e: Option<&Value>| e.and_then(Value::as_array).map(Vec::len);
                if len(ea) != len(eb) || !every_included(ea, eb) {
                    return false;
                }
            }
            config_equal(config(a), config(b))
        }
        _ => false,
    }
}

/// Upstream's `typeConfigEqual`.
fn config_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    let get = field;
    let truthy = |v: Option<&Value>| v.is_some_and(js_truthy);
    truthy(get(a, "optional")) == truthy(get(b, "optional"))
        && truthy(get(a, "nullable")) == truthy(get(b, "nullable"))
        && default_equal(get(a, "default"), get(b, "default"))
}

/// Upstream's `typeDefaultEqual`: same `typeof`, default functions by
/// `func` and `args`, anything else by `===`.
fn default_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    if type_of(a) != type_of(b) {
        return false;
    }
    let is_func = |v: Option<&Value>| matches!(v, Some(Value::Object(m)) if m.contains_key("func"));
    if is_func(a) && is_func(b) {
        let get = field;
        if !strict_eq(get(a, "func"), get(b, "func")) {
            return false;
        }
        let (aa, ab) = (get(a, "args"), get(b, "args"));
        let units = |v: Option<&Value>| -> Option<Vec<Value>> {
            match v? {
                Value::Array(items) => Some(items.clone()),
                Value::String(s) => Some(
                    s.encode_utf16()
                        .map(|u| Value::String(String::from_utf16_lossy(&[u])))
                        .collect(),
                ),
                _ => None,
            }
        };
        let (ua, ub) = (units(aa), units(ab));
        if ua.as_ref().map(Vec::len) != ub.as_ref().map(Vec::len) {
            return false;
        }
        if let (Some(ua), Some(ub)) = (ua, ub) {
            return ua
                .iter()
                .zip(ub.iter())
                .all(|(x, y)| strict_eq(Some(x), Some(y)));
        }
        return true;
    }
    strict_eq(a, b)
}

/// `(!a && !b) || (a && b && same key count && every key of a equal)`:
/// the shape of upstream's `relationshipsEqual`, `permissionsEqual` and
/// `rolesEqual`.
pub(crate) fn keyed_equal(
    a: Option<&Value>,
    b: Option<&Value>,
    item_equal: fn(Option<&Value>, Option<&Value>) -> bool,
) -> bool {
    let (Some(a), Some(b)) = (a.filter(|v| js_truthy(v)), b.filter(|v| js_truthy(v))) else {
        return a.is_none_or(|v| !js_truthy(v)) && b.is_none_or(|v| !js_truthy(v));
    };
    let (ea, eb) = (js_entries(a), js_entries(b));
    ea.len() == eb.len() && ea.iter().all(|(k, va)| item_equal(Some(va), js_get(b, k)))
}

/// Both falsy: equal; one falsy: different; otherwise `then(a, b)`.
fn both_truthy(
    a: Option<&Value>,
    b: Option<&Value>,
    then: impl FnOnce(&Value, &Value) -> bool,
) -> bool {
    match (a.filter(|v| js_truthy(v)), b.filter(|v| js_truthy(v))) {
        (None, None) => true,
        (Some(a), Some(b)) => then(a, b),
        _ => false,
    }
}

const QUERY_PROPS: &[&str] = &[
    "after",
    "collectionName",
    "select",
    "include",
    "limit",
    "order",
    "vars",
    "where",
];

/// Upstream's `hashQuery`: `hashObject` of the query's own query keys.
fn hash_query(query: Option<&Value>) -> u32 {
    let kept: Map<String, Value> = query
        .map(js_entries)
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| QUERY_PROPS.contains(&k.as_str()))
        .map(|(k, v)| (k, v.clone()))
        .collect();
    hash_object(&Value::Object(kept))
}

pub(crate) fn relationship_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    both_truthy(a, b, |a, b| {
        strict_eq(js_get(a, "cardinality"), js_get(b, "cardinality"))
            && hash_query(js_get(a, "query")) == hash_query(js_get(b, "query"))
    })
}

pub(crate) fn operation_permissions_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    both_truthy(a, b, |a, b| {
        ["read", "insert", "update", "postUpdate", "delete"]
            .iter()
            .all(|op| {
                both_truthy(js_get(a, op), js_get(b, op), |pa, pb| {
                    both_truthy(js_get(pa, "filter"), js_get(pb, "filter"), |fa, fb| {
                        js_json_stringify(fa) == js_json_stringify(fb)
                    })
                })
            })
    })
}

pub(crate) fn role_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    both_truthy(a, b, |a, b| {
        keyed_equal(js_get(a, "match"), js_get(b, "match"), |x, y| {
            x.map(js_json_stringify) == y.map(js_json_stringify)
        })
    })
}
