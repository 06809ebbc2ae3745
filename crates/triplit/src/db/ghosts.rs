//! The set items of a deleted entity, carried into a re-insert of its id.
//!
//! A `Set` attribute is stored as `{item: bool}`, and a removed item stays
//! as `false` (upstream's tombstone), so the full entity sent to a client
//! always names every item the entity ever had. A delete drops the entity
//! document and with it those names: an entity inserted again under the
//! same id would carry only its new items.
//!
//! That matters to the published client. When a delete and a set of the
//! same id reach one of its live-query updates together (one frame, or two
//! frames it applies concurrently), the live query merges the set into the
//! row it already holds (`ivm.js`, `updateQueryResultsInPlace` applies the
//! set onto the cached entity although the id is also deleted). The row of
//! the old entity keeps its set items, and the query shows them, while the
//! client's store holds the new entity alone. Ferry sends a delete and a
//! set together on purpose when it restates an entity (`sync/settle.rs`),
//! and the race makes it happen on any server.
//!
//! So a delete remembers the names of the items of every set attribute
//! (key `("triplit", "g", collection, id)`), and an insert of an id with
//! no stored entity writes each remembered item it does not set itself as
//! `false`. The merge then clears the old items. Nothing else can tell: a
//! `false` item is not a member for `/fetch`, filters or the client. The
//! remembered names are consumed by the insert (the new entity carries
//! them on, so its own delete remembers them again).

use serde_json::{Map, Value};

use crate::schema::{Collection, DataType};

/// The paths of a collection's `Set` attributes (inside records too),
/// borrowed from the schema: computed per commit, so no name is copied.
pub(super) fn set_paths(collection: &Collection) -> Vec<Vec<&str>> {
    fn walk<'a>(
        props: &'a [(String, DataType)],
        at: &mut Vec<&'a str>,
        out: &mut Vec<Vec<&'a str>>,
    ) {
        for (name, ty) in props {
            match ty {
                DataType::Set { .. } => {
                    let mut path = at.clone();
                    path.push(name);
                    out.push(path);
                }
                DataType::Record { properties, .. } => {
                    at.push(name);
                    walk(properties, at, out);
                    at.pop();
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(collection.properties(), &mut Vec::new(), &mut out);
    out
}

fn object_at<'a>(entity: &'a Map<String, Value>, path: &[&str]) -> Option<&'a Map<String, Value>> {
    let (last, parents) = path.split_last()?;
    let mut at = entity;
    for p in parents {
        at = at.get(*p)?.as_object()?;
    }
    at.get(*last)?.as_object()
}

fn object_at_mut<'a>(
    entity: &'a mut Map<String, Value>,
    path: &[&str],
) -> Option<&'a mut Map<String, Value>> {
    let (last, parents) = path.split_last()?;
    let mut at = entity;
    for p in parents {
        at = at.get_mut(*p)?.as_object_mut()?;
    }
    at.get_mut(*last)?.as_object_mut()
}

/// What a delete of `entity` remembers: every item of its sets, live or
/// removed, as `false` in the entity's shape; `None` when it has none.
pub(super) fn of_deleted(
    entity: &Map<String, Value>,
    paths: &[Vec<&str>],
) -> Option<Map<String, Value>> {
    let mut ghost = Map::new();
    for path in paths {
        let Some(items) = object_at(entity, path).filter(|m| !m.is_empty()) else {
            continue;
        };
        let mut at = &mut ghost;
        for p in &path[..path.len() - 1] {
            at = match at
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Map::new()))
            {
                Value::Object(m) => m,
                _ => unreachable!("ghost parents are objects"),
            };
        }
        let removed = items
            .keys()
            .map(|k| (k.clone(), Value::Bool(false)))
            .collect();
        at.insert(path[path.len() - 1].to_string(), Value::Object(removed));
    }
    (!ghost.is_empty()).then_some(ghost)
}

/// Writes each remembered item that `entity` (a fresh insert) does not
/// set itself as `false`, in the sets `entity` has.
pub(super) fn carry(
    entity: &mut Map<String, Value>,
    ghost: &Map<String, Value>,
    paths: &[Vec<&str>],
) {
    for path in paths {
        let (Some(old), Some(new)) = (object_at(ghost, path), object_at_mut(entity, path)) else {
            continue;
        };
        for key in old.keys() {
            if !new.contains_key(key) {
                new.insert(key.clone(), Value::Bool(false));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn paths() -> Vec<Vec<&'static str>> {
        vec![vec!["tags"], vec!["meta", "labels"]]
    }

    #[test]
    fn a_delete_remembers_every_item_live_or_removed() {
        let e = obj(
            json!({"id": "a", "tags": {"red": true, "old": false}, "meta": {"labels": {"x": true}, "n": 1}}),
        );
        let g = of_deleted(&e, &paths()).expect("has items");
        assert_eq!(
            Value::Object(g),
            json!({"tags": {"red": false, "old": false}, "meta": {"labels": {"x": false}}})
        );
        let empty = obj(json!({"id": "b", "tags": {}, "meta": {"n": 1}}));
        assert_eq!(of_deleted(&empty, &paths()), None);
    }

    #[test]
    fn a_reinsert_removes_the_old_items_it_does_not_set() {
        let g =
            obj(json!({"tags": {"red": false, "blue": false}, "meta": {"labels": {"x": false}}}));
        let mut e = obj(json!({"id": "a", "tags": {"blue": true}, "meta": {"n": 2}}));
        carry(&mut e, &g, &paths());
        // `blue` is set again and stays live; `red` is removed; the record
        // without `labels` gets none.
        assert_eq!(
            Value::Object(e),
            json!({"id": "a", "tags": {"blue": true, "red": false}, "meta": {"n": 2}})
        );
    }
}
