//! Upstream's `hashObject`: a 32-bit FNV-1a hash of a value's sorted-key
//! serialisation.
//!
//! The serialisation is not JSON: primitives print as `String(value)`
//! (strings unquoted, so `1` and `"1"` collide), arrays as `[a,b]` and
//! objects as `{key:value,…}` with keys in JavaScript's default sort order
//! (UTF-16 code units). The hash runs over UTF-16 code units, as
//! `charCodeAt` does. Upstream uses it for the server's schema
//! compatibility list (`hashObject(schema.collections)`) and, through
//! `hashQuery`, to compare relationship queries.

use serde_json::Value;

use crate::jsnum::js_number_to_string;

const FNV_OFFSET: u32 = 2_166_136_261;
const FNV_PRIME: u32 = 16_777_619;

/// FNV-1a over the UTF-16 code units of `s` (upstream's `fnv1aHash`).
pub fn fnv1a(s: &str) -> u32 {
    s.encode_utf16().fold(FNV_OFFSET, |h, unit| {
        (h ^ u32::from(unit)).wrapping_mul(FNV_PRIME)
    })
}

/// Upstream's `hashObject(value)`.
pub fn hash_object(v: &Value) -> u32 {
    let mut s = String::new();
    serialize(v, &mut s);
    fnv1a(&s)
}

/// The hash upstream records in the schema compatibility list after a
/// successful schema change and compares with a client's `?schema=`:
/// `hashObject(schema.collections)`.
pub fn schema_hash(collections: &Value) -> u32 {
    hash_object(collections)
}

fn serialize(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&js_number_to_string(n.as_f64().unwrap_or(f64::NAN))),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                serialize(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            // JavaScript's default sort: UTF-16 code units.
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push(':');
                if let Some(x) = m.get(k) {
                    serialize(x, out);
                }
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_string_is_the_offset_basis() {
        assert_eq!(fnv1a(""), FNV_OFFSET);
        assert_eq!(hash_object(&json!("")), FNV_OFFSET);
    }

    #[test]
    fn key_order_does_not_matter_but_quotes_do_not_exist() {
        assert_eq!(
            hash_object(&json!({"a": 1, "b": [true, null]})),
            hash_object(&json!({"b": [true, null], "a": 1}))
        );
        assert_eq!(hash_object(&json!([1])), hash_object(&json!(["1"])));
        assert_ne!(hash_object(&json!({"a": 1})), hash_object(&json!({"a": 2})));
    }
}
