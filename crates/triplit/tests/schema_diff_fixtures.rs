//! Schema diffs, dangerous-edit classification, data checks and the
//! `/override-schema` answer against vectors recorded from the real
//! `@triplit/db` 1.1.10 and `@triplit/server` 1.1.8: see
//! `fixtures/schema_diff/README.md`.

use std::sync::Arc;

use ferry_core::{ManualTime, SeededRandom};
use ferry_store::MemoryStore;
use ferry_triplit::db::TriplitDb;
use ferry_triplit::http::{Body, Input, handle};
use ferry_triplit::schema::Schema;
use ferry_triplit::schema::diff::{SchemaDiff, diff_schemas};
use ferry_triplit::schema::hash::{hash_object, schema_hash};
use ferry_triplit::schema::issues::{backwards_incompatible_edits, is_backwards_compatible};
use ferry_triplit::session::Session;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let text = match name {
        "diff" => include_str!("fixtures/schema_diff/diff.json"),
        "override" => include_str!("fixtures/schema_diff/override.json"),
        _ => "null",
    };
    serde_json::from_str(text).expect("fixture is JSON")
}

fn cases(f: &Value) -> &Vec<Value> {
    f["cases"].as_array().expect("cases")
}

fn schema(v: &Value) -> Schema {
    Schema::from_json(v).expect("fixture schema is valid")
}

#[test]
fn diffs_match_upstream() {
    let f = fixture("diff");
    assert!(cases(&f).len() >= 90);
    for c in cases(&f) {
        let name = c["name"].as_str().unwrap_or("?");
        let (old, new) = (schema(&c["old"]), schema(&c["new"]));
        let diff = diff_schemas(&old, &new);
        let got: Vec<Value> = diff.iter().map(SchemaDiff::to_json).collect();
        assert_eq!(Value::Array(got), c["diff"], "{name}: diff");
        let edits: Vec<Value> = backwards_incompatible_edits(&diff)
            .iter()
            .map(|e| {
                json!({
                    "issue": e.issue,
                    "dataConstraint": e.data_constraint.as_str(),
                    "context": e.context.to_json(),
                })
            })
            .collect();
        assert_eq!(Value::Array(edits), c["edits"], "{name}: edits");
        let compatible = c["edits"].as_array().is_some_and(Vec::is_empty);
        assert_eq!(
            is_backwards_compatible(&old, &new),
            compatible,
            "{name}: compatible"
        );
    }
}

#[test]
fn hashes_match_upstream() {
    let f = fixture("diff");
    let hashes = f["hashes"].as_array().expect("hashes");
    assert!(hashes.len() >= 15);
    for h in hashes {
        let want = h["hash"].as_u64().expect("hash");
        assert_eq!(u64::from(hash_object(&h["value"])), want, "{}", h["value"]);
        assert_eq!(u64::from(schema_hash(&h["value"])), want);
    }
}

async fn open_db() -> TriplitDb {
    TriplitDb::open(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualTime::new(1_700_000_000_000)),
        Arc::new(SeededRandom::new(7)),
    )
    .await
    .expect("open")
}

fn body(b: Body) -> Value {
    match b {
        Body::Json(v) => v,
        Body::JsonBytes(b) => serde_json::from_slice(&b).expect("the body is JSON"),
        Body::Text(t) => Value::String(t),
        Body::Empty => Value::Null,
    }
}

/// Replays a recorded case; returns `(status, body)` of every push and the
/// final `/schema` answer.
async fn replay(case: &Value) -> (Vec<(u16, Value)>, Value) {
    let db = open_db().await;
    let session = Session::service();
    let mut pushes = Vec::new();
    for step in case["steps"].as_array().expect("steps") {
        let (route, input) = match step[0].as_str() {
            Some("push") => ("override-schema", step[1].clone()),
            Some("insert") => (
                "insert",
                json!({"collectionName": step[1], "entity": step[2]}),
            ),
            Some("delete") => (
                "delete",
                json!({"collectionName": step[1], "entityId": step[2]}),
            ),
            other => panic!("unknown step {other:?}"),
        };
        let reply = handle(&db, &session, route, Input::Json(input), false).await;
        if route == "override-schema" {
            pushes.push((reply.status, body(reply.body)));
        } else {
            assert_eq!(reply.status, 200, "{}: {route}", case["name"]);
        }
    }
    let schema = handle(&db, &session, "schema", Input::Json(json!({})), false).await;
    (pushes, body(schema.body))
}

#[tokio::test]
async fn override_schema_matches_upstream_server() {
    let f = fixture("override");
    assert!(cases(&f).len() >= 70);
    for c in cases(&f) {
        let name = c["name"].as_str().unwrap_or("?");
        let (pushes, schema) = replay(c).await;
        let want = c["responses"].as_array().expect("responses");
        assert_eq!(pushes.len(), want.len(), "{name}");
        for (i, ((status, got), w)) in pushes.iter().zip(want).enumerate() {
            assert_eq!(u64::from(*status), w["status"], "{name} #{i}: status");
            let wb = &w["body"];
            if *status == 200 {
                assert_eq!(got, wb, "{name} #{i}");
            } else {
                // Upstream's 500 here carries the JS `TypeError` object as
                // its baseMessage; the name and context are the contract.
                assert_eq!(got["name"], wb["name"], "{name} #{i}: name");
                assert_eq!(got["contextMessage"], wb["contextMessage"], "{name} #{i}");
                if *status != 500 {
                    assert_eq!(got, wb, "{name} #{i}");
                }
            }
        }
        assert_eq!(schema, c["schema"], "{name}: /schema afterwards");
    }
}

/// Every dangerous-edit class is recorded both refused by existing data
/// and accepted without it.
#[test]
fn fixtures_cover_every_constraint_with_and_without_violations() {
    let f = fixture("override");
    let mut seen = std::collections::BTreeSet::new();
    for c in cases(&f) {
        for r in c["responses"].as_array().into_iter().flatten() {
            for i in r["body"]["issues"].as_array().into_iter().flatten() {
                seen.insert((
                    i["issue"].as_str().unwrap_or("").to_owned(),
                    i["violatesExistingData"].as_bool().unwrap_or(false),
                ));
            }
        }
    }
    for issue in [
        "removed an optional attribute",
        "removed a required attribute",
        "changed a attribute from optional to required",
        "changed the type of an attribute",
        "changed the type of a set's items",
        "added an attribute where optional is not set",
        "changed an attribute from nullable to non-nullable",
        "added an enum to an attribute or removed an option from an existing enum",
    ] {
        for violates in [true, false] {
            assert!(
                seen.contains(&(issue.to_owned(), violates)),
                "{issue} violates={violates}"
            );
        }
    }
}
