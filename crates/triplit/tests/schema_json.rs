//! Schema JSON: parsing, verbatim round trip, default roles, and every
//! validation rule against upstream's `validateSchema` messages.

use ferry_triplit::schema::{
    DataType, Schema, SchemaError, apply_default_roles, default_roles, validate_schema,
};
use serde_json::{Value, json};

/// The schema `POST /schema` returned in `triplit-captures/http.json`
/// (the schema of triplit.md §5.1).
const CAPTURED: &str = r#"{"roles":{"user":{"match":{"sub":"$userId"}}},"collections":{"todos":{"schema":{"type":"record","config":{},"properties":{"id":{"type":"string","config":{"nullable":false,"default":{"func":"nanoid","args":null}}},"text":{"type":"string","config":{}},"authorId":{"type":"string","config":{}},"done":{"type":"boolean","config":{"default":false}},"tags":{"type":"set","items":{"type":"string","config":{}},"config":{"default":{"func":"Set.empty","args":null}}},"due":{"type":"date","config":{"optional":true}},"meta":{"type":"record","config":{"optional":true},"properties":{"prio":{"type":"number","config":{}}}},"extra":{"type":"json","config":{"optional":true}}}},"relationships":{"author":{"query":{"collectionName":"profiles","where":[["id","=","$authorId"]]},"cardinality":"one"}},"permissions":{"user":{"read":{"filter":[["authorId","=","$role.userId"]]},"insert":{"filter":[["authorId","=","$role.userId"]]},"update":{"filter":[["authorId","=","$role.userId"]]},"postUpdate":{"filter":[["authorId","=","$role.userId"]]},"delete":{"filter":[["authorId","=","$role.userId"]]}}}},"profiles":{"schema":{"type":"record","config":{},"properties":{"id":{"type":"string","config":{"nullable":false,"default":{"func":"nanoid","args":null}}},"name":{"type":"string","config":{}}}},"permissions":{"user":{"read":{"filter":[true]},"insert":{"filter":[["id","=","$role.userId"]]}}}}}}"#;

/// `/override-schema` body and the `newSchema` it answered with
/// (`triplit-captures/http2.out.txt`): the server added the default roles.
const HTTP2_IN: &str = r#"{"collections":{"todos":{"schema":{"type":"record","config":{},"properties":{"id":{"type":"string","config":{"nullable":false,"default":{"func":"nanoid","args":null}}},"text":{"type":"string","config":{}}}}}}}"#;
const HTTP2_OUT: &str = r#"{"collections":{"todos":{"schema":{"type":"record","config":{},"properties":{"id":{"type":"string","config":{"nullable":false,"default":{"func":"nanoid","args":null}}},"text":{"type":"string","config":{}}}}}},"roles":{"anonymous":{"match":{"x-triplit-token-type":"anon"}},"authenticated":{"match":{"sub":"$sub"}}}}"#;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("json")
}

#[test]
fn captured_schema_round_trips_verbatim() {
    let schema = Schema::from_json(&parse(CAPTURED)).expect("valid");
    assert_eq!(
        serde_json::to_string(&schema.to_json()).ok().as_deref(),
        Some(CAPTURED)
    );
    assert_eq!(
        schema.collection_names().collect::<Vec<_>>(),
        ["todos", "profiles"]
    );
    assert_eq!(
        schema
            .roles()
            .map(|r| r.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["user".to_string()])
    );
    let todos = schema.collection("todos").expect("todos");
    let names: Vec<_> = todos.properties().iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "id", "text", "authorId", "done", "tags", "due", "meta", "extra"
        ]
    );
    assert!(
        matches!(todos.property("tags"), Some(DataType::Set { items, .. }) if matches!(**items, DataType::String(_)))
    );
    assert!(todos.property("due").is_some_and(DataType::is_optional));
    assert!(matches!(
        todos.schema.path(["meta", "prio"]),
        Some(DataType::Number(_))
    ));
    assert_eq!(todos.relationships["author"]["cardinality"], json!("one"));
    assert!(
        todos
            .permissions
            .as_ref()
            .is_some_and(|p| p["user"]["postUpdate"].is_object())
    );
    assert!(
        schema
            .collection("profiles")
            .is_some_and(|p| p.relationships.is_empty())
    );
    assert!(schema.collection("nope").is_none());
    // Custom roles replace the defaults.
    assert_eq!(schema.clone().with_default_roles(), schema);
}

#[test]
fn default_roles_as_the_override_schema_route_adds_them() {
    let with = Schema::from_json(&parse(HTTP2_IN))
        .expect("valid")
        .with_default_roles();
    assert_eq!(
        serde_json::to_string(&with.to_json()).ok().as_deref(),
        Some(HTTP2_OUT)
    );
    assert_eq!(with.roles(), Some(&default_roles()));
    let mut raw = parse(HTTP2_IN);
    apply_default_roles(&mut raw);
    assert_eq!(raw, parse(HTTP2_OUT));
    // `roles: null` is replaced where it stands.
    let with = Schema::from_json(&json!({"roles": null, "collections": {}}))
        .expect("valid")
        .with_default_roles();
    let keys: Vec<_> = with
        .to_json()
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["roles", "collections"]);
    assert_eq!(
        with.to_json()["roles"]["anonymous"],
        json!({"match": {"x-triplit-token-type": "anon"}})
    );
    // JS truthiness before validation: a falsy `roles` is replaced, missing
    // collections add nothing, an empty roles array is kept.
    let mut raw = json!({"collections": {}, "roles": false});
    apply_default_roles(&mut raw);
    assert_eq!(
        raw["roles"]["authenticated"],
        json!({"match": {"sub": "$sub"}})
    );
    let mut raw = json!({"roles": 0});
    apply_default_roles(&mut raw);
    assert_eq!(raw, json!({"roles": 0}));
    let kept = Schema::from_json(&json!({"collections": {}, "roles": []}))
        .expect("valid")
        .with_default_roles();
    assert_eq!(kept.to_json()["roles"], json!([]));
    assert_eq!(kept.roles().map(|r| r.len()), Some(0));
}

#[test]
fn keys_come_back_in_js_order() {
    let v = json!({"collections": {"c": {"schema": {"type": "record", "properties": {
        "id": {"type": "string"}, "b": {"type": "number"}, "10": {"type": "number"}, "2": {"type": "boolean"}}}}}});
    let schema = Schema::from_json(&v).expect("valid");
    let props = schema.to_json()["collections"]["c"]["schema"]["properties"].clone();
    let keys: Vec<_> = props
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["2", "10", "id", "b"]);
    let c = schema.collection("c").expect("c");
    assert_eq!(
        c.properties()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["2", "10", "id", "b"]
    );
}

#[test]
fn validation_matches_upstream_messages() {
    let cases: Value = serde_json::from_str(include_str!("fixtures/types/schema_validation.json"))
        .expect("fixture");
    let cases = cases.as_array().expect("cases");
    assert!(cases.len() > 120);
    for c in cases {
        let name = c["name"].as_str().unwrap_or("?");
        let want = c["message"].as_str();
        assert_eq!(
            validate_schema(&c["schema"]).err().as_deref(),
            want,
            "{name}"
        );
        match Schema::from_json(&c["schema"]) {
            Ok(s) => {
                assert!(want.is_none(), "{name}: accepted");
                assert_eq!(s.to_json(), c["schema"], "{name}: round trip");
            }
            Err(SchemaError { message }) => assert_eq!(Some(message.as_str()), want, "{name}"),
        }
    }
    assert_eq!(SchemaError::CODE, "SCHEMA_INVALID");
}

#[test]
fn error_displays_the_reason() {
    let e = Schema::from_json(&json!({"collections": {"_x": {}}})).expect_err("invalid");
    assert_eq!(
        e.to_string(),
        "schema collections definition is invalid: \"_x\" is not a valid collection name: collection name cannot start with an underscore"
    );
}
