//! The SuperJSON codec for `DBChanges`.
//!
//! Upstream sends `changes` (in `CHANGES`, `ENTITY_DATA` and
//! `/apply-changes`) as `SuperJSON.serialize(changes)` with superjson 2.x,
//! where `changes` is `{[collection]: {sets: Map<id, entity|patch>,
//! deletes: Set<id>}}`. The payload is `{json, meta?}`:
//!
//! - `json` is plain JSON: a `Map` becomes an array of `[key, value]` pairs,
//!   a `Set` an array, `undefined` `null`, `NaN`/`±Infinity`/`-0` the
//!   strings `"NaN"`, `"Infinity"`, `"-Infinity"`, `"-0"`, and a `Date` its
//!   ISO string;
//! - `meta.values` says which paths to turn back: a tree whose keys are
//!   dotted paths (`.` and `\` escaped as `\.` and `\\`, see
//!   [`escape_path_segment`]) and whose leaves are `[type]` or
//!   `[type, {relative path: subtree}]`, e.g.
//!   `{"todos.sets": ["map", {"0.1.due": ["undefined"]}], "todos.deletes": ["set"]}`;
//! - `meta.v` is `1` since superjson 2.2.3; without it (2.2.2 and older
//!   clients) paths use the legacy escaping, where only `\.` is an escape
//!   and backslashes are not escaped;
//! - `meta.referentialEqualities` marks repeated object instances. The JSON
//!   holds full copies anyway, so it is ignored here.
//!
//! [`decode_changes`] follows `SuperJSON.deserialize` and then reads the
//! result the way Ferry stores it (what `JSON.stringify` would keep):
//! `undefined` → `null` (= unset), `["number"]` → the number, with `NaN`
//! and `±Infinity` → `null` and `-0` → `0`, `["Date"]` → the ISO string as
//! sent. It is more lenient than upstream about structure (see
//! [`decode_changes`]). [`encode_changes`] produces exactly what
//! `SuperJSON.serialize` produces for a `DBChanges` built from `Map`s and
//! `Set`s (checked against superjson 2.2.7 by the fixtures under
//! `tests/fixtures/superjson/`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::changes::{CollectionChanges, DbChanges};
use crate::error::TriplitError;
use crate::jsnum::{js_number_to_json, js_string_to_number};

/// `baseMessage` of the error [`decode_changes`] returns.
pub const DESERIALIZATION_ERROR_MESSAGE: &str =
    "There was an error deserializing an input to an acceptable format.";

/// Annotation trees nested deeper than this are rejected (upstream would
/// overflow its stack; `serde_json` parsing already stops at 128).
const MAX_TREE_DEPTH: usize = 256;

/// `2^53`: integers beyond this magnitude are not exact doubles.
const MAX_SAFE_INTEGER_PLUS_ONE: u64 = 1 << 53;

/// One collection's `sets`: `(id, change)` in order.
type Sets = Vec<(String, Map<String, Value>)>;

/// The `DBDeserializationError` (400) for a payload that is not a
/// well-formed SuperJSON `DBChanges`; `context` says what and where.
pub fn deserialization_error(context: impl Into<String>) -> TriplitError {
    TriplitError::new(
        "DBDeserializationError",
        400,
        DESERIALIZATION_ERROR_MESSAGE,
        Some(context.into()),
    )
}

/// Escapes one path segment for a SuperJSON annotation path: `\` becomes
/// `\\` and `.` becomes `\.` (superjson's `escapeKey`). A collection named
/// `weird.name` is annotated at `weird\.name.sets`.
pub fn escape_path_segment(s: &str) -> String {
    if !s.contains(['\\', '.']) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c == '\\' || c == '.' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Joins segments into an annotation path, escaping each one
/// (superjson's `stringifyPath`). The inverse of [`split_annotation_path`]
/// with `legacy = false`.
pub fn join_annotation_path<S: AsRef<str>>(segments: &[S]) -> String {
    segments
        .iter()
        .map(|s| escape_path_segment(s.as_ref()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Splits an annotation path into its segments (superjson's `parsePath`).
///
/// With `legacy = false` (payloads with `meta.v >= 1`), `\\` is a
/// backslash, `\.` a dot inside a segment, an unescaped `.` separates
/// segments, and any other backslash (including a trailing one) is an
/// error. With `legacy = true` (no `meta.v`), only `\.` is an escape and
/// other backslashes are literal. `""` is one empty segment.
pub fn split_annotation_path(path: &str, legacy: bool) -> Result<Vec<String>, TriplitError> {
    if !path.contains('\\') {
        return Ok(path.split('.').map(str::to_owned).collect());
    }
    let mut segments = Vec::new();
    let mut segment = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some('.') => {
                    segment.push('.');
                    chars.next();
                }
                Some('\\') if !legacy => {
                    segment.push('\\');
                    chars.next();
                }
                _ if legacy => segment.push('\\'),
                _ => {
                    return Err(deserialization_error(format!(
                        "invalid SuperJSON annotation path {path:?}: a backslash must escape '.' or '\\'"
                    )));
                }
            },
            '.' => segments.push(std::mem::take(&mut segment)),
            c => segment.push(c),
        }
    }
    segments.push(segment);
    Ok(segments)
}

/// A short name of a JSON value's type, for error contexts.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether `meta.v` selects legacy path parsing: `version < 1` in JS,
/// with `meta.v ?? 0`.
fn is_legacy_version(v: Option<&Value>) -> bool {
    let n = match v {
        None | Some(Value::Null) => 0.0,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        Some(Value::String(s)) => js_string_to_number(s),
        // `[] < 1` is true in JS (`[]` → `""` → 0), `{} < 1` is false (NaN).
        Some(Value::Array(a)) if a.is_empty() => 0.0,
        Some(_) => f64::NAN,
    };
    n < 1.0
}

/// The transformations Ferry understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    Undefined,
    Number,
    Date,
    Map,
    Set,
}

/// Renders a path for error contexts.
fn show_path(path: &[String]) -> String {
    if path.is_empty() {
        "the root".to_owned()
    } else {
        format!("{:?}", join_annotation_path(path))
    }
}

/// The transformation of an annotation `[type, ...]`.
fn transform_of(tree: &[Value], path: &[String]) -> Result<Transform, TriplitError> {
    match tree.first() {
        // `[]`: JS looks up `String(undefined)`, which is the "undefined" rule.
        None => Ok(Transform::Undefined),
        Some(Value::String(s)) => match s.as_str() {
            "undefined" => Ok(Transform::Undefined),
            "number" => Ok(Transform::Number),
            "Date" => Ok(Transform::Date),
            "map" => Ok(Transform::Map),
            "set" => Ok(Transform::Set),
            other => Err(deserialization_error(format!(
                "unsupported SuperJSON annotation {other:?} at {}",
                show_path(path)
            ))),
        },
        Some(other) => Err(deserialization_error(format!(
            "unsupported SuperJSON annotation {other} at {}",
            show_path(path)
        ))),
    }
}

/// Applies `transform` to the value `old` (`None`: the key is absent, i.e.
/// JS `undefined`).
fn untransform(
    transform: Transform,
    old: Option<Value>,
    path: &[String],
) -> Result<Value, TriplitError> {
    let bad = |what: &str, v: &Value| {
        deserialization_error(format!(
            "a SuperJSON {what} annotation at {} applies to {}",
            show_path(path),
            type_name(v)
        ))
    };
    match transform {
        Transform::Undefined => Ok(Value::Null),
        // `Number(v)`, then what JSON keeps of it.
        Transform::Number => match old {
            None => Ok(Value::Null),
            Some(Value::Null) => Ok(js_number_to_json(0.0)),
            Some(Value::Bool(b)) => Ok(js_number_to_json(f64::from(u8::from(b)))),
            Some(Value::Number(n)) => Ok(n.as_f64().map_or(Value::Null, js_number_to_json)),
            Some(Value::String(s)) => Ok(js_number_to_json(js_string_to_number(&s))),
            Some(v) => Err(bad("\"number\"", &v)),
        },
        // Kept as sent: the client writes `Date.toISOString()`.
        Transform::Date => match old {
            None => Ok(Value::Null),
            Some(Value::String(s)) => Ok(Value::String(s)),
            Some(v) => Err(bad("\"Date\"", &v)),
        },
        // `new Map(v)`: null/undefined give an empty Map. The entries are
        // checked when the collection is read.
        Transform::Map => match old {
            None | Some(Value::Null) => Ok(Value::Array(Vec::new())),
            Some(Value::Array(a)) => Ok(Value::Array(a)),
            Some(Value::String(s)) if s.is_empty() => Ok(Value::Array(Vec::new())),
            Some(v) => Err(bad("\"map\"", &v)),
        },
        // `new Set(v)`: a string is iterated by code point.
        Transform::Set => match old {
            None | Some(Value::Null) => Ok(Value::Array(Vec::new())),
            Some(Value::Array(a)) => Ok(Value::Array(a)),
            Some(Value::String(s)) => Ok(Value::Array(
                s.chars().map(|c| Value::String(c.to_string())).collect(),
            )),
            Some(v) => Err(bad("\"set\"", &v)),
        },
    }
}

/// `JS +key` as an array index.
fn array_index(key: &str) -> Option<usize> {
    let n = js_string_to_number(key);
    if n.is_finite() && n >= 0.0 && n.trunc() == n && n < usize::MAX as f64 {
        Some(n as usize)
    } else {
        None
    }
}

/// superjson's `setDeep`: replaces the value at `path` by
/// `transform(old)`. Like superjson, a path that cannot be walked (a
/// missing key or index on the way, a primitive) leaves the value alone;
/// an absent last key of an object is created.
fn set_deep(root: &mut Value, path: &[String], transform: Transform) -> Result<(), TriplitError> {
    let Some((last, parents)) = path.split_last() else {
        let old = std::mem::take(root);
        *root = untransform(transform, Some(old), path)?;
        return Ok(());
    };
    let mut cur = root;
    for seg in parents {
        let next = match cur {
            Value::Array(a) => array_index(seg).and_then(|i| a.get_mut(i)),
            Value::Object(o) => o.get_mut(seg.as_str()),
            _ => None,
        };
        match next {
            Some(v) => cur = v,
            None => return Ok(()),
        }
    }
    match cur {
        Value::Array(a) => {
            let Some(i) = array_index(last) else {
                // `array[NaN] = …` sets a property JSON never sees.
                return Ok(());
            };
            match a.get_mut(i) {
                Some(slot) => {
                    let old = std::mem::take(slot);
                    *slot = untransform(transform, Some(old), path)?;
                }
                None => {
                    return Err(deserialization_error(format!(
                        "SuperJSON annotation path {} points past the end of an array of {}",
                        show_path(path),
                        a.len()
                    )));
                }
            }
        }
        Value::Object(o) => match o.get_mut(last.as_str()) {
            Some(slot) => {
                let old = std::mem::take(slot);
                *slot = untransform(transform, Some(old), path)?;
            }
            None => {
                let new = untransform(transform, None, path)?;
                o.insert(last.clone(), new);
            }
        },
        _ => {}
    }
    Ok(())
}

/// superjson's `applyValueAnnotations` for the subtree `tree` at `path`:
/// the children (paths relative to `path`) first, then the node's own
/// transformation.
fn apply_tree(
    root: &mut Value,
    path: &mut Vec<String>,
    tree: &Value,
    legacy: bool,
    depth: usize,
) -> Result<(), TriplitError> {
    if depth > MAX_TREE_DEPTH {
        return Err(deserialization_error(
            "the SuperJSON annotation tree is nested too deeply",
        ));
    }
    let (own, children) = match tree {
        // Falsy trees are skipped; `Object.keys` of `true` or a number is empty.
        Value::Null | Value::Bool(_) | Value::Number(_) => return Ok(()),
        Value::String(s) if s.is_empty() => return Ok(()),
        Value::String(_) => {
            return Err(deserialization_error(format!(
                "malformed SuperJSON annotation at {}: a string where an array or object belongs",
                show_path(path)
            )));
        }
        Value::Array(a) => (Some(a.as_slice()), a.get(1)),
        Value::Object(_) => (None, Some(tree)),
    };
    match children {
        Some(Value::Object(o)) => {
            for (key, sub) in o {
                let segments = split_annotation_path(key, legacy)?;
                let len = path.len();
                path.extend(segments);
                let r = apply_tree(root, path, sub, legacy, depth + 1);
                path.truncate(len);
                r?;
            }
        }
        Some(Value::Array(a)) => {
            for (i, sub) in a.iter().enumerate() {
                path.push(i.to_string());
                let r = apply_tree(root, path, sub, legacy, depth + 1);
                path.pop();
                r?;
            }
        }
        Some(Value::String(s)) if !s.is_empty() => {
            return Err(deserialization_error(format!(
                "malformed SuperJSON annotation at {}: its children are a string",
                show_path(path)
            )));
        }
        _ => {}
    }
    if let Some(own) = own {
        let transform = transform_of(own, path)?;
        // DBChanges has Maps and Sets in exactly one place each; anywhere
        // else they have no JSON meaning in an entity.
        let allowed = match transform {
            Transform::Map => path.len() == 2 && path[1] == "sets",
            Transform::Set => path.len() == 2 && path[1] == "deletes",
            _ => true,
        };
        if !allowed {
            return Err(deserialization_error(format!(
                "unsupported SuperJSON {transform:?} at {}: only <collection>.sets may be a Map and <collection>.deletes a Set",
                show_path(path)
            )));
        }
        set_deep(root, path, transform)?;
    }
    Ok(())
}

/// Keeps the first position and the last value of each id, like `new Map(pairs)`.
fn dedupe_sets(sets: Sets) -> Sets {
    let mut seen = HashSet::with_capacity(sets.len());
    if sets.iter().all(|(id, _)| seen.insert(id.as_str())) {
        return sets;
    }
    let mut out: Sets = Vec::with_capacity(sets.len());
    let mut position: std::collections::HashMap<String, usize> =
        std::collections::HashMap::with_capacity(sets.len());
    for (id, entity) in sets {
        match position.get(&id) {
            Some(&i) => out[i].1 = entity,
            None => {
                position.insert(id.clone(), out.len());
                out.push((id, entity));
            }
        }
    }
    out
}

/// Keeps the first occurrence of each id, like `new Set(ids)`.
fn dedupe_ids(ids: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::with_capacity(ids.len());
    if ids.iter().all(|id| seen.insert(id.as_str())) {
        return ids;
    }
    let mut seen = HashSet::with_capacity(ids.len());
    ids.into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

/// Reads one `sets` value: `[[id, entity], ...]` or `{id: entity}`.
fn read_sets(collection: &str, sets: Value) -> Result<Sets, TriplitError> {
    let entity = |id: &str, v: Value| match v {
        Value::Object(o) => Ok(o),
        other => Err(deserialization_error(format!(
            "collection {collection:?}: the change for id {id:?} must be an object, found {}",
            type_name(&other)
        ))),
    };
    match sets {
        Value::Array(entries) => {
            let mut out = Vec::with_capacity(entries.len());
            for (i, e) in entries.into_iter().enumerate() {
                let Value::Array(mut pair) = e else {
                    return Err(deserialization_error(format!(
                        "collection {collection:?}: sets[{i}] must be an [id, change] pair, found {}",
                        type_name(&e)
                    )));
                };
                if pair.len() != 2 {
                    return Err(deserialization_error(format!(
                        "collection {collection:?}: sets[{i}] must be an [id, change] pair, found an array of {}",
                        pair.len()
                    )));
                }
                let change = pair.pop().unwrap_or(Value::Null);
                let id = match pair.pop() {
                    Some(Value::String(id)) => id,
                    other => {
                        return Err(deserialization_error(format!(
                            "collection {collection:?}: the id in sets[{i}] must be a string, found {}",
                            type_name(other.as_ref().unwrap_or(&Value::Null))
                        )));
                    }
                };
                let change = entity(&id, change)?;
                out.push((id, change));
            }
            Ok(dedupe_sets(out))
        }
        Value::Object(o) => o
            .into_iter()
            .map(|(id, v)| entity(&id, v).map(|e| (id, e)))
            .collect(),
        other => Err(deserialization_error(format!(
            "collection {collection:?}: sets must be a Map (an array of [id, change] pairs), found {}",
            type_name(&other)
        ))),
    }
}

/// Reads one `deletes` value: an array of ids.
fn read_deletes(collection: &str, deletes: Value) -> Result<Vec<String>, TriplitError> {
    let Value::Array(ids) = deletes else {
        return Err(deserialization_error(format!(
            "collection {collection:?}: deletes must be a Set (an array of ids), found {}",
            type_name(&deletes)
        )));
    };
    let ids = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| match id {
            Value::String(s) => Ok(s),
            other => Err(deserialization_error(format!(
                "collection {collection:?}: deletes[{i}] must be a string id, found {}",
                type_name(&other)
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(dedupe_ids(ids))
}

/// Reads the annotated `json` as a `DbChanges`.
fn changes_from_json(json: Value) -> Result<DbChanges, TriplitError> {
    let Value::Object(root) = json else {
        return Err(deserialization_error(format!(
            "changes must be an object of collections, found {}",
            type_name(&json)
        )));
    };
    let mut collections = Vec::with_capacity(root.len());
    for (name, value) in root {
        let Value::Object(mut c) = value else {
            return Err(deserialization_error(format!(
                "collection {name:?}: expected an object {{sets, deletes}}, found {}",
                type_name(&value)
            )));
        };
        let sets = match c.remove("sets") {
            None => Vec::new(),
            Some(v) => read_sets(&name, v)?,
        };
        let deletes = match c.remove("deletes") {
            None => Vec::new(),
            Some(v) => read_deletes(&name, v)?,
        };
        collections.push((name, CollectionChanges { sets, deletes }));
    }
    Ok(DbChanges { collections })
}

/// Decodes the SuperJSON payload `{json, meta?}` of a `DBChanges`.
///
/// Annotations are applied as `SuperJSON.deserialize` does (nested trees,
/// flat dotted paths, `v: 1` and legacy path escaping, unwalkable paths
/// ignored, `referentialEqualities` ignored), and their values are read as
/// Ferry stores them: `["undefined"]` → `null` (unset), `["number"]` →
/// `Number(s)` with `NaN`/`±Infinity` → `null` and `-0` → `0`, `["Date"]` →
/// the string unchanged. `["map"]` is accepted only at
/// `<collection>.sets` and `["set"]` only at `<collection>.deletes`; any
/// other annotation type (`bigint`, `regexp`, classes, …) is an error.
///
/// More lenient than upstream, which needs real `Map`s and `Set`s: without
/// annotations `sets` may be an array of `[id, change]` pairs or an object
/// `{id: change}` and `deletes` an array, and a missing `sets` or
/// `deletes` is empty. Duplicate ids keep the first position and the last
/// change, like `new Map`; duplicate deletes are dropped, like `new Set`.
///
/// Anything else malformed — the payload, `json` or a collection not being
/// an object, a set entry that is not an `[id, object]` pair, an id that
/// is not a string, a bad escape in an annotation path — is a
/// `DBDeserializationError` (400) whose context says where. Never panics.
pub fn decode_changes(v: &Value) -> Result<DbChanges, TriplitError> {
    let Value::Object(payload) = v else {
        return Err(deserialization_error(format!(
            "changes must be a SuperJSON object {{json, meta?}}, found {}",
            type_name(v)
        )));
    };
    let Some(json) = payload.get("json") else {
        return Err(deserialization_error(
            "changes must be a SuperJSON object {json, meta?}: `json` is missing",
        ));
    };
    let mut json = json.clone();
    if let Some(Value::Object(meta)) = payload.get("meta")
        && let Some(values) = meta.get("values")
    {
        let legacy = is_legacy_version(meta.get("v"));
        apply_tree(&mut json, &mut Vec::new(), values, legacy, 0)?;
    }
    changes_from_json(json)
}

/// superjson's `isArrayIndex`: the keys a JS object lists first, in
/// ascending numeric order (canonical integers below `2^32 - 1`).
fn is_array_index(key: &str) -> Option<u32> {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 10 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b[0] == b'0' && b.len() > 1 {
        return None;
    }
    let n: u64 = key.parse().ok()?;
    if n < u64::from(u32::MAX) {
        u32::try_from(n).ok()
    } else {
        None
    }
}

/// The order JavaScript gives the keys of an object built by inserting
/// `keys` in sequence: array indices ascending, then the rest in insertion
/// order. Returns positions into `keys`.
fn js_key_order<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<usize> {
    let mut indices = Vec::new();
    let mut rest = Vec::new();
    for (pos, k) in keys.enumerate() {
        match is_array_index(k) {
            Some(n) => indices.push((n, pos)),
            None => rest.push(pos),
        }
    }
    indices.sort_by_key(|&(n, _)| n);
    indices
        .into_iter()
        .map(|(_, pos)| pos)
        .chain(rest)
        .collect()
}

/// A number as a JS double, as `JSON.parse` would have read it: integers
/// beyond `2^53` rounded to the nearest double, `-0` and integral floats
/// as integers.
fn js_number(n: &serde_json::Number) -> Value {
    let exact = match (n.as_u64(), n.as_i64()) {
        (Some(u), _) => u <= MAX_SAFE_INTEGER_PLUS_ONE,
        (None, Some(i)) => i.unsigned_abs() <= MAX_SAFE_INTEGER_PLUS_ONE,
        (None, None) => false,
    };
    if exact {
        return Value::Number(n.clone());
    }
    n.as_f64().map_or(Value::Null, js_number_to_json)
}

/// A copy of `v` as JavaScript would hold it: object keys in JS order,
/// numbers as doubles.
fn js_value(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().map(js_value).collect()),
        Value::Object(o) => Value::Object(js_object(o)),
        Value::Number(n) => js_number(n),
        other => other.clone(),
    }
}

/// [`js_value`] for an object.
fn js_object(o: &Map<String, Value>) -> Map<String, Value> {
    let in_order = {
        let mut last_index: Option<u32> = None;
        let mut seen_other = false;
        o.keys().all(|k| match is_array_index(k) {
            Some(n) => {
                let ok = !seen_other && last_index.is_none_or(|l| l < n);
                last_index = Some(n);
                ok
            }
            None => {
                seen_other = true;
                true
            }
        })
    };
    if in_order {
        return o.iter().map(|(k, v)| (k.clone(), js_value(v))).collect();
    }
    let entries: Vec<(&String, &Value)> = o.iter().collect();
    js_key_order(entries.iter().map(|(k, _)| k.as_str()))
        .into_iter()
        .map(|i| (entries[i].0.clone(), js_value(entries[i].1)))
        .collect()
}

/// Encodes `changes` exactly as `SuperJSON.serialize` encodes the
/// equivalent `DBChanges` (`{[collection]: {sets: Map, deletes: Set}}`):
///
/// ```json
/// {"json":{"todos":{"sets":[["t1",{"id":"t1"}]],"deletes":["t2"]}},
///  "meta":{"values":{"todos.sets":["map"],"todos.deletes":["set"]},"v":1}}
/// ```
///
/// Every collection gets its `<escaped name>.sets: ["map"]` and
/// `.deletes: ["set"]` annotations, in collection order. As in a JS object,
/// collection names and entity keys that are array indices (`"0"`, `"42"`)
/// come first in ascending order; a repeated collection or id keeps its
/// first position and its last value, a repeated delete its first
/// position. Numbers are written as the double they denote (JSON storage
/// has no `-0`: it is written `0`). No changes at all give `{"json":{}}`,
/// like `SuperJSON.serialize({})`.
pub fn encode_changes(changes: &DbChanges) -> Value {
    let order = js_key_order(changes.collections.iter().map(|(c, _)| c.as_str()));
    let mut json = Map::new();
    let mut values = Map::new();
    for i in order {
        let (name, c) = &changes.collections[i];
        let mut first_pos = std::collections::HashMap::new();
        let mut sets: Vec<Value> = Vec::with_capacity(c.sets.len());
        for (id, entity) in &c.sets {
            let pair = Value::Array(vec![
                Value::String(id.clone()),
                Value::Object(js_object(entity)),
            ]);
            match first_pos.get(id.as_str()) {
                Some(&p) => sets[p] = pair,
                None => {
                    first_pos.insert(id.as_str(), sets.len());
                    sets.push(pair);
                }
            }
        }
        let mut seen = HashSet::with_capacity(c.deletes.len());
        let deletes: Vec<Value> = c
            .deletes
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .map(|id| Value::String(id.clone()))
            .collect();
        let mut cv = Map::new();
        cv.insert("sets".to_owned(), Value::Array(sets));
        cv.insert("deletes".to_owned(), Value::Array(deletes));
        json.insert(name.clone(), Value::Object(cv));
        let escaped = escape_path_segment(name);
        values.insert(
            format!("{escaped}.sets"),
            Value::Array(vec![Value::String("map".to_owned())]),
        );
        values.insert(
            format!("{escaped}.deletes"),
            Value::Array(vec![Value::String("set".to_owned())]),
        );
    }
    let mut out = Map::new();
    out.insert("json".to_owned(), Value::Object(json));
    if !values.is_empty() {
        let mut meta = Map::new();
        meta.insert("values".to_owned(), Value::Object(values));
        meta.insert("v".to_owned(), Value::from(1));
        out.insert("meta".to_owned(), Value::Object(meta));
    }
    Value::Object(out)
}

/// The wire text of one entry of a collection's `sets` in
/// [`encode_changes`]: `[id, entity]`.
pub fn encode_set_entry(id: &str, entity: &Map<String, Value>) -> String {
    Value::Array(vec![
        Value::String(id.to_owned()),
        Value::Object(js_object(entity)),
    ])
    .to_string()
}

/// [`encode_changes`] as JSON text, with some `sets` entries given already
/// encoded ([`encode_set_entry`]): `extra` holds `(collection, id, text)`,
/// taken after that collection's own sets (an id seen before keeps its
/// place and takes the later entry, as in `encode_changes`). Every
/// collection named in `extra` must be in `changes`. The text equals
/// `encode_changes(...).to_string()` of the same changes.
pub fn encode_changes_text(changes: &DbChanges, extra: &[(String, String, Arc<str>)]) -> String {
    // A collection named twice keeps its first place with its last value,
    // as inserting into a JSON object does.
    let mut order: Vec<usize> = Vec::new();
    let mut slot: HashMap<&str, usize> = HashMap::new();
    for i in js_key_order(changes.collections.iter().map(|(c, _)| c.as_str())) {
        let name = changes.collections[i].0.as_str();
        match slot.get(name) {
            Some(&s) => order[s] = i,
            None => {
                slot.insert(name, order.len());
                order.push(i);
            }
        }
    }
    let quoted = |s: &str| Value::String(s.to_owned()).to_string();
    let mut out = String::from("{\"json\":{");
    for (n, &i) in order.iter().enumerate() {
        let (name, c) = &changes.collections[i];
        if n > 0 {
            out.push(',');
        }
        out.push_str(&quoted(name));
        out.push_str(":{\"sets\":[");
        let mut first_pos: HashMap<&str, usize> = HashMap::new();
        let mut entries: Vec<std::borrow::Cow<'_, str>> = Vec::with_capacity(c.sets.len());
        let own = c.sets.iter().map(|(id, e)| {
            (
                id.as_str(),
                std::borrow::Cow::Owned(encode_set_entry(id, e)),
            )
        });
        let given = extra
            .iter()
            .filter(|(ec, _, _)| ec == name)
            .map(|(_, id, text)| (id.as_str(), std::borrow::Cow::Borrowed(text.as_ref())));
        for (id, text) in own.chain(given) {
            match first_pos.get(id) {
                Some(&p) => entries[p] = text,
                None => {
                    first_pos.insert(id, entries.len());
                    entries.push(text);
                }
            }
        }
        out.push_str(&entries.join(","));
        out.push_str("],\"deletes\":[");
        let mut seen = HashSet::with_capacity(c.deletes.len());
        let deletes: Vec<String> = c
            .deletes
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .map(|id| quoted(id))
            .collect();
        out.push_str(&deletes.join(","));
        out.push_str("]}");
    }
    out.push('}');
    if !order.is_empty() {
        out.push_str(",\"meta\":{\"values\":{");
        for (n, &i) in order.iter().enumerate() {
            let escaped = escape_path_segment(&changes.collections[i].0);
            if n > 0 {
                out.push(',');
            }
            out.push_str(&quoted(&format!("{escaped}.sets")));
            out.push_str(":[\"map\"],");
            out.push_str(&quoted(&format!("{escaped}.deletes")));
            out.push_str(":[\"set\"]");
        }
        out.push_str("},\"v\":1}");
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

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
}
