//! JavaScript number semantics the wire format depends on.
//!
//! Triplit runs on JavaScript numbers (IEEE-754 doubles), and a few places
//! of the protocol turn them into strings and back:
//!
//! - set-typed attributes are stored as `{"<key>": bool}` where the key is
//!   `String(item)`, so a number item `0.1 + 0.2` becomes the key
//!   `"0.30000000000000004"` and `1e21` becomes `"1e+21"`
//!   ([`js_number_to_string`]); reading a set of numbers back uses
//!   `parseFloat` ([`js_parse_float`]);
//! - SuperJSON's `["number"]` annotation carries `NaN`, `Infinity` and `-0`
//!   as strings and restores them with `Number(string)`
//!   ([`js_string_to_number`]);
//! - what `JSON.stringify` stores for a double ([`js_number_to_json`]).
//!
//! All functions are total: they never panic, whatever the input.

use serde_json::{Number, Value};

/// `2^53`: the integers up to this magnitude are exact doubles.
const MAX_SAFE_INTEGER_PLUS_ONE: f64 = 9_007_199_254_740_992.0;

/// `String(n)` / `Number.prototype.toString()` for a double, exactly as
/// JavaScript prints it: the shortest round-tripping digits, exponent form
/// outside `[1e-7, 1e21)` (`"1e+21"`, `"1e-7"`), `"-0"` printed as `"0"`,
/// and `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub fn js_number_to_string(n: f64) -> String {
    let mut buf = ryu_js::Buffer::new();
    buf.format(n).to_owned()
}

/// The JSON value `JSON.stringify` writes for the double `n`: `null` for
/// `NaN` and `±Infinity`, `0` for `-0`, an integer when `n` is integral and
/// below `2^53` in magnitude, otherwise a float.
///
/// The integer form matters because `serde_json` compares `1` and `1.0` as
/// different values; this gives the same [`Value`] that parsing
/// JavaScript's output would.
pub fn js_number_to_json(n: f64) -> Value {
    if !n.is_finite() {
        return Value::Null;
    }
    if n.trunc() == n && n.abs() < MAX_SAFE_INTEGER_PLUS_ONE {
        // Exact: |n| < 2^53 fits an i64 and has no fraction. `-0.0 as i64` is 0.
        return Value::Number(Number::from(n as i64));
    }
    Number::from_f64(n).map_or(Value::Null, Value::Number)
}

/// Whether `c` is JavaScript white space or a line terminator
/// (`StrWhiteSpaceChar`: what `parseFloat`, `Number()` and `String.prototype.trim`
/// skip). Unlike [`char::is_whitespace`] this includes U+FEFF and excludes
/// U+0085.
pub fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{0009}'
            | '\u{000A}'
            | '\u{000B}'
            | '\u{000C}'
            | '\u{000D}'
            | '\u{0020}'
            | '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

/// Length in bytes of the longest prefix of `s` that is an unsigned
/// `StrUnsignedDecimalLiteral` without `Infinity`: `digits [. digits?] [exp]`
/// or `. digits [exp]`. 0 when there is none.
fn decimal_prefix_len(s: &[u8]) -> usize {
    let digits = |from: usize| s[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let int_digits = digits(0);
    let mut end = int_digits;
    let mut frac_digits = 0;
    if s.get(end) == Some(&b'.') {
        frac_digits = digits(end + 1);
        if int_digits > 0 || frac_digits > 0 {
            end += 1 + frac_digits;
        }
    }
    if int_digits == 0 && frac_digits == 0 {
        return 0;
    }
    if matches!(s.get(end), Some(b'e' | b'E')) {
        let mut exp = end + 1;
        if matches!(s.get(exp), Some(b'+' | b'-')) {
            exp += 1;
        }
        let exp_digits = digits(exp);
        if exp_digits > 0 {
            end = exp + exp_digits;
        }
    }
    end
}

/// Parses a decimal literal already checked by [`decimal_prefix_len`]
/// (optionally signed). Rust's parser is correctly rounded, like JS.
fn parse_decimal(lit: &str) -> f64 {
    lit.parse::<f64>().unwrap_or(f64::NAN)
}

/// JavaScript `parseFloat(s)`: skips leading white space, then reads the
/// longest prefix that is a decimal literal (`[+-]` then `Infinity`, or
/// digits with an optional fraction and exponent) and ignores the rest.
/// `NaN` when there is no such prefix. No hex, no numeric separators; `"-0"`
/// gives `-0.0`.
pub fn js_parse_float(s: &str) -> f64 {
    let t = s.trim_start_matches(is_js_whitespace);
    let bytes = t.as_bytes();
    let (sign_len, negative) = match bytes.first() {
        Some(b'-') => (1, true),
        Some(b'+') => (1, false),
        _ => (0, false),
    };
    let rest = &t[sign_len..];
    if rest.starts_with("Infinity") {
        return if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let len = decimal_prefix_len(rest.as_bytes());
    if len == 0 {
        return f64::NAN;
    }
    parse_decimal(&t[..sign_len + len])
}

/// The value of the digits of `digits` in base `2^bits`, correctly rounded
/// to a double (like JavaScript's `0x…`, `0o…`, `0b…` literals). `None` when
/// `digits` is empty or holds a character that is not a digit of the base.
fn parse_power_of_two_radix(digits: &str, bits: u32) -> Option<f64> {
    if digits.is_empty() {
        return None;
    }
    let radix = 1u32 << bits;
    let mut mantissa: u128 = 0;
    let mut exponent: i32 = 0;
    let mut sticky = false;
    for c in digits.chars() {
        let d = c.to_digit(radix)?;
        if mantissa >> 120 == 0 {
            mantissa = (mantissa << bits) | u128::from(d);
        } else {
            // 120+ significant bits are far more than a double keeps; the
            // rest only matters as a sticky bit for rounding.
            exponent = exponent.saturating_add(bits as i32);
            sticky |= d != 0;
        }
    }
    let m = (mantissa | u128::from(sticky)) as f64;
    if m == 0.0 {
        return Some(0.0);
    }
    Some(m * 2f64.powi(exponent))
}

/// JavaScript `Number(s)` for a string (`StringToNumber`): white space is
/// trimmed on both sides, the empty string is `0`, `0x`/`0o`/`0b` prefixes
/// (unsigned) are read in their base, `[+-]Infinity` is infinite, and
/// otherwise the whole rest must be a decimal literal. `NaN` for anything
/// else (`"abc"`, `"1,5"`, `"1_000"`, `"infinity"`).
pub fn js_string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_whitespace);
    if t.is_empty() {
        return 0.0;
    }
    let bytes = t.as_bytes();
    if bytes.len() > 2 && bytes[0] == b'0' {
        let bits = match bytes[1] {
            b'x' | b'X' => Some(4),
            b'o' | b'O' => Some(3),
            b'b' | b'B' => Some(1),
            _ => None,
        };
        if let Some(bits) = bits {
            return parse_power_of_two_radix(&t[2..], bits).unwrap_or(f64::NAN);
        }
    }
    let (sign_len, negative) = match bytes[0] {
        b'-' => (1, true),
        b'+' => (1, false),
        _ => (0, false),
    };
    let rest = &t[sign_len..];
    if rest == "Infinity" {
        return if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let len = decimal_prefix_len(rest.as_bytes());
    if len == 0 || len != rest.len() {
        return f64::NAN;
    }
    parse_decimal(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_string_examples() {
        assert_eq!(js_number_to_string(1e21), "1e+21");
        assert_eq!(js_number_to_string(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(js_number_to_string(-0.0), "0");
        assert_eq!(js_number_to_string(f64::NAN), "NaN");
        assert_eq!(js_number_to_string(f64::INFINITY), "Infinity");
        assert_eq!(js_number_to_string(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(js_number_to_string(1e-7), "1e-7");
        assert_eq!(js_number_to_string(1e-6), "0.000001");
        assert_eq!(
            js_number_to_string(123456789012345680000.0),
            "123456789012345680000"
        );
        assert_eq!(js_number_to_string(5.0), "5");
        assert_eq!(js_number_to_string(-1.5), "-1.5");
    }

    #[test]
    fn to_json_examples() {
        assert_eq!(js_number_to_json(f64::NAN), Value::Null);
        assert_eq!(js_number_to_json(f64::NEG_INFINITY), Value::Null);
        assert_eq!(js_number_to_json(-0.0), serde_json::json!(0));
        assert_eq!(js_number_to_json(16.0), serde_json::json!(16));
        assert_eq!(js_number_to_json(-3.0), serde_json::json!(-3));
        assert_eq!(js_number_to_json(12.5), serde_json::json!(12.5));
        assert_eq!(js_number_to_json(1e21), serde_json::json!(1e21));
        assert_eq!(
            js_number_to_json(9_007_199_254_740_992.0),
            serde_json::json!(9_007_199_254_740_992.0)
        );
    }

    #[test]
    fn parse_float_examples() {
        assert_eq!(js_parse_float("  42abc"), 42.0);
        assert_eq!(js_parse_float("-Infinityx"), f64::NEG_INFINITY);
        assert!(js_parse_float("abc").is_nan());
        assert!(js_parse_float("").is_nan());
        assert!(js_parse_float(".").is_nan());
        assert_eq!(js_parse_float(".5e1x"), 5.0);
        assert_eq!(js_parse_float("5.e"), 5.0);
        assert_eq!(js_parse_float("0x10"), 0.0);
        assert!(js_parse_float("-0").is_sign_negative());
        assert_eq!(js_parse_float("1e+21"), 1e21);
    }

    #[test]
    fn string_to_number_examples() {
        assert_eq!(js_string_to_number(""), 0.0);
        assert_eq!(js_string_to_number(" 7 "), 7.0);
        assert_eq!(js_string_to_number("0x10"), 16.0);
        assert_eq!(js_string_to_number("0b101"), 5.0);
        assert_eq!(js_string_to_number("0o17"), 15.0);
        assert!(js_string_to_number("-0x10").is_nan());
        assert!(js_string_to_number("12abc").is_nan());
        assert!(js_string_to_number("NaN").is_nan());
        assert_eq!(js_string_to_number("-Infinity"), f64::NEG_INFINITY);
        assert!(js_string_to_number("-0").is_sign_negative());
        assert_eq!(js_string_to_number("1e400"), f64::INFINITY);
    }

    #[test]
    fn radix_rounding_is_correct() {
        // 2^53 + 1 rounds to even (2^53); 2^53 + 3 rounds up to 2^53 + 4.
        assert_eq!(
            js_string_to_number("0x20000000000001"),
            9_007_199_254_740_992.0
        );
        assert_eq!(
            js_string_to_number("0x20000000000003"),
            9_007_199_254_740_996.0
        );
        let huge = format!("0x{}", "f".repeat(300));
        assert_eq!(js_string_to_number(&huge), f64::INFINITY);
    }
}
