//! The order-preserving encoding of attribute values in index keys.
//!
//! The encoding is *monotone* with respect to the query order
//! (`compareValue`, an empty value being `null`): `a < b` implies
//! `enc(a) <= enc(b)` as bytes, and equal values always encode equally.
//! It is not injective: every object encodes as one tag, every array as
//! another, and strings keep only their first [`STRING_UNITS`] UTF-16 code
//! units (which bounds the key size). Readers therefore treat a run of
//! entries with equal encodings as a group whose members are compared in
//! memory, and every filter still runs on the rows an index yields.
//!
//! | value | bytes |
//! |---|---|
//! | `null` / missing | `01` |
//! | object | `02` |
//! | array | `03` |
//! | number | `04` + 8 bytes (IEEE-754 bits, sign-flipped; `-0` as `0`) |
//! | string | `05` + per UTF-16 unit `u + 1` as 3 bytes + `00 00 00` |
//! | boolean | `06` + `00`/`01` |
//!
//! The type tags follow `compareValue`'s type rank
//! (`null < object < array < number < string < boolean`); strings are in
//! code-unit order (JavaScript's `<`), not UTF-8 order.

use serde_json::Value;

/// How many UTF-16 code units of a string the encoding keeps.
pub const STRING_UNITS: usize = 32;

const NULL: u8 = 0x01;
const OBJECT: u8 = 0x02;
const ARRAY: u8 = 0x03;
const NUMBER: u8 = 0x04;
const STRING: u8 = 0x05;
const BOOL: u8 = 0x06;

/// The encoding of an attribute value (`None`: missing).
pub fn encode(v: Option<&Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    match v {
        None | Some(Value::Null) => out.push(NULL),
        Some(Value::Object(_)) => out.push(OBJECT),
        Some(Value::Array(_)) => out.push(ARRAY),
        Some(Value::Number(n)) => {
            out.push(NUMBER);
            out.extend_from_slice(&number_bits(n.as_f64().unwrap_or(0.0)).to_be_bytes());
        }
        Some(Value::String(s)) => {
            out.push(STRING);
            for unit in s.encode_utf16().take(STRING_UNITS) {
                let u = u32::from(unit) + 1;
                out.extend_from_slice(&u.to_be_bytes()[1..]);
            }
            out.extend_from_slice(&[0, 0, 0]);
        }
        Some(Value::Bool(b)) => out.extend_from_slice(&[BOOL, u8::from(*b)]),
    }
    out
}

fn number_bits(f: f64) -> u64 {
    // `-0 + 0` is `+0`: both zeros compare equal, so they encode equally.
    let bits = (f + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Splits `bytes` into the encoded value at its front and the rest;
/// `None` when it does not start with a well-formed encoding.
pub fn split(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = match *bytes.first()? {
        NULL | OBJECT | ARRAY => 1,
        NUMBER => 9,
        BOOL => 2,
        STRING => {
            let mut i = 1;
            loop {
                let chunk = bytes.get(i..i + 3)?;
                i += 3;
                if chunk == [0, 0, 0] {
                    break i;
                }
            }
        }
        _ => return None,
    };
    (bytes.len() >= len).then(|| bytes.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::compare_value;
    use proptest::prelude::*;
    use serde_json::json;
    use std::cmp::Ordering;

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-1000i64..1000).prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            Just(json!(-0.0)),
            "[a-c\u{0}😀Ａ\u{ffff}]{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(2, 6, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map("[a-c]", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn code_unit_order_and_zeros() {
        // U+FF21 is one unit 0xFF21; U+1F600 starts with 0xD83D.
        assert!(encode(Some(&json!("z😀"))) < encode(Some(&json!("zＡ"))));
        assert!(encode(Some(&json!("a"))) < encode(Some(&json!("a\u{0}"))));
        assert_eq!(encode(Some(&json!(-0.0))), encode(Some(&json!(0))));
        assert_eq!(encode(None), encode(Some(&Value::Null)));
        let long = "x".repeat(STRING_UNITS + 5);
        let e = encode(Some(&json!(long)));
        assert_eq!(e.len(), 1 + 3 * STRING_UNITS + 3);
        assert_eq!(
            split(&[e.clone(), vec![9, 9]].concat()),
            Some((&e[..], &[9u8, 9][..]))
        );
        assert_eq!(split(&[0x05, 0, 0]), None);
        assert_eq!(split(&[0x77]), None);
    }

    proptest! {
        #[test]
        fn encoding_is_monotone_and_splits(a in arb_value(), b in arb_value()) {
            let (ea, eb) = (encode(Some(&a)), encode(Some(&b)));
            match compare_value(&a, &b) {
                Ordering::Less => prop_assert!(ea <= eb),
                Ordering::Equal => prop_assert_eq!(&ea, &eb),
                Ordering::Greater => prop_assert!(ea >= eb),
            }
            let joined = [ea.clone(), vec![1, 2, 3]].concat();
            prop_assert_eq!(split(&joined), Some((&ea[..], &[1u8, 2, 3][..])));
        }
    }
}
