//! Schema validity, with upstream's reasons (`validateSchema`).
//!
//! [`validate_schema`] returns the exact message upstream puts in a
//! `SCHEMA_INVALID` result, e.g. `schema collections definition is
//! invalid: "todos" is not a valid collection: collection schema is
//! invalid: primary key field "id" is not defined`. It reads the JSON with
//! JS semantics: arrays count as objects, keys are visited in JS order, and
//! the first problem found is the one reported.

use serde_json::Value;

use crate::types::date;
use crate::types::js::{has_no_value, is_js_object, js_entries, js_get, js_string, js_truthy};

type Check = Result<(), String>;

fn fail<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

/// Prefixes an inner problem with `what`.
fn ctx(r: Check, what: impl FnOnce() -> String) -> Check {
    r.map_err(|e| format!("{}{e}", what()))
}

/// Upstream's `validateSchema`: `Err(reason)` when the schema is invalid.
pub fn validate_schema(schema: &Value) -> Check {
    if schema.is_null() {
        return fail("schema is not defined");
    }
    if !is_js_object(schema) {
        return fail("schema is not an object");
    }
    ctx(validate_roles(js_get(schema, "roles")), || {
        "schema roles definition is invalid: ".into()
    })?;
    ctx(validate_collections(js_get(schema, "collections")), || {
        "schema collections definition is invalid: ".into()
    })
}

/// The name rule shared by collections, roles and relationships.
fn validate_name(kind: &str, name: &str, no_leading: bool) -> Check {
    if name.is_empty() {
        return fail(format!("{kind} name is empty"));
    }
    if no_leading && name.starts_with('_') {
        return fail(format!("{kind} name cannot start with an underscore"));
    }
    if no_leading && name.starts_with(|c: char| c.is_ascii_digit()) {
        return fail(format!("{kind} name cannot start with a numeric character"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return fail(format!(
            "{kind} name contains invalid characters - only alphanumeric characters and underscores are allowed."
        ));
    }
    Ok(())
}

fn validate_roles(roles: Option<&Value>) -> Check {
    let Some(roles) = roles.filter(|r| !r.is_null()) else {
        return Ok(());
    };
    if !is_js_object(roles) {
        return fail("roles is not an object");
    }
    for (key, role) in js_entries(roles) {
        let what = || format!("role \"{key}\" is invalid: ");
        ctx(validate_name("role", &key, true), what)?;
        ctx(validate_role(role), what)?;
    }
    Ok(())
}

fn validate_role(role: &Value) -> Check {
    if role.is_null() {
        return fail("role is not defined");
    }
    if !is_js_object(role) {
        return fail("role is not an object");
    }
    match js_get(role, "match") {
        None | Some(Value::Null) => fail("matcher is not defined"),
        Some(m) if !is_js_object(m) => fail("matcher is not an object"),
        Some(_) => Ok(()),
    }
}

fn validate_collections(collections: Option<&Value>) -> Check {
    let Some(collections) = collections.filter(|c| !c.is_null()) else {
        return fail("collections is not defined");
    };
    if !is_js_object(collections) {
        return fail("collections is not an object");
    }
    for (key, collection) in js_entries(collections) {
        ctx(validate_name("collection", &key, true), || {
            format!("\"{key}\" is not a valid collection name: ")
        })?;
        ctx(validate_collection(collection), || {
            format!("\"{key}\" is not a valid collection: ")
        })?;
    }
    Ok(())
}

fn validate_collection(collection: &Value) -> Check {
    if collection.is_null() {
        return fail("collection is not defined");
    }
    if !is_js_object(collection) {
        return fail("collection is not an object");
    }
    let schema = js_get(collection, "schema");
    ctx(validate_collection_schema(schema), || {
        "collection schema is invalid: ".into()
    })?;
    if let Some(Value::Object(c)) = Some(collection)
        && let Some(rels) = c.get("relationships")
    {
        let props = schema.and_then(|s| js_get(s, "properties"));
        ctx(validate_relationships(rels, props), || {
            "collection relationships is invalid: ".into()
        })?;
    }
    if let Some(perms) = js_get(collection, "permissions") {
        ctx(validate_permissions(perms), || {
            "collection permissions is invalid: ".into()
        })?;
    }
    Ok(())
}

fn validate_collection_schema(schema: Option<&Value>) -> Check {
    let Some(schema) = schema.filter(|s| !s.is_null()) else {
        return fail("schema is not defined");
    };
    if !is_js_object(schema) {
        return fail("schema is not an object");
    }
    validate_record(schema)?;
    let id = js_get(schema, "properties").and_then(|p| js_get(p, "id"));
    let Some(id) = id.filter(|i| !i.is_null()) else {
        return fail("primary key field \"id\" is not defined");
    };
    ctx(validate_string(id), || {
        "primary key field \"id\" is invalid: ".into()
    })
}

/// Upstream's `validateDataType`.
fn validate_data_type(t: &Value) -> Check {
    if t.is_null() {
        return fail("type is not defined");
    }
    if !is_js_object(t) {
        return fail("type is not a DataType");
    }
    let name = js_get(t, "type");
    match name.and_then(Value::as_str) {
        Some("string") => validate_string(t),
        Some("record") => validate_record(t),
        Some("set") => validate_set(t),
        Some(n @ ("boolean" | "date" | "json" | "number")) => {
            ctx(validate_config(t, n), || format!("type {n} is invalid: "))
        }
        _ => fail(format!("type \"{}\" is not recognized", js_string(name))),
    }
}

fn type_is(t: &Value, name: &str) -> bool {
    js_get(t, "type").and_then(Value::as_str) == Some(name)
}

fn validate_record(t: &Value) -> Check {
    if !type_is(t, "record") {
        return fail("not a record type");
    }
    ctx(validate_config(t, "record"), || {
        "type record is invalid: ".into()
    })?;
    let Some(props) = js_get(t, "properties").filter(|p| !p.is_null()) else {
        return fail("type record is missing properties");
    };
    if !is_js_object(props) {
        return fail("type record properties is not an object");
    }
    for (key, prop) in js_entries(props) {
        let what = || format!("type record property \"{key}\" is invalid: ");
        ctx(validate_name("property", &key, false), what)?;
        ctx(validate_data_type(prop), what)?;
    }
    Ok(())
}

fn validate_set(t: &Value) -> Check {
    ctx(validate_config(t, "set"), || "type set is invalid: ".into())?;
    let Some(items) = js_get(t, "items").filter(|i| !i.is_null()) else {
        return fail("type set is missing items");
    };
    ctx(validate_data_type(items), || {
        "type set items is invalid: ".into()
    })?;
    if !["string", "number", "boolean", "date"]
        .iter()
        .any(|p| type_is(items, p))
    {
        return fail("type set items must be a primitive type");
    }
    Ok(())
}

fn validate_string(t: &Value) -> Check {
    if !type_is(t, "string") {
        return fail("not a string type");
    }
    ctx(validate_config(t, "string"), || {
        "type string is invalid: ".into()
    })?;
    match js_get(t, "config").and_then(|c| js_get(c, "enum")) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(values)) if values.iter().all(Value::is_string) => Ok(()),
        Some(Value::Array(_)) => fail("type string enum value is not a string"),
        Some(_) => fail("type string enum is not an array"),
    }
}

/// `validateBaseDataTypeConfig`.
fn validate_config(t: &Value, type_name: &str) -> Check {
    let Some(config) = js_get(t, "config").filter(|c| !c.is_null()) else {
        return Ok(());
    };
    if !is_js_object(config) {
        return fail("type config is not an object");
    }
    for option in ["nullable", "optional"] {
        if !has_no_value(js_get(config, option))
            && !js_get(config, option).is_some_and(Value::is_boolean)
        {
            return fail(format!("option {option} is invalid"));
        }
    }
    ctx(
        validate_default(t, type_name, js_get(config, "default")),
        || "option default is invalid: ".into(),
    )
}

fn validate_default(t: &Value, type_name: &str, default: Option<&Value>) -> Check {
    let Some(default) = default.filter(|d| !d.is_null()) else {
        return Ok(());
    };
    if type_name == "record" {
        return fail("default value cannot be set for record types");
    }
    if let Value::Object(f) = default
        && f.contains_key("func")
    {
        return ctx(validate_default_function(type_name, default), || {
            "default value is invalid: ".into()
        });
    }
    if default_encodes(t, default) {
        Ok(())
    } else {
        fail("default value could not be serialized to type")
    }
}

fn validate_default_function(type_name: &str, f: &Value) -> Check {
    let func = js_get(f, "func");
    if has_no_value(func) {
        return fail("default function is missing func identifier");
    }
    let args = js_get(f, "args");
    match func.and_then(Value::as_str) {
        Some("now") => {
            if !has_no_value(args) {
                return fail("default function \"now\" has no args");
            }
            if type_name != "date" && type_name != "string" {
                return fail("default function \"now\" is not valid for this type");
            }
        }
        Some(id @ ("nanoid" | "uuid")) => {
            match args {
                None | Some(Value::Null) => {}
                Some(Value::Array(a)) => {
                    if a.first().is_some_and(|x| !x.is_number()) {
                        return fail(format!("default function \"{id}\" arg[0] is not a number"));
                    }
                }
                Some(_) => return fail(format!("default function \"{id}\" args is not an array")),
            }
            if type_name != "string" {
                // Upstream's message names "now" here too.
                return fail("default function \"now\" is not valid for this type");
            }
        }
        Some("Set.empty") => {
            if !has_no_value(args) {
                return fail("default function \"Set.empty\" has no args");
            }
            if type_name != "set" {
                return fail("default function \"Set.empty\" is not valid for this type");
            }
        }
        Some("uuidv4" | "uuidv7") => {}
        _ => {
            return fail(format!(
                "default function {} is not recognized",
                js_string(func)
            ));
        }
    }
    Ok(())
}

/// Whether upstream's `Type.encode(type, default)` accepts a literal
/// default. Where upstream would throw something other than a
/// serialization error (a `RangeError`, a `TypeError`) this says `false`,
/// so the schema is reported invalid instead of failing the request.
fn default_encodes(t: &Value, v: &Value) -> bool {
    let name = js_get(t, "type").and_then(Value::as_str).unwrap_or("");
    let optional = js_get(t, "config").is_some_and(|c| {
        js_get(c, "optional") == Some(&Value::Bool(true))
            || js_get(c, "nullable") == Some(&Value::Bool(true))
    });
    if optional && v.is_null() {
        return true;
    }
    match (name, v) {
        ("boolean", Value::Bool(_)) | ("number", Value::Number(_)) => true,
        ("json", v) => !v.is_null(),
        ("date", Value::String(s)) => date::parse(s).is_some(),
        ("date", Value::Number(n)) => n.as_f64().and_then(date::time_clip).is_some(),
        ("string", Value::String(s)) => {
            match js_get(t, "config").and_then(|c| js_get(c, "enum")) {
                Some(Value::Array(values)) => values.iter().any(|e| e.as_str() == Some(s)),
                // `"abc".includes(s)` on a string enum.
                Some(Value::String(e)) if !e.is_empty() => e.contains(s.as_str()),
                Some(e) if js_truthy(e) => false,
                _ => true,
            }
        }
        ("set", Value::Array(items)) => js_get(t, "items").is_some_and(|it| {
            ["string", "number", "boolean", "date"]
                .iter()
                .any(|p| type_is(it, p))
                && items.iter().all(|x| !x.is_null() && default_encodes(it, x))
        }),
        ("set", Value::Object(_)) => true,
        _ => false,
    }
}

fn validate_relationships(rels: &Value, props: Option<&Value>) -> Check {
    if rels.is_null() {
        return Ok(());
    }
    if !is_js_object(rels) {
        return fail("relationships is not an object");
    }
    for (key, rel) in js_entries(rels) {
        let what = || format!("relationship \"{key}\" is invalid: ");
        ctx(validate_name("relationship", &key, true), what)?;
        let shadows = props.and_then(|p| js_get(p, &key)).is_some_and(js_truthy)
            || (props.is_some_and(Value::is_object)
                && OBJECT_PROTOTYPE_KEYS.contains(&key.as_str()));
        if shadows {
            return fail(format!(
                "{}relationship name matches a property name",
                what()
            ));
        }
        ctx(validate_relationship(rel), what)?;
    }
    Ok(())
}

/// Names every JS object inherits (`properties[name]` is truthy for them).
const OBJECT_PROTOTYPE_KEYS: [&str; 7] = [
    "constructor",
    "hasOwnProperty",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toLocaleString",
    "toString",
    "valueOf",
];

fn validate_relationship(rel: &Value) -> Check {
    if rel.is_null() {
        return fail("relationship is not defined");
    }
    if !is_js_object(rel) {
        return fail("relationship is not an object");
    }
    match js_get(rel, "cardinality") {
        None | Some(Value::Null) => return fail("cardinality is not defined"),
        Some(Value::String(c)) if c == "one" || c == "many" => {}
        Some(_) => return fail("cardinality is invalid"),
    }
    match js_get(rel, "query") {
        None | Some(Value::Null) => fail("query is not defined"),
        Some(q) if !is_js_object(q) => fail("query is not an object"),
        Some(_) => Ok(()),
    }
}

fn validate_permissions(perms: &Value) -> Check {
    if perms.is_null() {
        return Ok(());
    }
    if !is_js_object(perms) {
        return fail("permissions is not an object");
    }
    for (role, ops) in js_entries(perms) {
        ctx(validate_permission_ops(ops), || {
            format!("permissions for role \"{role}\" is invalid: ")
        })?;
    }
    Ok(())
}

fn validate_permission_ops(ops: &Value) -> Check {
    if ops.is_null() {
        return Ok(());
    }
    if !is_js_object(ops) {
        return fail("not an object");
    }
    for (op, label) in [
        ("read", "\"read\""),
        ("insert", "insert"),
        ("update", "update"),
        ("postUpdate", "postUpdate"),
        ("delete", "delete"),
    ] {
        if let Some(p) = js_get(ops, op).filter(|p| js_truthy(p))
            && !is_js_object(p)
        {
            return fail(format!(
                "{label} permission is invalid: permission is not an object"
            ));
        }
    }
    Ok(())
}
