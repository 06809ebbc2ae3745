//! The type rules against vectors generated with the real `@triplit/db`
//! 1.1.10 (the version `@triplit/server` 1.1.8 runs) under `TZ=UTC`: see
//! `fixtures/types/README.md`.

use ferry_core::{ManualTime, SeededRandom};
use ferry_triplit::TriplitError;
use ferry_triplit::schema::{DataType, Schema};
use ferry_triplit::types::{self, DefaultsContext, date};
use serde_json::{Map, Value, json};

fn fixture(name: &str) -> Value {
    let text = match name {
        "encode_insert" => include_str!("fixtures/types/encode_insert.json"),
        "encode_update" => include_str!("fixtures/types/encode_update.json"),
        "validate_encoded" => include_str!("fixtures/types/validate_encoded.json"),
        "serialize" => include_str!("fixtures/types/serialize.json"),
        "set_keys" => include_str!("fixtures/types/set_keys.json"),
        "dates" => include_str!("fixtures/types/dates.json"),
        "operators" => include_str!("fixtures/types/operators.json"),
        _ => "null",
    };
    serde_json::from_str(text).expect("fixture is JSON")
}

fn obj(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn schema_of(collections: &Value) -> Schema {
    Schema::from_json(&json!({ "collections": collections })).expect("fixture schema is valid")
}

/// Compares an error with upstream's: the full JSON body, or for a JS
/// crash upstream (a `TypeError`/`RangeError`) a 500 `TriplitError`.
fn assert_error(case: &str, got: &TriplitError, want: &Value) {
    if want.get("crash").is_some() {
        assert_eq!(
            (got.name.as_ref(), got.status),
            ("TriplitError", 500),
            "{case}: {got:?}"
        );
    } else {
        assert_eq!(&got.to_json(), want, "{case}");
    }
}

#[test]
fn encode_insert_matches_upstream() {
    let f = fixture("encode_insert");
    let schema = schema_of(&f["schemas"]);
    let time = ManualTime::new(f["now_ms"].as_u64().unwrap_or(0));
    let rng = SeededRandom::new(1);
    let ctx = DefaultsContext {
        rng: &rng,
        time: &time,
    };
    let cases = f["cases"].as_array().expect("cases");
    assert!(cases.len() > 50);
    for c in cases {
        let name = c["name"].as_str().unwrap_or("?");
        let coll = c["collection"].as_str().and_then(|n| schema.collection(n));
        let result = types::encode_insert(coll, &obj(&c["input"]), &ctx).and_then(|stored| {
            if let Some(coll) = coll {
                types::validate_encoded(coll, &stored, false)?;
            }
            let response = types::serialize_entity(coll, &stored)?;
            Ok((stored, response))
        });
        match (result, c.get("ok"), c.get("err")) {
            (Ok((mut stored, mut response)), Some(ok), _) => {
                if ok["generated_id"] == json!(true) {
                    let id = stored["id"].as_str().unwrap_or("");
                    assert!(
                        id.len() == 21
                            && id
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                        "{name}: {id}"
                    );
                    assert_eq!(response["id"], stored["id"], "{name}");
                    stored.insert("id".into(), json!("<generated>"));
                    response.insert("id".into(), json!("<generated>"));
                }
                let text = |m: &Map<String, Value>| serde_json::to_string(m).unwrap_or_default();
                assert_eq!(
                    text(&stored),
                    ok["stored"].to_string(),
                    "{name}: stored (and key order)"
                );
                assert_eq!(
                    text(&response),
                    ok["response"].to_string(),
                    "{name}: response (and key order)"
                );
            }
            (Err(e), _, Some(err)) => assert_error(name, &e, err),
            (got, ..) => panic!("{name}: got {got:?}, want {c}"),
        }
    }
}

#[test]
fn validate_encoded_matches_upstream() {
    let f = fixture("validate_encoded");
    let schema = schema_of(&json!({ "req": f["schema"] }));
    let coll = schema.collection("req").expect("req");
    for c in f["cases"].as_array().expect("cases") {
        let name = c["name"].as_str().unwrap_or("?");
        let got = types::validate_encoded(coll, &obj(&c["change"]), c["partial"] == json!(true));
        match (got, c.get("err")) {
            (Ok(()), None) => {}
            (Err(e), Some(err)) => assert_error(name, &e, err),
            (got, _) => panic!("{name}: got {got:?}, want {c}"),
        }
    }
}

#[test]
fn serialize_entity_matches_upstream() {
    let f = fixture("serialize");
    let schema = schema_of(&f["schemas"]);
    for c in f["cases"].as_array().expect("cases") {
        let name = c["name"].as_str().unwrap_or("?");
        let coll = c["collection"].as_str().and_then(|n| schema.collection(n));
        match (
            types::serialize_entity(coll, &obj(&c["stored"])),
            c.get("ok"),
            c.get("err"),
        ) {
            (Ok(got), Some(want), _) => {
                let text = serde_json::to_string(&got).unwrap_or_default();
                assert_eq!(text, want.to_string(), "{name} (and key order)");
            }
            (Err(e), _, Some(err)) => assert_error(name, &e, err),
            (got, ..) => panic!("{name}: got {got:?}, want {c}"),
        }
        // The byte writer `/fetch` uses gives the same text or error.
        match (
            types::serialize_entity_json(coll, &obj(&c["stored"])),
            c.get("ok"),
            c.get("err"),
        ) {
            (Ok(got), Some(want), _) => {
                assert_eq!(
                    std::str::from_utf8(&got).unwrap(),
                    want.to_string(),
                    "{name} (bytes)"
                );
            }
            (Err(e), _, Some(err)) => assert_error(name, &e, err),
            (got, ..) => panic!("{name}: bytes got {got:?}, want {c}"),
        }
    }
}

#[test]
fn set_keys_match_upstream() {
    for c in fixture("set_keys").as_array().expect("cases") {
        let t = DataType::from_json(&c["type"]).expect("type");
        match (types::set_key(&t, &c["value"]), c.get("ok"), c.get("err")) {
            (Ok(k), Some(want), _) => assert_eq!(&json!(k), want, "{c}"),
            (Err(e), _, Some(err)) => assert_error(&c.to_string(), &e, err),
            (got, ..) => panic!("got {got:?}, want {c}"),
        }
    }
}

#[test]
fn date_parse_matches_v8() {
    let f = fixture("dates");
    let mut failures = Vec::new();
    for c in f["strings"].as_array().expect("strings") {
        let input = c["input"].as_str().unwrap_or("");
        let got = date::parse(input);
        let iso = got.and_then(date::to_iso_string);
        if got != c["ms"].as_f64() || json!(iso) != c["iso"] {
            failures.push(format!("{input:?}: got {got:?}, want {}", c["ms"]));
        }
    }
    for c in f["fuzz"].as_array().expect("fuzz") {
        let input = c[0].as_str().unwrap_or("");
        let got = date::parse(input);
        if got != c[1].as_f64() {
            failures.push(format!("{input:?}: got {got:?}, want {}", c[1]));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
    for c in f["numbers"].as_array().expect("numbers") {
        let n = c["input"].as_f64().unwrap_or(f64::NAN);
        assert_eq!(json!(date::to_iso_string(n)), c["iso"], "{n}");
    }
}

#[test]
fn operators_match_upstream() {
    let f = fixture("operators");
    for (name, ops) in obj(&f) {
        let t = match name.strip_prefix("set<").and_then(|s| s.strip_suffix('>')) {
            Some(item) => json!({"type": "set", "items": {"type": item}}),
            None if name == "record" => json!({"type": "record", "properties": {}}),
            None => json!({ "type": name }),
        };
        let t = DataType::from_json(&t).expect("type");
        let mut want: Vec<String> = serde_json::from_value(ops).unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        want.retain(|op| seen.insert(op.clone()));
        assert_eq!(types::supported_operators(&t), want, "{name}");
    }
}

#[test]
fn encode_update_matches_upstream() {
    let f = fixture("encode_update");
    let schema = schema_of(&f["schemas"]);
    let coll = schema.collection("c");
    for c in f["cases"].as_array().expect("cases") {
        let name = c["name"].as_str().unwrap_or("?");
        let got = types::encode_update("c", coll, &obj(&c["changes"]));
        match (
            got,
            c.get("encoded"),
            c.get("encode_err"),
            c.get("update_err"),
        ) {
            (Ok(enc), Some(want), _, None) => {
                let text = serde_json::to_string(&enc).unwrap_or_default();
                assert_eq!(text, want.to_string(), "{name}: value and key order");
                if let Some(coll) = coll {
                    assert!(types::validate_encoded(coll, &enc, true).is_ok(), "{name}");
                }
            }
            (Err(e), _, _, Some(err)) => assert_error(name, &e, err),
            (got, ..) => panic!("{name}: got {got:?}, want {c}"),
        }
    }
}
