//! Arbitrary input never panics the schema parser, the type codec or the
//! date parser.

use ferry_core::{ManualTime, SeededRandom};
use ferry_triplit::schema::Schema;
use ferry_triplit::types::{self, DefaultsContext, date};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        (-1e22f64..1e22).prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "string",
            "number",
            "boolean",
            "date",
            "set",
            "record",
            "json",
            "id",
            "func",
            "nanoid",
            "now",
            "Set.empty",
            "2020-01-01",
            "garbage",
            "0",
            "",
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "type",
                        "config",
                        "properties",
                        "items",
                        "id",
                        "default",
                        "optional",
                        "nullable",
                        "enum",
                        "func",
                        "args",
                        "collections",
                        "roles",
                        "schema",
                        "match",
                        "a",
                        "0",
                    ]),
                    inner
                ),
                0..5
            )
            .prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

const SCHEMA: &str = r#"{"collections":{"c":{"schema":{"type":"record","properties":{
  "id":{"type":"string","config":{"default":{"func":"nanoid"}}},
  "s":{"type":"string","config":{"enum":["a","b"],"optional":true}},
  "n":{"type":"number"},"d":{"type":"date","config":{"nullable":true}},
  "t":{"type":"set","items":{"type":"date"}},"j":{"type":"json"},
  "r":{"type":"record","properties":{"a":{"type":"number","config":{"optional":true}}}}}}}}}"#;

proptest! {
    #[test]
    fn schema_parsing_never_panics(v in arb_json()) {
        let _ = Schema::from_json(&v);
        let _ = Schema::from_json(&json!({"collections": {"c": {"schema": v}}}));
    }

    #[test]
    fn codec_never_panics(v in prop::collection::vec((prop::sample::select(vec!["id", "s", "n", "d", "t", "j", "r", "x"]), arb_json()), 0..6)) {
        let schema = Schema::from_json(&serde_json::from_str(SCHEMA).unwrap_or_default()).ok();
        let c = schema.as_ref().and_then(|s| s.collection("c"));
        let input: Map<String, Value> = v.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let rng = SeededRandom::new(0);
        let time = ManualTime::new(0);
        let ctx = DefaultsContext { rng: &rng, time: &time };
        let _ = types::encode_insert(c, &input, &ctx);
        // The byte writer agrees with the map form, errors included.
        match (types::serialize_entity(c, &input), types::serialize_entity_json(c, &input)) {
            (Ok(m), Ok(b)) => prop_assert_eq!(std::str::from_utf8(&b).unwrap(), serde_json::to_string(&m).unwrap()),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "map {:?} vs bytes {:?}", a, b),
        }
        if let Some(c) = c {
            let _ = types::validate_encoded(c, &input, false);
            let _ = types::validate_encoded(c, &input, true);
        }
    }

    #[test]
    fn date_parsing_never_panics(s in "\\PC{0,40}", t in "[0-9TZ:+\\-. ()a-zA-Z/]{0,30}") {
        for input in [s, t] {
            if let Some(ms) = date::parse(&input) {
                prop_assert!(date::to_iso_string(ms).is_some());
            }
        }
    }
}
