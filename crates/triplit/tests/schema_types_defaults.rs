//! Defaults (with seeded randomness and a manual clock), error classes, and
//! the HTTP captures of `triplit-captures/http.json`.

use ferry_core::{ManualTime, SeededRandom};
use ferry_triplit::schema::{DataType, Schema};
use ferry_triplit::types::{self, DefaultsContext};
use serde_json::{Map, Value, json};

fn schema(props: Value) -> Schema {
    let mut p = json!({"id": {"type": "string", "config": {"nullable": false, "default": {"func": "nanoid", "args": null}}}});
    if let (Some(p), Value::Object(extra)) = (p.as_object_mut(), props) {
        p.extend(extra);
    }
    Schema::from_json(&json!({"collections": {"c": {"schema": {"type": "record", "config": {}, "properties": p}}}}))
        .expect("valid schema")
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn insert(
    s: &Schema,
    input: Value,
    seed: u64,
    now: u64,
) -> Result<Map<String, Value>, ferry_triplit::TriplitError> {
    let rng = SeededRandom::new(seed);
    let time = ManualTime::new(now);
    types::encode_insert(
        s.collection("c"),
        &obj(input),
        &DefaultsContext {
            rng: &rng,
            time: &time,
        },
    )
}

fn is_nanoid(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[test]
fn default_functions() {
    let s = schema(json!({
        "short": {"type": "string", "config": {"default": {"func": "nanoid", "args": [5.9]}}},
        "legacy": {"type": "string", "config": {"default": {"func": "uuid", "args": null}}},
        "v4": {"type": "string", "config": {"default": {"func": "uuidv4"}}},
        "v7": {"type": "string", "config": {"default": {"func": "uuidv7"}}},
        "at": {"type": "date", "config": {"default": {"func": "now", "args": null}}},
        "atString": {"type": "string", "config": {"default": {"func": "now"}}},
        "tags": {"type": "set", "items": {"type": "number"}, "config": {"default": {"func": "Set.empty", "args": null}}},
        "n": {"type": "number", "config": {"default": 3}},
        "opt": {"type": "string", "config": {"optional": true, "default": "d"}}
    }));
    let e = insert(&s, json!({}), 7, 1_700_000_000_123).expect("insert");
    let str_of = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    assert!(is_nanoid(&str_of("id"), 21), "{e:?}");
    assert!(
        is_nanoid(&str_of("short"), 5),
        "args[0] is truncated like `size |= 0`"
    );
    assert!(
        is_nanoid(&str_of("legacy"), 21),
        "\"uuid\" is a nanoid upstream"
    );
    let v4 = str_of("v4");
    assert!(v4.len() == 36 && v4.as_bytes()[14] == b'4', "{v4}");
    let v7 = str_of("v7");
    assert!(v7.starts_with("018bcfe5-687b-7"), "{v7}");
    assert_eq!(e["at"], json!("2023-11-14T22:13:20.123Z"));
    assert_eq!(e["atString"], json!("2023-11-14T22:13:20.123Z"));
    assert_eq!(e["tags"], json!({}));
    assert_eq!(e["n"], json!(3));
    assert_eq!(
        e["opt"],
        json!("d"),
        "an optional default applies when the key is absent"
    );
    // Deterministic for a seed, different across seeds.
    assert_eq!(
        insert(&s, json!({}), 7, 1_700_000_000_123).ok(),
        Some(e.clone())
    );
    assert_ne!(
        insert(&s, json!({}), 8, 1_700_000_000_123)
            .ok()
            .map(|x| x["id"].clone()),
        Some(e["id"].clone())
    );
    // An explicit null is kept, not defaulted.
    let e = insert(&s, json!({"opt": null, "id": "x"}), 7, 0).expect("insert");
    assert_eq!(
        (e["id"].clone(), e["opt"].clone()),
        (json!("x"), Value::Null)
    );
    // The id keeps its schema position when generated.
    assert_eq!(e.keys().next().map(String::as_str), Some("id"));
}

#[test]
fn bad_nanoid_size_is_an_error_not_a_panic() {
    let s = schema(
        json!({"x": {"type": "string", "config": {"default": {"func": "nanoid", "args": [-1]}}}}),
    );
    let e = insert(&s, json!({"id": "a"}), 1, 0).expect_err("negative size");
    assert_eq!((e.name.as_ref(), e.status), ("TriplitError", 500));
}

#[test]
fn schemaless_inserts_keep_the_entity() {
    let rng = SeededRandom::new(3);
    let time = ManualTime::new(0);
    let ctx = DefaultsContext {
        rng: &rng,
        time: &time,
    };
    let e = types::encode_insert(None, &obj(json!({"b": [1, 2], "a": {"x": null}})), &ctx)
        .expect("insert");
    assert_eq!(e.keys().cloned().collect::<Vec<_>>(), ["b", "a", "id"]);
    assert!(is_nanoid(e["id"].as_str().unwrap_or(""), 21));
    assert_eq!(types::serialize_entity(None, &e).ok(), Some(e.clone()));
    let kept = types::encode_insert(None, &obj(json!({"id": "x1", "a": 1})), &ctx).expect("insert");
    assert_eq!(Value::Object(kept), json!({"id": "x1", "a": 1}));
}

#[test]
fn captured_http_insert_and_bulk_insert() {
    let s = Schema::from_json(&json!({"collections": {"todos": {"schema": {"type": "record", "config": {}, "properties": {
        "id": {"type": "string", "config": {"nullable": false, "default": {"func": "nanoid", "args": null}}},
        "text": {"type": "string", "config": {}},
        "authorId": {"type": "string", "config": {}},
        "done": {"type": "boolean", "config": {"default": false}},
        "tags": {"type": "set", "items": {"type": "string", "config": {}}, "config": {"default": {"func": "Set.empty", "args": null}}},
        "due": {"type": "date", "config": {"optional": true}},
        "meta": {"type": "record", "config": {"optional": true}, "properties": {"prio": {"type": "number", "config": {}}}},
        "extra": {"type": "json", "config": {"optional": true}}}}}}}))
    .expect("valid");
    let todos = s.collection("todos");
    let rng = SeededRandom::new(1);
    let time = ManualTime::new(0);
    let ctx = DefaultsContext {
        rng: &rng,
        time: &time,
    };
    let cases = [
        (
            json!({"id": "h1", "text": "x", "authorId": "u1", "due": "2025-01-01T00:00:00.000Z", "tags": ["q"]}),
            r#"{"id":"h1","text":"x","authorId":"u1","done":false,"tags":["q"],"due":"2025-01-01T00:00:00.000Z"}"#,
        ),
        (
            json!({"id": "h2", "text": "y", "authorId": "u1"}),
            r#"{"id":"h2","text":"y","authorId":"u1","done":false,"tags":[]}"#,
        ),
    ];
    for (input, want) in cases {
        let stored = types::encode_insert(todos, &obj(input), &ctx).expect("insert");
        if let Some(c) = todos {
            types::validate_encoded(c, &stored, false).expect("valid");
        }
        let out = types::serialize_entity(todos, &stored).expect("serialize");
        assert_eq!(serde_json::to_string(&out).ok().as_deref(), Some(want));
    }
}

#[test]
fn error_classes() {
    let s = schema(
        json!({"text": {"type": "string"}, "n": {"type": "number", "config": {"optional": true}}}),
    );
    let c = s.collection("c").expect("c");
    // The captured /insert error (http2.out.txt), exactly.
    let e = insert(&s, json!({"id": "bad", "text": 5}), 1, 0).expect_err("type");
    assert_eq!(
        e.to_json(),
        json!({"name":"DBSerializationError","message":"There was an error serializing an input to an acceptable format. Could not transform the data: [object Object] as type: record | Context: Could not encode property: 'text'. Error: There was an error serializing an input to an acceptable format. Could not transform the data: 5 as type: string","baseMessage":"There was an error serializing an input to an acceptable format. Could not transform the data: [object Object] as type: record","status":400,"contextMessage":"Could not encode property: 'text'. Error: There was an error serializing an input to an acceptable format. Could not transform the data: 5 as type: string"})
    );
    // validateEncoded: missing required on insert, accepted when partial.
    let e = types::validate_encoded(c, &obj(json!({"id": "a"})), false).expect_err("missing");
    assert_eq!((e.name.as_ref(), e.status), ("DBSerializationError", 400));
    assert_eq!(
        e.context_message.as_deref(),
        Some("Property text is invalid: Encoded value undefined is not valid for type string.")
    );
    assert!(types::validate_encoded(c, &obj(json!({"n": null, "zz": 1})), true).is_ok());
    assert!(types::validate_encoded(c, &obj(json!({"text": null})), true).is_err());
    // Serializing a stored value of the wrong type.
    let e =
        types::serialize_entity(Some(c), &obj(json!({"id": "a", "text": 1}))).expect_err("decode");
    assert_eq!((e.name.as_ref(), e.status), ("DBDeserializationError", 400));
}

#[test]
fn set_keys_and_operators() {
    let number = DataType::from_json(&json!({"type": "number"})).expect("number");
    let date = DataType::from_json(&json!({"type": "date"})).expect("date");
    let boolean = DataType::from_json(&json!({"type": "boolean"})).expect("boolean");
    assert_eq!(
        types::set_key(&number, &json!(1e21)).ok().as_deref(),
        Some("1e+21")
    );
    assert_eq!(
        types::set_key(&number, &json!(1.0)).ok().as_deref(),
        Some("1")
    );
    assert_eq!(
        types::set_key(&boolean, &json!(false)).ok().as_deref(),
        Some("false")
    );
    assert_eq!(
        types::set_key(&date, &json!(86_400_000)).ok().as_deref(),
        Some("1970-01-02T00:00:00.000Z")
    );
    assert_eq!(
        types::set_key(&number, &json!("1"))
            .map_err(|e| e.name)
            .err()
            .as_deref(),
        Some("DBSerializationError")
    );
    let set =
        DataType::from_json(&json!({"type": "set", "items": {"type": "string"}})).expect("set");
    assert!(types::supported_operators(&set).contains(&"SET_like"));
    assert!(!types::supported_operators(&number).contains(&"like"));
    assert_eq!(
        types::supported_operators(&date),
        ["isDefined", "=", "!=", "<", ">", "<=", ">="]
    );
}
