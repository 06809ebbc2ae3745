//! Minting HS256 tokens byte-for-byte like Node's `jsonwebtoken`.
//!
//! `jwt.sign(payload, secret, { noTimestamp: true })` writes the header
//! `{"alg":"HS256","typ":"JWT"}`, the payload with `JSON.stringify`, both as
//! unpadded base64url, and an HMAC-SHA256 over `header.payload` keyed with
//! the secret's UTF-8 bytes. Reproducing `JSON.stringify` exactly matters
//! because apps hard-code the resulting dev tokens.

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value};

use crate::b64;

/// The header Node's `jsonwebtoken` writes for HS256, in its key order.
const HS256_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Mints an HS256 token exactly like `jsonwebtoken.sign(claims, secret,
/// {noTimestamp: true})` in Node.
///
/// The payload is serialised as `JSON.stringify` would serialise the same
/// object: keys in the map's order, except that array-index keys (`"0"`,
/// `"1"`, …) come first in ascending order, as in any JavaScript object;
/// numbers as JavaScript prints them (`1e+21`, `1` for `1.0`). No `iat` is
/// added.
pub fn sign_hs256(claims: &Map<String, Value>, secret: &str) -> String {
    let mut payload = String::new();
    write_object(&mut payload, claims);
    let signing_input = format!(
        "{}.{}",
        b64::encode_url(HS256_HEADER.as_bytes()),
        b64::encode_url(payload.as_bytes())
    );
    let key = EncodingKey::from_secret(secret.as_bytes());
    // HMAC signing has no failure mode (any key length is valid); the
    // fallback only keeps this function total.
    let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::HS256)
        .unwrap_or_default();
    format!("{signing_input}.{signature}")
}

/// Writes `value` as `JSON.stringify` does.
fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&js_number(n.as_f64().unwrap_or(f64::NAN))),
        // serde_json escapes exactly what JSON.stringify escapes for
        // well-formed strings: `"`, `\`, and control characters (with \b \f
        // \n \r \t short forms and lower-case \u00xx otherwise).
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

/// Writes an object with JavaScript's property order.
fn write_object(out: &mut String, map: &Map<String, Value>) {
    let mut indexed: Vec<(u32, &String, &Value)> = Vec::new();
    let mut named: Vec<(&String, &Value)> = Vec::new();
    for (key, value) in map {
        match array_index(key) {
            Some(index) => indexed.push((index, key, value)),
            None => named.push((key, value)),
        }
    }
    indexed.sort_by_key(|(index, _, _)| *index);
    out.push('{');
    let entries = indexed.into_iter().map(|(_, k, v)| (k, v)).chain(named);
    for (i, (key, value)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

/// Writes a JSON string literal.
fn write_string(out: &mut String, s: &str) {
    // Serialising a `str` cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// The index, if `key` is a canonical array index (`0` … `2^32 - 2`).
fn array_index(key: &str) -> Option<u32> {
    if key.is_empty() || (key.len() > 1 && key.starts_with('0')) {
        return None;
    }
    if !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<u32>().ok().filter(|&index| index != u32::MAX)
}

/// `Number.prototype.toString()` for a finite number; `null` otherwise (as
/// `JSON.stringify` writes NaN and infinities).
fn js_number(value: f64) -> String {
    if !value.is_finite() {
        return "null".to_owned();
    }
    if value == 0.0 {
        return "0".to_owned();
    }
    let sign = if value < 0.0 { "-" } else { "" };
    // `{:e}` prints the shortest round-tripping digits: "d.ddde±x".
    let sci = format!("{:e}", value.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let k = digits.len() as i32;
    // ECMAScript's n: value = 0.digits × 10^n.
    let n = exponent + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let e_sign = if e >= 0 { "+" } else { "-" };
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_owned()
        } else {
            format!("{first}.{rest}")
        };
        format!("{mantissa}e{e_sign}{}", e.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_print_like_javascript() {
        // (input, Number.prototype.toString() in Node 20)
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.25e-7, "1.25e-7"),
            (-2.5e-10, "-2.5e-10"),
            (9007199254740993.0, "9007199254740992"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (100.0, "100"),
            (1234.5678, "1234.5678"),
            (0.000123, "0.000123"),
            (1e100, "1e+100"),
            (12345678901234567890.0, "12345678901234567000"),
            (f64::NAN, "null"),
        ];
        for (value, expected) in cases {
            assert_eq!(js_number(*value), *expected, "{value}");
        }
    }

    #[test]
    fn objects_order_keys_like_javascript() {
        let value = json!({"b":1,"2":2,"a":3,"1":4,"01":5,"4294967294":6,"4294967295":7,"-1":8});
        let mut out = String::new();
        write_value(&mut out, &value);
        // JSON.stringify of the same object literal in Node 20:
        assert_eq!(
            out,
            r#"{"1":4,"2":2,"4294967294":6,"b":1,"a":3,"01":5,"4294967295":7,"-1":8}"#
        );
    }

    #[test]
    fn strings_escape_like_javascript() {
        let value = json!({"s": "q\"b\\s/\u{1}\u{1f}\u{8}\u{c}\n\r\t\u{7f}\u{2028}é😀"});
        let mut out = String::new();
        write_value(&mut out, &value);
        assert_eq!(
            out,
            "{\"s\":\"q\\\"b\\\\s/\\u0001\\u001f\\b\\f\\n\\r\\t\u{7f}\u{2028}é😀\"}"
        );
    }

    #[test]
    fn nested_values_and_integers() {
        let value = json!({"a":[1,2.5,null,true,{"x":-3}],"big":9007199254740993u64});
        let mut out = String::new();
        write_value(&mut out, &value);
        assert_eq!(
            out,
            r#"{"a":[1,2.5,null,true,{"x":-3}],"big":9007199254740992}"#
        );
    }

    #[test]
    fn token_shape() {
        let token = sign_hs256(&Map::new(), "k");
        let mut parts = token.split('.');
        assert_eq!(parts.next(), Some("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"));
        assert_eq!(parts.next(), Some("e30"));
        assert_eq!(parts.next().map(str::len), Some(43));
    }
}
