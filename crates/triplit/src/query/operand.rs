//! The right-hand side of a prepared filter statement, as upstream's
//! engine holds it.
//!
//! Preparation turns a filter value into what JavaScript would hold:
//! arrays become `Set`s (so `in` tests membership with `SameValueZero`), a
//! static variable that resolves to nothing becomes `undefined`, and every
//! other JSON value stays as it is. A string starting with `$` is a
//! variable wherever upstream's `isValueVariable` says so, including one a
//! static variable resolved to; it stays a plain string here and is bound
//! at run time like upstream binds it.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use crate::jsnum::js_number_to_string;
use crate::types::js::{js_json_stringify, js_truthy};

/// A filter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// JavaScript `undefined`: a variable that resolved to nothing.
    Undefined,
    /// A JSON value (objects stay plain objects).
    Json(Value),
    /// A JavaScript `Set` made from an array, in insertion order, with
    /// primitives deduplicated.
    Set(JsSet),
}

/// A JavaScript `Set` of JSON values: insertion order kept, primitives
/// deduplicated and hashed for `SameValueZero` membership (objects and
/// arrays are references, never found).
#[derive(Debug, Clone)]
pub struct JsSet(Arc<SetData>);

#[derive(Debug)]
struct SetData {
    items: Vec<Value>,
    index: HashSet<Member>,
}

#[derive(Debug, Hash, PartialEq, Eq)]
enum Member {
    Null,
    Bool(bool),
    Number(u64),
    String(String),
}

fn member_key(v: &Value) -> Option<Member> {
    Some(match v {
        Value::Null => Member::Null,
        Value::Bool(b) => Member::Bool(*b),
        Value::String(s) => Member::String(s.clone()),
        // `SameValueZero`: -0 is 0.
        Value::Number(n) => Member::Number((n.as_f64()? + 0.0).to_bits()),
        Value::Array(_) | Value::Object(_) => return None,
    })
}

impl JsSet {
    /// `new Set(items)`.
    pub fn new(items: impl IntoIterator<Item = Value>) -> JsSet {
        let mut data = SetData {
            items: Vec::new(),
            index: HashSet::new(),
        };
        for item in items {
            match member_key(&item) {
                Some(k) => {
                    if data.index.insert(k) {
                        data.items.push(item);
                    }
                }
                None => data.items.push(item),
            }
        }
        JsSet(Arc::new(data))
    }

    /// `set.has(value)`.
    pub fn has(&self, v: &Value) -> bool {
        member_key(v).is_some_and(|k| self.0.index.contains(&k))
    }

    /// The members in insertion order.
    pub fn items(&self) -> &[Value] {
        &self.0.items
    }
}

impl PartialEq for JsSet {
    fn eq(&self, other: &JsSet) -> bool {
        self.items() == other.items()
    }
}

impl Operand {
    /// `null` or `undefined` (upstream's `hasNoValue`).
    pub fn is_empty(&self) -> bool {
        matches!(self, Operand::Undefined | Operand::Json(Value::Null))
    }

    /// JavaScript truthiness (`!!value`).
    pub fn truthy(&self) -> bool {
        match self {
            Operand::Undefined => false,
            Operand::Json(v) => js_truthy(v),
            Operand::Set(_) => true,
        }
    }

    /// The variable this value names, when it is a string starting with
    /// `$` (upstream's `isValueVariable`).
    pub fn as_variable(&self) -> Option<&str> {
        match self {
            Operand::Json(Value::String(s)) if s.starts_with('$') => Some(s),
            _ => None,
        }
    }

    /// A `Set` built from `items` the way `new Set(array)` does.
    pub fn set_from(items: impl IntoIterator<Item = Value>) -> Operand {
        Operand::Set(JsSet::new(items))
    }

    /// Preparation's value normalisation: an array becomes a `Set`.
    pub fn from_prepared(v: Option<Value>) -> Operand {
        match v {
            None => Operand::Undefined,
            Some(Value::Array(items)) => Operand::set_from(items),
            Some(v) => Operand::Json(v),
        }
    }

    /// Upstream's `encodeHashValue` (what query hashing and deduplication
    /// see): a `Set` is an object that `JSON.stringify`s to `{}`.
    pub fn hash_encoding(&self) -> String {
        match self {
            Operand::Undefined => "a".into(),
            Operand::Set(_) => "c{}".into(),
            Operand::Json(v) => json_hash_encoding(v),
        }
    }
}

/// `encodeHashValue` of a JSON value.
pub fn json_hash_encoding(v: &Value) -> String {
    match v {
        Value::Null => "b".into(),
        Value::Bool(b) => format!("g{b}"),
        Value::String(s) => format!("f{s}"),
        Value::Number(n) => format!("e{}", js_number_to_string(n.as_f64().unwrap_or(f64::NAN))),
        Value::Array(_) => format!("d{}", js_json_stringify(v)),
        Value::Object(_) => format!("c{}", js_json_stringify(v)),
    }
}

/// JavaScript's `SameValueZero` on JSON values: primitives by value
/// (numbers numerically), objects and arrays never (they are distinct
/// references).
pub fn same_value_zero(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => false,
        _ => a == b,
    }
}

/// The property key JavaScript uses for `object[value]` (`String(value)`).
pub fn property_key(v: &Value) -> String {
    crate::types::js::js_string(Some(v))
}

/// Properties every plain JavaScript object inherits from
/// `Object.prototype`; `object[key]` is truthy for them.
const INHERITED: &[&str] = &[
    "constructor",
    "hasOwnProperty",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toLocaleString",
    "toString",
    "valueOf",
    "__defineGetter__",
    "__defineSetter__",
    "__lookupGetter__",
    "__lookupSetter__",
    "__proto__",
];

/// `!!object[key]` for a plain object parsed from JSON.
pub fn object_member_truthy(obj: &serde_json::Map<String, Value>, key: &str) -> bool {
    match obj.get(key) {
        Some(v) => js_truthy(v),
        None => INHERITED.contains(&key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sets_deduplicate_primitives_only() {
        let s = Operand::from_prepared(Some(json!([1, 1.0, "1", {}, {}, null, null, -0.0, 0])));
        let want = [
            json!(1),
            json!("1"),
            json!({}),
            json!({}),
            json!(null),
            json!(-0.0),
        ];
        assert_eq!(s, Operand::set_from(want));
        let Operand::Set(set) = &s else {
            panic!("a set")
        };
        assert!(set.has(&json!(1.0)) && set.has(&json!(0)) && set.has(&json!(null)));
        assert!(!set.has(&json!({})) && !set.has(&json!(true)));
        assert_eq!(s.hash_encoding(), "c{}");
        assert!(s.truthy());
    }

    #[test]
    fn hash_encodings_follow_upstream() {
        assert_eq!(Operand::Undefined.hash_encoding(), "a");
        assert_eq!(Operand::Json(json!(null)).hash_encoding(), "b");
        assert_eq!(Operand::Json(json!(1.5)).hash_encoding(), "e1.5");
        assert_eq!(
            Operand::Json(json!({"a": [1]})).hash_encoding(),
            "c{\"a\":[1]}"
        );
    }

    #[test]
    fn inherited_members_are_truthy() {
        let m = json!({"a": true, "b": 0});
        let m = m.as_object().unwrap();
        assert!(object_member_truthy(m, "a"));
        assert!(!object_member_truthy(m, "b"));
        assert!(object_member_truthy(m, "constructor"));
        assert!(!object_member_truthy(m, "zz"));
        assert!(Operand::Json(json!("$1.x")).as_variable().is_some());
    }
}
