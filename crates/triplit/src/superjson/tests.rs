//! The codec's unit and property tests.

use super::decode::*;
use super::encode::*;
use super::*;
use crate::changes::{CollectionChanges, DbChanges};
use proptest::prelude::*;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(o) => o,
        _ => panic!("not an object"),
    }
}

/// `(collection, [(id, entity)], [deleted id])`.
type Spec<'a> = (&'a str, Vec<(&'a str, Value)>, Vec<&'a str>);

fn changes(cs: Vec<Spec<'_>>) -> DbChanges {
    DbChanges {
        collections: cs
            .into_iter()
            .map(|(name, sets, deletes)| {
                (
                    name.to_owned(),
                    CollectionChanges {
                        sets: sets
                            .into_iter()
                            .map(|(id, e)| (id.to_owned(), obj(e)))
                            .collect(),
                        deletes: deletes.into_iter().map(str::to_owned).collect(),
                    },
                )
            })
            .collect(),
    }
}

#[test]
fn escape_and_split() {
    assert_eq!(escape_path_segment("todos"), "todos");
    assert_eq!(escape_path_segment("weird.name"), "weird\\.name");
    assert_eq!(escape_path_segment("a\\b"), "a\\\\b");
    assert_eq!(escape_path_segment("a\\.b"), "a\\\\\\.b");
    assert_eq!(
        join_annotation_path(&["weird.name", "sets"]),
        "weird\\.name.sets"
    );
    let s = |p: &str, legacy| split_annotation_path(p, legacy).expect("valid");
    assert_eq!(s("todos.sets", false), ["todos", "sets"]);
    assert_eq!(s("", false), [""]);
    assert_eq!(s("a..b", false), ["a", "", "b"]);
    assert_eq!(s("weird\\.name.sets", false), ["weird.name", "sets"]);
    assert_eq!(s("a\\\\b.sets", false), ["a\\b", "sets"]);
    assert_eq!(s("a\\\\.sets", false), ["a\\", "sets"]);
    assert!(split_annotation_path("a\\qb", false).is_err());
    assert!(split_annotation_path("a\\", false).is_err());
    // Legacy: only `\.` escapes.
    assert_eq!(s("weird\\.name.sets", true), ["weird.name", "sets"]);
    assert_eq!(s("a\\\\b.sets", true), ["a\\\\b", "sets"]);
    assert_eq!(s("a\\qb", true), ["a\\qb"]);
    assert_eq!(s("a\\", true), ["a\\"]);
    assert_eq!(s("a\\\\.b", true), ["a\\.b"]);
}

#[test]
fn encode_captured_frame_shape() {
    let d = changes(vec![("todos", vec![], vec![])]);
    assert_eq!(
        serde_json::to_string(&encode_changes(&d)).expect("ser"),
        r#"{"json":{"todos":{"sets":[],"deletes":[]}},"meta":{"values":{"todos.sets":["map"],"todos.deletes":["set"]},"v":1}}"#
    );
    assert_eq!(encode_changes(&DbChanges::default()), json!({"json": {}}));
}

#[test]
fn encode_normalises_numbers_like_json_parse() {
    let d = changes(vec![(
        "n",
        vec![(
            "a",
            json!({"negz": -0.0, "one": 1.0, "big": 9_007_199_254_740_993_u64, "neg": -9_007_199_254_740_993_i64, "f": 0.5}),
        )],
        vec![],
    )]);
    let e = encode_changes(&d);
    let entity = &e["json"]["n"]["sets"][0][1];
    assert_eq!(entity["negz"], json!(0));
    assert_eq!(entity["one"], json!(1));
    assert_eq!(entity["big"], json!(9_007_199_254_740_992.0));
    assert_eq!(entity["neg"], json!(-9_007_199_254_740_992.0));
    assert_eq!(entity["f"], json!(0.5));
}

#[test]
fn encode_orders_like_a_js_object() {
    let d = changes(vec![
        ("todos", vec![], vec![]),
        ("10", vec![], vec![]),
        (
            "2",
            vec![("b", json!({"z": 1, "3": 2, "1": 3})), ("a", json!({}))],
            vec!["y", "x", "y"],
        ),
        ("02", vec![], vec![]),
    ]);
    let e = encode_changes(&d);
    let keys: Vec<&String> = e["json"].as_object().expect("obj").keys().collect();
    assert_eq!(keys, ["2", "10", "todos", "02"]);
    let mkeys: Vec<&String> = e["meta"]["values"]
        .as_object()
        .expect("obj")
        .keys()
        .collect();
    assert_eq!(
        mkeys,
        [
            "2.sets",
            "2.deletes",
            "10.sets",
            "10.deletes",
            "todos.sets",
            "todos.deletes",
            "02.sets",
            "02.deletes"
        ]
    );
    let ekeys: Vec<&String> = e["json"]["2"]["sets"][0][1]
        .as_object()
        .expect("obj")
        .keys()
        .collect();
    assert_eq!(ekeys, ["1", "3", "z"]);
    assert_eq!(e["json"]["2"]["deletes"], json!(["y", "x"]));
}

#[test]
fn encode_duplicates_behave_like_map_and_set() {
    let d = changes(vec![
        (
            "c",
            vec![
                ("a", json!({"v": 1})),
                ("b", json!({"v": 2})),
                ("a", json!({"v": 3})),
            ],
            vec![],
        ),
        ("c", vec![("z", json!({}))], vec!["q"]),
    ]);
    let e = encode_changes(&d);
    // The later collection entry replaces the earlier one, in its place.
    assert_eq!(
        e["json"],
        json!({"c": {"sets": [["z", {}]], "deletes": ["q"]}})
    );
    let d = changes(vec![(
        "c",
        vec![
            ("a", json!({"v": 1})),
            ("b", json!({"v": 2})),
            ("a", json!({"v": 3})),
        ],
        vec![],
    )]);
    assert_eq!(
        encode_changes(&d)["json"]["c"]["sets"],
        json!([["a", {"v": 3}], ["b", {"v": 2}]])
    );
}

#[test]
fn decode_rules() {
    let d = decode_changes(&json!({
        "json": {"todos": {"sets": [["t1", {"due": null, "n": "NaN", "i": "Infinity", "ni": "-Infinity", "z": "-0", "when": "2020-01-01", "nested": {"a": null}}]], "deletes": ["t9"]}},
        "meta": {"values": {"todos.sets": ["map", {"0.1.due": ["undefined"], "0.1.n": ["number"], "0.1.i": ["number"], "0.1.ni": ["number"], "0.1.z": ["number"], "0.1.when": ["Date"], "0.1.nested.a": ["undefined"]}], "todos.deletes": ["set"]}, "v": 1, "referentialEqualities": {"x": ["y"]}}
    }))
    .expect("decodes");
    assert_eq!(
        d,
        changes(vec![(
            "todos",
            vec![(
                "t1",
                json!({"due": null, "n": null, "i": null, "ni": null, "z": 0, "when": "2020-01-01", "nested": {"a": null}})
            )],
            vec!["t9"]
        )])
    );
    assert_eq!(
        decode_changes(&json!({"json": {}})).expect("empty"),
        DbChanges::default()
    );
    let plain =
        decode_changes(&json!({"json": {"t": {"sets": {"a": {"x": 1}}, "deletes": ["b"]}}}))
            .expect("plain");
    assert_eq!(
        plain,
        changes(vec![("t", vec![("a", json!({"x": 1}))], vec!["b"])])
    );
}

#[test]
fn decode_number_annotation_on_non_strings() {
    let d = decode_changes(&json!({
        "json": {"t": {"sets": [["a", {"b": true, "n": null, "x": 4}]]}},
        "meta": {"values": {"t.sets": ["map", {"0.1.b": ["number"], "0.1.n": ["number"], "0.1.x": ["number"], "0.1.missing": ["number"]}]}, "v": 1}
    }))
    .expect("decodes");
    assert_eq!(
        d.collections[0].1.sets[0].1,
        obj(json!({"b": 1, "n": 0, "x": 4, "missing": null}))
    );
    let bad = decode_changes(&json!({
        "json": {"t": {"sets": [["a", {"o": {}}]]}},
        "meta": {"values": {"t.sets": ["map", {"0.1.o": ["number"]}]}, "v": 1}
    }));
    assert!(bad.is_err());
    let bad_date = decode_changes(&json!({
        "json": {"t": {"sets": [["a", {"d": 5}]]}},
        "meta": {"values": {"t.sets": ["map", {"0.1.d": ["Date"]}]}, "v": 1}
    }));
    assert!(bad_date.is_err());
}

#[test]
fn decode_path_past_array_end_is_an_error() {
    let e = decode_changes(&json!({
        "json": {"t": {"sets": [["a", {"l": [1]}]]}},
        "meta": {"values": {"t.sets": ["map", {"0.1.l.3": ["undefined"]}]}, "v": 1}
    }))
    .expect_err("past the end");
    assert_eq!(e.name, "DBDeserializationError");
    assert_eq!(e.status, 400);
    assert_eq!(e.base_message, DESERIALIZATION_ERROR_MESSAGE);
}

#[test]
fn decode_accepts_names_superjson_rejects_as_prototype_pollution() {
    let d = changes(vec![(
        "constructor",
        vec![("__proto__", json!({"prototype": 1}))],
        vec![],
    )]);
    assert_eq!(decode_changes(&encode_changes(&d)).expect("round trip"), d);
}

#[test]
fn decode_rejects_absurdly_deep_trees_without_overflowing() {
    let mut tree = json!(["undefined"]);
    for _ in 0..10_000 {
        let mut m = Map::new();
        m.insert("a".to_owned(), tree);
        tree = Value::Object(m);
    }
    let mut meta = Map::new();
    meta.insert("values".to_owned(), tree);
    meta.insert("v".to_owned(), json!(1));
    let mut p = Map::new();
    p.insert("json".to_owned(), json!({}));
    p.insert("meta".to_owned(), Value::Object(meta));
    let payload = Value::Object(p);
    assert!(decode_changes(&payload).is_err());
    // Dropping a 10 000-deep Value recurses; do it on a big stack.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || drop(payload))
        .expect("spawn")
        .join()
        .expect("join");
}

#[test]
fn legacy_version_detection() {
    assert!(is_legacy_version(None));
    assert!(is_legacy_version(Some(&json!(null))));
    assert!(is_legacy_version(Some(&json!(0))));
    assert!(is_legacy_version(Some(&json!(false))));
    assert!(is_legacy_version(Some(&json!(" "))));
    assert!(!is_legacy_version(Some(&json!(1))));
    assert!(!is_legacy_version(Some(&json!(2))));
    assert!(!is_legacy_version(Some(&json!("1"))));
    assert!(!is_legacy_version(Some(&json!(true))));
    assert!(!is_legacy_version(Some(&json!({}))));
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        "[a-z.\\\\0-9😀]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(("[a-z0-9.\\\\]{0,4}", inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn arb_entity() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec(("[a-z0-9.\\\\_]{0,5}", arb_json()), 0..5)
        .prop_map(|kv| kv.into_iter().collect())
}

fn arb_changes() -> impl Strategy<Value = DbChanges> {
    let collection = (
        prop::collection::vec(("[a-zA-Z0-9.\\\\é😀 -]{0,6}", arb_entity()), 0..6),
        prop::collection::vec("[a-z0-9.]{0,4}", 0..5),
    )
        .prop_map(|(sets, deletes)| CollectionChanges { sets, deletes });
    prop::collection::vec(("[a-z0-9.\\\\_]{0,6}", collection), 0..5)
        .prop_map(|collections| DbChanges { collections })
}

/// What a JS `DBChanges` built from `d` holds: collections and keys in
/// JS order, Map/Set dedupe, numbers as doubles.
fn js_view(d: &DbChanges) -> DbChanges {
    let mut by_name: Vec<(String, CollectionChanges)> = Vec::new();
    for i in js_key_order(d.collections.iter().map(|(c, _)| c.as_str())) {
        let (name, c) = &d.collections[i];
        let mut sets: Vec<(String, Map<String, Value>)> = Vec::new();
        for (id, e) in &c.sets {
            let e = js_object(e);
            match sets.iter_mut().find(|(x, _)| x == id) {
                Some(slot) => slot.1 = e,
                None => sets.push((id.clone(), e)),
            }
        }
        let mut deletes: Vec<String> = Vec::new();
        for id in &c.deletes {
            if !deletes.contains(id) {
                deletes.push(id.clone());
            }
        }
        let cc = CollectionChanges { sets, deletes };
        match by_name.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = cc,
            None => by_name.push((name.clone(), cc)),
        }
    }
    DbChanges {
        collections: by_name,
    }
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(d in arb_changes()) {
        let expected = js_view(&d);
        let decoded = decode_changes(&encode_changes(&d)).expect("own output decodes");
        prop_assert_eq!(&decoded, &expected);
        // And for changes already in JS form, exactly the identity.
        prop_assert_eq!(decode_changes(&encode_changes(&expected)).expect("decodes"), expected);
    }

    #[test]
    fn encode_is_a_fixed_point_through_json_text(d in arb_changes()) {
        let e = encode_changes(&d);
        let text = serde_json::to_string(&e).expect("ser");
        let back: Value = serde_json::from_str(&text).expect("parse");
        let again = encode_changes(&decode_changes(&back).expect("decodes"));
        prop_assert_eq!(again, e);
    }

    #[test]
    fn text_encoding_equals_the_value_encoding(d in arb_changes(), pick in prop::collection::vec(any::<bool>(), 0..12)) {
        // Changes as sync builds them: each collection once.
        let names: HashSet<&str> = d.collections.iter().map(|(c, _)| c.as_str()).collect();
        prop_assume!(names.len() == d.collections.len());
        // Move some sets out as pre-encoded entries, as realtime sync
        // does for entities shared by commits.
        let mut own = d.clone();
        let mut extra = Vec::new();
        let mut k = 0;
        for (name, c) in own.collections.iter_mut() {
            let mut kept = Vec::new();
            for (id, e) in c.sets.drain(..) {
                let p = pick.get(k).copied().unwrap_or(false);
                k += 1;
                if p {
                    extra.push((name.clone(), id.clone(), Arc::from(encode_set_entry(&id, &e))));
                } else {
                    kept.push((id, e));
                }
            }
            c.sets = kept;
        }
        // The combined changes, in the order the text encoder takes them.
        let mut combined = own.clone();
        for (c, id, text) in &extra {
            let v: Value = serde_json::from_str(text).unwrap();
            let e = v[1].as_object().unwrap().clone();
            combined.collection_mut(c).sets.push((id.clone(), e));
        }
        prop_assert_eq!(
            encode_changes_text(&own, &extra),
            encode_changes(&combined).to_string()
        );
    }

    #[test]
    fn split_inverts_join(segs in prop::collection::vec("[a-z.\\\\]{0,5}", 1..5)) {
        let joined = join_annotation_path(&segs);
        prop_assert_eq!(split_annotation_path(&joined, false).expect("valid"), segs);
    }

    #[test]
    fn decode_never_panics(json in arb_json(), values in arb_json(), v in arb_json()) {
        let _ = decode_changes(&json);
        let _ = decode_changes(&json!({"json": json, "meta": {"values": values, "v": v}}));
    }

    #[test]
    fn decode_never_panics_on_annotated_changes(
        d in arb_changes(),
        paths in prop::collection::vec(("[a-z0-9.\\\\]{0,12}", prop_oneof![
            Just(json!(["undefined"])), Just(json!(["number"])), Just(json!(["Date"])),
            Just(json!(["map"])), Just(json!(["set"])), Just(json!([])), Just(json!("x")),
            Just(json!(["map", {"0.1.a": ["undefined"]}])), Just(json!([["class", "X"]])),
        ]), 0..6),
    ) {
        let mut e = encode_changes(&d);
        let mut values = e["meta"]["values"].as_object().cloned().unwrap_or_default();
        for (p, t) in paths {
            values.insert(p, t);
        }
        e["meta"] = json!({"values": values, "v": 1});
        let _ = decode_changes(&e);
    }
}
