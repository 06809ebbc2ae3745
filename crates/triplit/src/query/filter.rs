//! Evaluating one filter statement: upstream's `evaluateFilterStatement`
//! and the `ValuePointer.Get` that reads the attribute it compares; and
//! `satisfiesNonRelationalFilter` over a list of static filters.
//!
//! `null` and `undefined` are both "empty": `=` treats two empties as
//! equal, an empty value is less than everything for `<`/`>`, `in` and
//! `like` never match an empty side, `nin`/`nlike` always do. Set
//! operators (`SET_…`) read a stored set `{item: bool}`, convert each live
//! key back with the filter value's type and test it.

use std::borrow::Cow;

use serde_json::Value;

use super::ast::Filter;
use super::compare::compare_operand;
use super::like::like;
use super::operand::{Operand, object_member_truthy, property_key, same_value_zero};
use crate::TriplitError;
use crate::jsnum::js_parse_float;
use crate::types::js::{js_entries, js_string, js_truthy};

/// `ValuePointer.Get(value, path)`: follows object keys, array indexes and
/// `length`; a missing step is `undefined` (`None`). Upstream throws a
/// `TypeError` when a step lands on `null` with more path to go; that is
/// `undefined` here.
pub fn value_at<'a, 'p>(
    root: &'a Value,
    path: impl IntoIterator<Item = &'p str>,
) -> Option<Cow<'a, Value>> {
    let mut current = Cow::Borrowed(root);
    for key in path {
        current = step(current, key)?;
    }
    Some(current)
}

fn step<'a>(current: Cow<'a, Value>, key: &str) -> Option<Cow<'a, Value>> {
    match current {
        Cow::Borrowed(v) => step_ref(v, key),
        Cow::Owned(v) => step_ref(&v, key).map(|c| Cow::Owned(c.into_owned())),
    }
}

fn step_ref<'a>(v: &'a Value, key: &str) -> Option<Cow<'a, Value>> {
    match v {
        Value::Object(m) => m.get(key).map(Cow::Borrowed),
        Value::Array(a) => {
            if key == "length" {
                return Some(Cow::Owned(Value::from(a.len())));
            }
            index(key).and_then(|i| a.get(i)).map(Cow::Borrowed)
        }
        Value::String(s) => {
            let units: Vec<u16> = s.encode_utf16().collect();
            if key == "length" {
                return Some(Cow::Owned(Value::from(units.len())));
            }
            let unit = *units.get(index(key)?)?;
            Some(Cow::Owned(Value::String(String::from_utf16_lossy(&[unit]))))
        }
        _ => None,
    }
}

fn index(key: &str) -> Option<usize> {
    if crate::types::js::is_array_index(key) {
        key.parse().ok()
    } else {
        None
    }
}

/// The attribute at a dotted path of an entity.
pub fn attribute<'a>(entity: &'a Value, path: &str) -> Option<Cow<'a, Value>> {
    value_at(entity, path.split('.'))
}

fn invalid_filter(context: String) -> TriplitError {
    TriplitError::new(
        "InvalidFilterError",
        400,
        "Your query passed a filter that is invalid.",
        Some(context),
    )
}

fn is_empty(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null))
}

/// `inferSetValue(key, filterValue)`.
fn infer_set_value(key: &str, filter: &Operand) -> Value {
    match filter {
        Operand::Json(Value::Bool(_)) => Value::Bool(key == "true"),
        Operand::Json(Value::Number(_)) => crate::jsnum::js_number_to_json(js_parse_float(key)),
        _ => Value::String(key.to_string()),
    }
}

/// `inferSetValue(key, filter) === filter`.
fn set_item_is(key: &str, filter: &Operand) -> bool {
    match filter {
        Operand::Json(f) if !f.is_array() && !f.is_object() => {
            same_value_zero(&infer_set_value(key, filter), f)
        }
        _ => false,
    }
}

/// Upstream's `evaluateFilterStatement(value, op, filterValue)`; `value`
/// `None` is `undefined`.
pub fn evaluate(value: Option<&Value>, op: &str, filter: &Operand) -> Result<bool, TriplitError> {
    if let Some(set_op) = op.strip_prefix("SET_") {
        return evaluate_set(value, set_op, filter);
    }
    let v_empty = is_empty(value);
    let f_empty = filter.is_empty();
    let null = Value::Null;
    let v = value.unwrap_or(&null);
    Ok(match op {
        "=" => (v_empty && f_empty) || compare_operand(v, filter).is_eq(),
        "!=" => match (v_empty, f_empty) {
            (true, true) => false,
            _ => compare_operand(v, filter).is_ne(),
        },
        ">" => !v_empty && (f_empty || compare_operand(v, filter).is_gt()),
        ">=" => match (v_empty, f_empty) {
            (true, true) | (false, true) => true,
            (true, false) => false,
            (false, false) => compare_operand(v, filter).is_ge(),
        },
        "<" => !f_empty && (v_empty || compare_operand(v, filter).is_lt()),
        "<=" => match (v_empty, f_empty) {
            (true, true) | (true, false) => true,
            (false, true) => false,
            (false, false) => compare_operand(v, filter).is_le(),
        },
        "like" => !f_empty && !v_empty && ilike(v, filter)?,
        "nlike" => f_empty || v_empty || !ilike(v, filter)?,
        "in" => !v_empty && !f_empty && member(v, filter, false),
        "nin" => v_empty || f_empty || member(v, filter, true),
        "isDefined" => {
            if filter.truthy() {
                !v_empty
            } else {
                v_empty
            }
        }
        _ => {
            return Err(invalid_filter(format!(
                "The operator {op} is not recognized."
            )));
        }
    })
}

fn evaluate_set(
    value: Option<&Value>,
    set_op: &str,
    filter: &Operand,
) -> Result<bool, TriplitError> {
    let keys: Vec<String> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(v @ (Value::Object(_) | Value::Array(_))) => js_entries(v)
            .into_iter()
            .filter(|(_, live)| js_truthy(live))
            .map(|(k, _)| k)
            .collect(),
        Some(other) => {
            return Err(invalid_filter(format!(
                "The operator requires a set value, but got {}",
                js_string(Some(other))
            )));
        }
    };
    let empty = is_empty(value);
    Ok(match set_op {
        "has" => !empty && keys.iter().any(|k| set_item_is(k, filter)),
        "!has" => empty || !keys.iter().any(|k| set_item_is(k, filter)),
        "isDefined" => {
            if filter.truthy() {
                !empty
            } else {
                empty
            }
        }
        _ => {
            if empty {
                return Ok(false);
            }
            for k in &keys {
                if evaluate(Some(&infer_set_value(k, filter)), set_op, filter)? {
                    return Ok(true);
                }
            }
            false
        }
    })
}

/// `in`/`nin` membership. `negate_set` flips the answer for `Set` and
/// object filters only: upstream's `nin` over a raw array returns
/// `includes` (a bug kept as is), and over anything else `false`.
fn member(v: &Value, filter: &Operand, nin: bool) -> bool {
    match filter {
        Operand::Set(set) => nin != set.has(v),
        Operand::Json(Value::Array(items)) => items.iter().any(|i| same_value_zero(i, v)),
        Operand::Json(Value::Object(m)) => nin != object_member_truthy(m, &property_key(v)),
        _ => false,
    }
}

fn ilike(v: &Value, pattern: &Operand) -> Result<bool, TriplitError> {
    match pattern {
        Operand::Json(Value::String(p)) => Ok(like(&js_string(Some(v)), p)),
        // `pattern.replace` on a non-string throws a TypeError upstream.
        _ => Err(TriplitError::internal(
            "A like pattern must be a string (pattern.replace is not a function)",
        )),
    }
}

/// `satisfiesNonRelationalFilter` over every filter (short-circuiting).
pub(super) fn filters_pass(data: &Value, filters: &[Filter]) -> Result<bool, TriplitError> {
    for f in filters {
        if !static_pass(data, f)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn static_pass(data: &Value, f: &Filter) -> Result<bool, TriplitError> {
    Ok(match f {
        Filter::Bool(b) => *b,
        Filter::Stmt(s) => evaluate(attribute(data, &s.path).as_deref(), &s.op, &s.value)?,
        Filter::Group(g) => {
            for f in &g.filters {
                if static_pass(data, f)? != g.and {
                    return Ok(!g.and);
                }
            }
            g.and
        }
        Filter::Exists(_) => {
            return Err(super::errors::engine(
                "Subquery filters should be filtered out before this point",
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(v: Option<Value>, op: &str, f: Value) -> bool {
        evaluate(v.as_ref(), op, &Operand::from_prepared(Some(f))).unwrap()
    }

    #[test]
    fn null_and_undefined_rules() {
        assert!(eval(Some(json!(null)), "=", json!(null)));
        assert!(eval(None, "=", json!(null)));
        assert!(evaluate(None, "=", &Operand::Undefined).unwrap());
        assert!(!eval(Some(json!(null)), "!=", json!(null)));
        assert!(!eval(Some(json!(null)), ">", json!(1)));
        assert!(eval(Some(json!(null)), "<", json!(1)));
        assert!(eval(Some(json!(1)), ">", json!(null)));
        assert!(!eval(Some(json!(1)), "<", json!(null)));
        assert!(eval(None, ">=", json!(null)));
        assert!(eval(None, "<=", json!(null)));
        assert!(!eval(None, ">=", json!(1)));
        assert!(!eval(Some(json!(null)), "in", json!(["a"])));
        assert!(eval(Some(json!(null)), "nin", json!(["a"])));
        assert!(!eval(None, "like", json!("%")));
        assert!(eval(None, "nlike", json!("%")));
    }

    #[test]
    fn arrays_are_sets_and_never_equal() {
        assert!(eval(Some(json!(2)), "in", json!([1, 2])));
        assert!(!eval(Some(json!(2)), "nin", json!([1, 2])));
        assert!(eval(Some(json!(3)), "nin", json!([1, 2])));
        assert!(!eval(Some(json!([1])), "=", json!([1])));
        assert!(!eval(Some(json!([1])), "in", json!([[1]])));
        assert!(eval(Some(json!({})), "<", json!([1])));
    }

    #[test]
    fn in_over_objects_and_scalars() {
        assert!(eval(Some(json!("a")), "in", json!({"a": true})));
        assert!(!eval(Some(json!("a")), "nin", json!({"a": true})));
        assert!(eval(Some(json!(1)), "in", json!({"1": 1})));
        assert!(eval(Some(json!("toString")), "in", json!({})));
        assert!(!eval(Some(json!("a")), "in", json!("a")));
        assert!(!eval(Some(json!("a")), "nin", json!("a")));
        // `nin` over a raw array (only reachable through bound views).
        assert!(member(&json!(1), &Operand::Json(json!([1])), true));
    }

    #[test]
    fn set_operators() {
        let tags = json!({"a": true, "b": false, "3": true});
        assert!(eval(Some(tags.clone()), "SET_has", json!("a")));
        assert!(!eval(Some(tags.clone()), "SET_has", json!("b")));
        assert!(eval(Some(tags.clone()), "SET_has", json!(3)));
        assert!(eval(Some(tags.clone()), "SET_!has", json!("b")));
        assert!(eval(Some(json!({})), "SET_!has", json!("b")));
        assert!(eval(None, "SET_!has", json!("b")));
        assert!(eval(Some(tags.clone()), "SET_isDefined", json!(true)));
        assert!(eval(Some(json!(null)), "SET_isDefined", json!(false)));
        assert!(eval(Some(tags.clone()), "SET_<", json!("b")));
        assert!(!eval(Some(tags.clone()), "SET_>", json!("a")));
        assert!(eval(Some(tags.clone()), "SET_in", json!(["a"])));
        let err = evaluate(Some(&json!("x")), "SET_has", &Operand::Json(json!("x")));
        assert_eq!(err.unwrap_err().name, "InvalidFilterError");
    }

    #[test]
    fn unknown_operator_and_bad_like_pattern() {
        let e = evaluate(Some(&json!(1)), "has", &Operand::Json(json!(1))).unwrap_err();
        assert_eq!(e.name, "InvalidFilterError");
        let e = evaluate(Some(&json!("a")), "like", &Operand::Json(json!(1))).unwrap_err();
        assert_eq!(e.name, "TriplitError");
        assert!(eval(Some(json!(12)), "like", json!("1_")));
    }

    #[test]
    fn value_pointer_reads_like_javascript() {
        let e = json!({"a": {"b": [10, 20]}, "s": "hé", "n": null});
        assert_eq!(attribute(&e, "a.b.1").as_deref(), Some(&json!(20)));
        assert_eq!(attribute(&e, "a.b.length").as_deref(), Some(&json!(2)));
        assert_eq!(attribute(&e, "s.length").as_deref(), Some(&json!(2)));
        assert_eq!(attribute(&e, "s.1").as_deref(), Some(&json!("é")));
        assert_eq!(attribute(&e, "n").as_deref(), Some(&json!(null)));
        assert_eq!(attribute(&e, "n.x"), None);
        assert_eq!(attribute(&e, "a.z.q"), None);
    }
}
