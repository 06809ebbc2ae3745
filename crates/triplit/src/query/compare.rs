//! `compareValue`: the total order over JSON values that queries sort and
//! compare with.
//!
//! Types rank `null < object < array < number < string < boolean`. Strings
//! compare in UTF-16 code-unit order (JavaScript's `<`), arrays element by
//! element then by length, objects by their entries sorted by key. A filter
//! value can also be a JavaScript `Set` (an array in a `where`): it ranks
//! as an object that is not a plain object, so a plain object sorts before
//! it and two sets never compare equal.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::operand::Operand;

/// The type's place in the order (`null` first, booleans last).
pub(crate) fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Object(_) => 1,
        Value::Array(_) => 2,
        Value::Number(_) => 3,
        Value::String(_) => 4,
        Value::Bool(_) => 5,
    }
}

/// JavaScript's string order: UTF-16 code units.
pub fn compare_js_str(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Numbers as upstream compares them.
pub(crate) fn compare_f64(a: f64, b: f64) -> Ordering {
    // JavaScript's `compare` returns 0 for NaN comparisons; stored numbers
    // are never NaN (they cannot be represented in JSON).
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// Upstream's `compareValue`.
pub fn compare_value(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => compare_f64(
            x.as_f64().unwrap_or(f64::NAN),
            y.as_f64().unwrap_or(f64::NAN),
        ),
        (Value::String(x), Value::String(y)) => compare_js_str(x, y),
        (Value::Array(x), Value::Array(y)) => compare_tuple(x, y),
        (Value::Object(x), Value::Object(y)) => compare_object(x, y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// `compareValue(a, b)` where `b` is a prepared filter value; `undefined`
/// compares as `null` (callers coerce it first, as upstream does).
pub fn compare_operand(a: &Value, b: &Operand) -> Ordering {
    match b {
        Operand::Undefined => compare_value(a, &Value::Null),
        Operand::Json(b) => compare_value(a, b),
        // `a` comes from an entity, so it is never a `Set` itself.
        Operand::Set(_) => match a {
            Value::Object(_) => Ordering::Less,
            other => rank(other).cmp(&1),
        },
    }
}

/// The view cache's `safeCompareValue`: `undefined` sorts before
/// everything, `null` included.
pub fn safe_compare(a: Option<&Value>, b: &Operand) -> Ordering {
    match (a, b) {
        (None, Operand::Undefined) => Ordering::Equal,
        (None, _) => Ordering::Less,
        (Some(_), Operand::Undefined) => Ordering::Greater,
        (Some(a), b) => compare_operand(a, b),
    }
}

/// Element-wise, then by length.
pub fn compare_tuple(a: &[Value], b: &[Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let dir = compare_value(x, y);
        if dir != Ordering::Equal {
            return dir;
        }
    }
    a.len().cmp(&b.len())
}

fn compare_object(a: &Map<String, Value>, b: &Map<String, Value>) -> Ordering {
    fn sorted(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
        let mut e: Vec<(&String, &Value)> = m.iter().collect();
        e.sort_by(|x, y| compare_js_str(x.0, y.0));
        e
    }
    let (ae, be) = (sorted(a), sorted(b));
    for ((ak, av), (bk, bv)) in ae.iter().zip(&be) {
        let dir = compare_js_str(ak, bk);
        if dir != Ordering::Equal {
            return dir;
        }
        let dir = compare_value(av, bv);
        if dir != Ordering::Equal {
            return dir;
        }
    }
    ae.len().cmp(&be.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn cross_type_rank() {
        let ordered = [
            json!(null),
            json!({}),
            json!([]),
            json!(-5),
            json!(""),
            json!(false),
        ];
        for w in ordered.windows(2) {
            assert_eq!(compare_value(&w[0], &w[1]), Ordering::Less, "{w:?}");
        }
    }

    #[test]
    fn sets_rank_as_non_plain_objects() {
        let set = Operand::set_from(vec![json!(1)]);
        assert_eq!(compare_operand(&json!({}), &set), Ordering::Less);
        assert_eq!(compare_operand(&json!(null), &set), Ordering::Less);
        assert_eq!(compare_operand(&json!([]), &set), Ordering::Greater);
        assert_eq!(compare_operand(&json!(1), &set), Ordering::Greater);
        assert_eq!(
            safe_compare(None, &Operand::Json(json!(null))),
            Ordering::Less
        );
        assert_eq!(
            safe_compare(Some(&json!(null)), &Operand::Undefined),
            Ordering::Greater
        );
    }

    #[test]
    fn strings_use_utf16_order() {
        // U+FF21 is one UTF-16 unit (0xFF21); U+1F600 starts with 0xD83D.
        assert_eq!(compare_value(&json!("z😀"), &json!("zＡ")), Ordering::Less);
        assert_eq!(compare_value(&json!("a"), &json!("ab")), Ordering::Less);
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-1000i64..1000).prop_map(|n| json!(n)),
            "[a-c😀Ａ]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map("[a-c]", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn order_is_total_antisymmetric_and_transitive(a in arb_value(), b in arb_value(), c in arb_value()) {
            prop_assert_eq!(compare_value(&a, &b), compare_value(&b, &a).reverse());
            prop_assert_eq!(compare_value(&a, &a), Ordering::Equal);
            if compare_value(&a, &b) != Ordering::Greater && compare_value(&b, &c) != Ordering::Greater {
                prop_assert_ne!(compare_value(&a, &c), Ordering::Greater);
            }
        }
    }
}
