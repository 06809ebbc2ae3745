//! JS number formatting and parsing against vectors produced by node
//! (`tests/fixtures/jsnum/`).

use ferry_triplit::jsnum::{js_number_to_string, js_parse_float, js_string_to_number};
use serde_json::Value;

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/fixtures/jsnum/{name}", env!("CARGO_MANIFEST_DIR"));
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    v["cases"].as_array().expect("cases").clone()
}

fn from_bits(hex: &str) -> f64 {
    f64::from_bits(u64::from_str_radix(hex, 16).expect("hex bits"))
}

/// Same double, with every NaN equal to every NaN (JS has one NaN).
fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

#[test]
fn number_to_string_matches_node() {
    let cases = load("number_to_string.json");
    assert!(cases.len() > 900);
    for c in cases {
        let n = from_bits(c["bits"].as_str().expect("bits"));
        assert_eq!(js_number_to_string(n), c["s"].as_str().expect("s"), "{n:e}");
    }
}

#[test]
fn parse_float_matches_node() {
    let cases = load("parse_float.json");
    assert!(cases.len() > 500);
    for c in cases {
        let input = c["input"].as_str().expect("input");
        let want = from_bits(c["bits"].as_str().expect("bits"));
        let got = js_parse_float(input);
        assert!(
            same(got, want),
            "parseFloat({input:?}) = {got:e}, node says {want:e}"
        );
    }
}

#[test]
fn string_to_number_matches_node() {
    let cases = load("string_to_number.json");
    assert!(cases.len() > 500);
    for c in cases {
        let input = c["input"].as_str().expect("input");
        let want = from_bits(c["bits"].as_str().expect("bits"));
        let got = js_string_to_number(input);
        assert!(
            same(got, want),
            "Number({input:?}) = {got:e}, node says {want:e}"
        );
    }
}

#[test]
fn to_string_round_trips_through_parse_float() {
    for c in load("number_to_string.json") {
        let n = from_bits(c["bits"].as_str().expect("bits"));
        let back = js_parse_float(&js_number_to_string(n));
        // -0 prints as "0", so it comes back as +0.
        assert!(same(back, n) || (n == 0.0 && back == 0.0), "{n:e}");
    }
}
