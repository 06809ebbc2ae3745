//! Triplit's HTTP API as transport-independent handlers.
//!
//! The server crate parses the request (route segment, JSON body, query
//! string, verified session) and sends back what [`handle`] returns; every
//! decision about Triplit semantics is made here.

use serde_json::{Map, Value, json};

use crate::TriplitError;
use crate::db::{Transaction, TriplitDb};
use crate::query;
use crate::schema::Schema;
use crate::session::Session;
use crate::superjson::decode_changes;
use crate::types::{DefaultsContext, encode_insert, serialize_entity};

/// What a route answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A JSON document.
    Json(Value),
    /// A JSON document already written out (the `/fetch` rows).
    JsonBytes(Vec<u8>),
    /// `text/plain`.
    Text(String),
    /// No body at all.
    Empty,
}

/// An HTTP answer: status and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Body,
}

impl Reply {
    fn ok(v: Value) -> Self {
        Reply {
            status: 200,
            body: Body::Json(v),
        }
    }
}

impl From<TriplitError> for Reply {
    fn from(e: TriplitError) -> Self {
        Reply {
            status: e.status,
            body: Body::Json(e.to_json()),
        }
    }
}

/// The request body as the server read it.
#[derive(Debug, Clone)]
pub enum Input {
    /// No body, or an empty one.
    None,
    /// Parsed JSON.
    Json(Value),
    /// A body that is not JSON (the parse error).
    Invalid(String),
}

/// Routes upstream recognises (the triple-era ones answer 404 as upstream's do).
const ROUTES: &[&str] = &[
    "apply-changes",
    "bulk-insert",
    "clear",
    "delete",
    "delete-all",
    "fetch",
    "insert",
    "override-schema",
    "schema",
    "stats",
    "update",
    "webhooks-get",
    "webhooks-push",
    "webhooks-clear",
];

/// Whether `route` is handled by [`handle`].
pub fn is_route(route: &str) -> bool {
    ROUTES.contains(&route)
}

fn admin_only(route: &str) -> bool {
    matches!(
        route,
        "clear"
            | "stats"
            | "schema"
            | "override-schema"
            | "apply-changes"
            | "delete-all"
            | "webhooks-get"
            | "webhooks-push"
            | "webhooks-clear"
    )
}

fn params(input: Input) -> Result<Map<String, Value>, TriplitError> {
    match input {
        Input::None => Ok(Map::new()),
        Input::Json(Value::Object(m)) => Ok(m),
        Input::Json(Value::Null) => Ok(Map::new()),
        Input::Json(other) => Err(TriplitError::new(
            "JSONDeserializationError",
            400,
            "There was an error deserializing the request body.",
            Some(format!(
                "the body must be a JSON object, got {}",
                type_name(&other)
            )),
        )),
        Input::Invalid(e) => Err(TriplitError::new(
            "JSONDeserializationError",
            400,
            "There was an error deserializing the request body.",
            Some(format!("the body is not valid JSON: {e}")),
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn collection_name(p: &Map<String, Value>, key: &str) -> Result<String, TriplitError> {
    match p.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        other => Err(TriplitError::invalid_collection_name(
            &other
                .map(|v| v.to_string())
                .unwrap_or_else(|| "undefined".into()),
            Some("Collection name must be defined".into()),
        )),
    }
}

fn entity_id(p: &Map<String, Value>) -> Result<String, TriplitError> {
    match p.get("entityId") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(crate::jsnum::js_number_to_string(
            n.as_f64().unwrap_or(f64::NAN),
        )),
        other => Err(TriplitError::new(
            "InvalidOperationError",
            400,
            "entityId must be a string",
            Some(format!(
                "got {}",
                other.map(type_name).unwrap_or("undefined")
            )),
        )),
    }
}

fn check_collection(db: &TriplitDb, name: &str) -> Result<(), TriplitError> {
    if let Some(schema) = db.schema()
        && name != "_metadata"
        && schema.collection(name).is_none()
    {
        return Err(TriplitError::invalid_collection_name(
            name,
            Some(format!("Collection '{name}' does not exist in the schema")),
        ));
    }
    Ok(())
}

/// Read permissions are applied by [`query::prepare`] (ANDed into the
/// query and every subquery); nothing is refused up front. A query that
/// is not an object has no collection name (upstream crashes on `null`).
fn read_permission_gate(
    db: &TriplitDb,
    _session: &Session,
    query: &Value,
) -> Result<(), TriplitError> {
    if query.is_object() {
        // The same check preparation makes first, kept for its message.
        if let Some(Value::String(name)) = query.get("collectionName")
            && !name.is_empty()
        {
            check_collection(db, name)?;
        }
        return Ok(());
    }
    Err(TriplitError::invalid_collection_name(
        &crate::types::js::js_string(crate::types::js::js_get(query, "collectionName")),
        Some("Collection name must be provided".into()),
    ))
}

/// Answers `POST /<route>`.
pub async fn handle(
    db: &TriplitDb,
    session: &Session,
    route: &str,
    input: Input,
    no_return: bool,
) -> Reply {
    if !is_route(route) {
        return TriplitError::route_not_found(&format!("/{route}")).into();
    }
    if admin_only(route) && !session.is_service {
        return TriplitError::service_key_required().into();
    }
    match dispatch(db, session, route, input, no_return).await {
        Ok(reply) => reply,
        Err(e) => e.into(),
    }
}

async fn dispatch(
    db: &TriplitDb,
    session: &Session,
    route: &str,
    input: Input,
    no_return: bool,
) -> Result<Reply, TriplitError> {
    let p = params(input)?;
    match route {
        "fetch" => {
            let query_json = p.get("query").cloned().unwrap_or(Value::Null);
            let schema = db.schema();
            read_permission_gate(db, session, &query_json)?;
            let prepared = query::prepare(&query_json, schema.as_deref(), session)?;
            Ok(Reply {
                status: 200,
                body: Body::JsonBytes(db.fetch_json(prepared, schema).await?),
            })
        }
        "insert" => {
            let collection = collection_name(&p, "collectionName")?;
            let entity = insert_document(p.get("entity"))?;
            let inserted = insert_many(db, session, vec![(collection, vec![entity])], true).await?;
            let first = inserted.into_iter().next().and_then(|(_, mut v)| v.pop());
            Ok(Reply::ok(first.map(Value::Object).unwrap_or(Value::Null)))
        }
        "bulk-insert" => {
            let mut batches = Vec::new();
            // The entities are moved out of the parsed body, not copied.
            for (collection, entities) in p {
                let Value::Array(items) = entities else {
                    return Err(TriplitError::new(
                        "InvalidInsertDocumentError",
                        400,
                        "Bulk insert expects an array of entities per collection.",
                        Some(format!("'{collection}' holds {}", type_name(&entities))),
                    ));
                };
                let docs = items
                    .into_iter()
                    .map(|i| match i {
                        Value::Object(m) => Ok(m),
                        other => insert_document(Some(&other)),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                batches.push((collection, docs));
            }
            let inserted = insert_many(db, session, batches, !no_return).await?;
            if no_return {
                return Ok(Reply::ok(json!({})));
            }
            let mut out = Map::new();
            for (collection, entities) in inserted {
                let list = out
                    .entry(collection)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(l) = list {
                    l.extend(entities.into_iter().map(Value::Object));
                }
            }
            Ok(Reply::ok(Value::Object(out)))
        }
        "update" => {
            let collection = collection_name(&p, "collectionName")?;
            let id = entity_id(&p)?;
            let changes = match p.get("changes") {
                Some(Value::Object(m)) => m.clone(),
                other => {
                    return Err(TriplitError::new(
                        "InvalidOperationError",
                        400,
                        "The changes of an update must be an object.",
                        Some(format!(
                            "got {}",
                            other.map(type_name).unwrap_or("undefined")
                        )),
                    ));
                }
            };
            // Upstream re-encodes the (already encoded) patch against the
            // schema: an `id` key or an unknown property is refused.
            let schema = db.schema();
            let col = schema.as_ref().and_then(|s| s.collection(&collection));
            let changes = crate::types::encode_update(&collection, col, &changes)?;
            let mut tx = Transaction::new();
            tx.update(&collection, id, changes);
            db.commit(session, tx).await?;
            Ok(Reply::ok(json!({})))
        }
        "delete" => {
            let collection = collection_name(&p, "collectionName")?;
            let id = entity_id(&p)?;
            let mut tx = Transaction::new();
            tx.delete(&collection, id);
            db.commit(session, tx).await?;
            Ok(Reply::ok(json!({})))
        }
        "delete-all" => {
            let collection = collection_name(&p, "collectionName")?;
            let mut tx = Transaction::new();
            for id in db.ids(&collection).await? {
                tx.delete(&collection, id);
            }
            db.commit(session, tx).await?;
            Ok(Reply::ok(json!({})))
        }
        "clear" => {
            let full = p.get("full").and_then(Value::as_bool).unwrap_or(false);
            db.clear(full).await?;
            Ok(Reply {
                status: 200,
                body: Body::Empty,
            })
        }
        "stats" => {
            let stats: Vec<Value> = db
                .stats()
                .await?
                .into_iter()
                .filter(|(c, _)| c != "_metadata")
                .map(|(collection, n)| json!({"collection": collection, "numEntities": n}))
                .collect();
            Ok(Reply::ok(Value::Array(stats)))
        }
        "schema" => {
            let format = p.get("format").and_then(Value::as_str).unwrap_or("json");
            if format != "json" {
                return Err(TriplitError::new(
                    "TriplitError",
                    400,
                    "Invalid format",
                    None,
                ));
            }
            Ok(Reply::ok(match db.schema() {
                Some(s) => json!({"type": "schema", "schema": s.to_json()}),
                None => json!({"type": "schemaless"}),
            }))
        }
        "override-schema" => {
            let schema = p.get("schema").cloned().unwrap_or(Value::Null);
            let strict = p
                .get("failOnBackwardsIncompatibleChange")
                .is_some_and(crate::types::js::js_truthy);
            Ok(Reply::ok(override_schema(db, schema, strict).await?))
        }
        "apply-changes" => {
            let changes = decode_changes(p.get("changes").unwrap_or(&Value::Null))?;
            db.commit(session, Transaction::from_changes(changes))
                .await?;
            Ok(Reply::ok(json!({})))
        }
        "webhooks-get" | "webhooks-push" | "webhooks-clear" => Ok(Reply::ok(json!({}))),
        _ => Err(TriplitError::route_not_found(&format!("/{route}"))),
    }
}

fn insert_document(v: Option<&Value>) -> Result<Map<String, Value>, TriplitError> {
    match v {
        Some(Value::Object(m)) => Ok(m.clone()),
        None | Some(Value::Null) => Err(TriplitError::new(
            "InvalidInsertDocumentError",
            400,
            "The document being inserted is undefined",
            None,
        )),
        Some(_) => Err(TriplitError::new(
            "InvalidInsertDocumentError",
            400,
            "The document being inserted must be an object.",
            None,
        )),
    }
}

/// Encodes and inserts every entity in one transaction; returns the
/// serialized inserted entities per collection, in input order (empty
/// lists unless `output`: a `noReturn` bulk insert does not hold a second
/// copy of every entity).
async fn insert_many(
    db: &TriplitDb,
    session: &Session,
    batches: Vec<(String, Vec<Map<String, Value>>)>,
    output: bool,
) -> Result<Vec<(String, Vec<Map<String, Value>>)>, TriplitError> {
    let schema = db.schema();
    let ctx = DefaultsContext {
        rng: db.rng().as_ref(),
        time: db.time().as_ref(),
    };
    let mut tx = Transaction::new();
    let mut out = Vec::new();
    for (collection, entities) in batches {
        // Upstream stores such an insert and then fails building the
        // response (a 500); Ferry refuses it before storing anything.
        check_collection(db, &collection)?;
        let col = schema.as_ref().and_then(|s| s.collection(&collection));
        let mut serialized = Vec::with_capacity(if output { entities.len() } else { 0 });
        for entity in entities {
            let encoded = encode_insert(col, &entity, &ctx)?;
            let id = match encoded.get("id") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => {
                    crate::jsnum::js_number_to_string(n.as_f64().unwrap_or(f64::NAN))
                }
                _ => {
                    return Err(TriplitError::serialization(
                        "There was an error serializing an input to an acceptable format.",
                        Some("the entity id must be a string".into()),
                    ));
                }
            };
            // Serialized either way, so the same inputs fail the same way.
            let shown = serialize_entity(col, &encoded)?;
            if output {
                serialized.push(shown);
            }
            tx.insert(&collection, id, encoded);
        }
        out.push((collection, serialized));
    }
    db.commit(session, tx).await?;
    Ok(out)
}

/// `/override-schema` (upstream's `overrideSchema`): validate, diff against
/// the current schema, check every dangerous edit against the stored data,
/// then save, or refuse with `EXISTING_DATA_MISMATCH` (data violates an
/// edit) or `SCHEMA_COMPATIBILITY_MISMATCH` (`strict` and any issue). An
/// empty diff succeeds without saving, as upstream does.
async fn override_schema(
    db: &TriplitDb,
    mut schema_json: Value,
    strict: bool,
) -> Result<Value, TriplitError> {
    use crate::schema::diff::diff_schemas;
    use crate::schema::issues::{
        Issue, SchemaChange, SchemaChangeCode, backwards_incompatible_edits,
    };
    use ferry_store::StoreExt;
    use std::collections::HashMap;

    crate::schema::apply_default_roles(&mut schema_json);
    let current = db.schema();
    let change = |code, message: &str, issues, diff, new_schema| {
        SchemaChange {
            code,
            message: message.into(),
            issues,
            diff,
            old_schema: current.as_ref().map(|s| s.to_json()),
            new_schema,
        }
        .to_json()
    };
    let parsed = match Schema::from_json(&schema_json) {
        Ok(s) => s,
        Err(e) => {
            let raw = crate::types::js::js_normalize(&schema_json);
            return Ok(change(
                SchemaChangeCode::SchemaInvalid,
                &e.message,
                vec![],
                vec![],
                raw,
            ));
        }
    };
    let new_json = parsed.to_json();
    let Some(old) = current.as_deref() else {
        db.set_schema(Some(parsed)).await?;
        let ok = SchemaChangeCode::Success;
        return Ok(change(
            ok,
            "Schema updated successfully",
            vec![],
            vec![],
            new_json,
        ));
    };
    let diff = diff_schemas(old, &parsed);
    let mut issues = Vec::new();
    let mut entities: HashMap<String, Vec<Map<String, Value>>> = HashMap::new();
    for edit in backwards_incompatible_edits(&diff) {
        let name = edit.context.collection.clone();
        if !entities.contains_key(&name) {
            let scan_name = name.clone();
            let rows = db
                .store()
                .read(move |txn| crate::db::read::scan_collection(txn, &scan_name))
                .await?;
            entities.insert(name.clone(), rows);
        }
        let rows = entities.get(&name).map(Vec::as_slice).unwrap_or_default();
        let violates_existing_data = edit.violated_by(old, rows)?;
        issues.push(Issue {
            edit,
            violates_existing_data,
        });
    }
    let (code, message) = if issues.iter().any(|i| i.violates_existing_data) {
        (
            SchemaChangeCode::ExistingDataMismatch,
            "Schema update failed due to existing data violations.",
        )
    } else if strict && !issues.is_empty() {
        (
            SchemaChangeCode::SchemaCompatibilityMismatch,
            "Schema update failed due to backwards incompatible changes.",
        )
    } else {
        if !diff.is_empty() {
            db.set_schema(Some(parsed)).await?;
        }
        (SchemaChangeCode::Success, "Schema updated successfully.")
    };
    Ok(change(code, message, issues, diff, new_json))
}
