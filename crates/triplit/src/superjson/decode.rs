//! Decoding a SuperJSON `DBChanges` payload: the annotation tree applied
//! to the plain JSON, then read as Ferry stores changes.

use std::collections::HashSet;

use serde_json::Value;

use super::paths::{join_annotation_path, split_annotation_path};
use super::{MAX_TREE_DEPTH, Sets, deserialization_error};
use crate::changes::{CollectionChanges, DbChanges};
use crate::error::TriplitError;
use crate::jsnum::{js_number_to_json, js_string_to_number};

/// A short name of a JSON value's type, for error contexts.
pub(super) fn type_name(v: &Value) -> &'static str {
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
pub(super) fn is_legacy_version(v: Option<&Value>) -> bool {
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
pub(super) enum Transform {
    Undefined,
    Number,
    Date,
    Map,
    Set,
}

/// Renders a path for error contexts.
pub(super) fn show_path(path: &[String]) -> String {
    if path.is_empty() {
        "the root".to_owned()
    } else {
        format!("{:?}", join_annotation_path(path))
    }
}

/// The transformation of an annotation `[type, ...]`.
pub(super) fn transform_of(tree: &[Value], path: &[String]) -> Result<Transform, TriplitError> {
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
pub(super) fn untransform(
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
pub(super) fn array_index(key: &str) -> Option<usize> {
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
pub(super) fn set_deep(
    root: &mut Value,
    path: &[String],
    transform: Transform,
) -> Result<(), TriplitError> {
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
pub(super) fn apply_tree(
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
pub(super) fn dedupe_sets(sets: Sets) -> Sets {
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
pub(super) fn dedupe_ids(ids: Vec<String>) -> Vec<String> {
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
pub(super) fn read_sets(collection: &str, sets: Value) -> Result<Sets, TriplitError> {
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
pub(super) fn read_deletes(collection: &str, deletes: Value) -> Result<Vec<String>, TriplitError> {
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
pub(super) fn changes_from_json(json: Value) -> Result<DbChanges, TriplitError> {
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
