//! Encoding `DBChanges` exactly as `SuperJSON.serialize` does for `Map`s
//! and `Set`s, with JavaScript's object key order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::MAX_SAFE_INTEGER_PLUS_ONE;
use super::paths::escape_path_segment;
use crate::changes::DbChanges;
use crate::jsnum::js_number_to_json;

/// superjson's `isArrayIndex`: the keys a JS object lists first, in
/// ascending numeric order (canonical integers below `2^32 - 1`).
pub(super) fn is_array_index(key: &str) -> Option<u32> {
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
pub(super) fn js_key_order<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<usize> {
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
pub(super) fn js_number(n: &serde_json::Number) -> Value {
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
pub(super) fn js_value(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().map(js_value).collect()),
        Value::Object(o) => Value::Object(js_object(o)),
        Value::Number(n) => js_number(n),
        other => other.clone(),
    }
}

/// [`js_value`] for an object.
pub(super) fn js_object(o: &Map<String, Value>) -> Map<String, Value> {
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
