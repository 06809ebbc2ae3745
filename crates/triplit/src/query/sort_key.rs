//! One sort-key value held compactly, ordered exactly as
//! [`compare_value`](super::compare_value) orders the JSON value it came
//! from.
//!
//! A maintained result (`sync::maintained`) holds one rank per row per
//! connection, and nearly every live query orders by one scalar attribute
//! (`createdAt`, a number or a date string). A `serde_json::Value` is 72
//! bytes here (objects keep insertion order); a [`SortKey`] is 24, with
//! strings as exact-size boxed text and the rare array or object kept
//! boxed whole.

use std::cmp::Ordering;

use serde_json::Value;

use super::compare::{compare_f64, compare_js_str, compare_value, rank};

/// A sort-key value.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    /// `null`, and a missing attribute.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (compared as the `f64` upstream compares).
    Number(f64),
    /// A string.
    Str(Box<str>),
    /// An array or an object.
    Other(Box<Value>),
}

impl SortKey {
    /// The key for `value`.
    pub fn new(value: Value) -> Self {
        match value {
            Value::Null => SortKey::Null,
            Value::Bool(b) => SortKey::Bool(b),
            Value::Number(n) => SortKey::Number(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => SortKey::Str(s.into_boxed_str()),
            other => SortKey::Other(Box::new(other)),
        }
    }

    /// The type's place in the order, as [`rank`] gives it.
    fn rank(&self) -> u8 {
        match self {
            SortKey::Null => 0,
            SortKey::Number(_) => 3,
            SortKey::Str(_) => 4,
            SortKey::Bool(_) => 5,
            SortKey::Other(v) => rank(v),
        }
    }

    /// `compareValue` of the two values the keys came from.
    pub fn compare(&self, other: &SortKey) -> Ordering {
        match (self, other) {
            (SortKey::Null, SortKey::Null) => Ordering::Equal,
            (SortKey::Bool(a), SortKey::Bool(b)) => a.cmp(b),
            (SortKey::Number(a), SortKey::Number(b)) => compare_f64(*a, *b),
            (SortKey::Str(a), SortKey::Str(b)) => compare_js_str(a, b),
            (SortKey::Other(a), SortKey::Other(b)) => compare_value(a, b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            (-1e6f64..1e6).prop_map(|n| json!(n)),
            prop_oneof![Just(0.5f64), Just(-0.0), Just(1e300)].prop_map(|n| json!(n)),
            "[a-c\u{e9}\u{1f600}\u{ff5e}]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(2, 6, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map("[ab]", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn keys_order_as_the_values_they_came_from(a in value(), b in value()) {
            let (ka, kb) = (SortKey::new(a.clone()), SortKey::new(b.clone()));
            prop_assert_eq!(ka.compare(&kb), compare_value(&a, &b));
        }
    }

    #[test]
    fn a_key_is_three_words() {
        assert_eq!(std::mem::size_of::<SortKey>(), 24);
    }
}
