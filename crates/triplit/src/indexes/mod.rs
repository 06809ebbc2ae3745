//! Persistent attribute indexes: which exist, and keeping them exact.
//!
//! An index on `(collection, path)` holds one entry per stored entity of
//! the collection, `("triplit", "i", collection, path, encode(value), id)`
//! with an empty value, where `value` is what a filter on `path` reads
//! (`null` when missing, so ordered scans see every entity). Entries sort
//! by encoded value, then by id in storage order.
//!
//! **Which attributes.** Any scalar attribute (string, number, boolean,
//! date, at any depth of nested records, `id` excepted: the entity key
//! already is its index) of a collection of the schema may be indexed
//! ([`Registry::for_schema`]); schemaless databases have no indexes. One
//! is built the first time a query's scan would have used it ([`add`],
//! asked for by the database after the query ran, see
//! `crate::query::ScanCache::take_wanted`), so writes only pay for the
//! attributes queries filter, order or join on. Cost: one extra key per
//! indexed attribute per inserted or deleted entity, and one delete plus
//! one put per indexed attribute an update changes.
//!
//! **The registry** (`("triplit", "ix")`) names the indexes that are
//! maintained. Writers read it inside their own write transaction and
//! maintain exactly those, readers read it in their snapshot and use only
//! those, so building an index (in one write transaction with the
//! registry entry, [`ensure`]), a schema change (which drops the indexes
//! of attributes it removes in the same transaction as the schema) or
//! another node's writes never leave an index half-maintained. A database
//! written before indexes existed has no registry and no entries.

pub mod encode;

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use ferry_store::{KeyRange, ReadTxn, WriteTxn};
use serde_json::{Map, Value};

use crate::query::value_at;
use crate::schema::{DataType, Schema};
use crate::{TriplitError, keys};

/// An index asked for: `(collection, dotted path)`.
pub type IndexWant = (String, String);

/// The maintained indexes: collection → indexed paths (sorted, dotted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    collections: BTreeMap<String, Vec<String>>,
}

fn scalar_paths(t: &DataType, prefix: &str, out: &mut Vec<String>) {
    for (name, t) in t.properties().unwrap_or_default() {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match t {
            DataType::Record { .. } => scalar_paths(t, &path, out),
            t if t.is_primitive() && path != "id" => out.push(path),
            _ => {}
        }
    }
}

impl Registry {
    /// The indexes Ferry may maintain for `schema` (none without one):
    /// every scalar attribute.
    pub fn for_schema(schema: Option<&Schema>) -> Registry {
        let mut collections = BTreeMap::new();
        for (name, c) in schema.into_iter().flat_map(Schema::collections) {
            let mut paths = Vec::new();
            scalar_paths(&c.schema, "", &mut paths);
            if !paths.is_empty() {
                paths.sort();
                paths.dedup();
                collections.insert(name.to_string(), paths);
            }
        }
        Registry { collections }
    }

    /// A registry of the given indexes (tests, tools).
    pub fn from_paths<'a>(paths: impl IntoIterator<Item = (&'a str, &'a str)>) -> Registry {
        let mut collections: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (c, p) in paths {
            collections
                .entry(c.to_string())
                .or_default()
                .push(p.to_string());
        }
        for paths in collections.values_mut() {
            paths.sort();
            paths.dedup();
        }
        Registry { collections }
    }

    /// The registry stored in `txn`; empty when none is stored.
    pub fn load(txn: &dyn ReadTxn) -> Result<Registry, TriplitError> {
        Ok(Self::load_stored(txn)?.unwrap_or_default())
    }

    /// The stored registry; `None` when none is stored.
    pub fn load_stored(txn: &dyn ReadTxn) -> Result<Option<Registry>, TriplitError> {
        let Some(bytes) = txn.get(&keys::index_registry())? else {
            return Ok(None);
        };
        let collections = serde_json::from_slice(&bytes).map_err(|e| {
            TriplitError::internal(format!("the index registry is unreadable: {e}"))
        })?;
        Ok(Some(Registry { collections }))
    }

    /// The indexed paths of `collection`.
    pub fn paths(&self, collection: &str) -> &[String] {
        self.collections
            .get(collection)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Whether `path` of `collection` is indexed.
    pub fn has(&self, collection: &str, path: &str) -> bool {
        self.paths(collection).iter().any(|p| p == path)
    }

    /// Whether no index is maintained.
    pub fn is_empty(&self) -> bool {
        self.collections.is_empty()
    }

    /// The indexes of `self` that `allowed` has too.
    pub fn within(&self, allowed: &Registry) -> Registry {
        let mut collections = BTreeMap::new();
        for (c, paths) in &self.collections {
            let kept: Vec<String> = paths
                .iter()
                .filter(|p| allowed.has(c, p))
                .cloned()
                .collect();
            if !kept.is_empty() {
                collections.insert(c.clone(), kept);
            }
        }
        Registry { collections }
    }

    fn insert(&mut self, collection: &str, path: &str) {
        let paths = self.collections.entry(collection.to_string()).or_default();
        if let Err(at) = paths.binary_search_by(|p| p.as_str().cmp(path)) {
            paths.insert(at, path.to_string());
        }
    }
}

/// Builds, inside `txn`, the indexes of `wanted` the stored schema allows
/// that are not maintained yet (with their registry entries); returns
/// whether any was built. Another node may have built them meanwhile, or
/// a schema change removed the attribute: then nothing is written.
pub fn add(txn: &mut dyn WriteTxn, wanted: &[IndexWant]) -> Result<bool, TriplitError> {
    let schema = Schema::load_stored(txn)?;
    let allowed = Registry::for_schema(schema.as_ref());
    let mut desired = Registry::load(txn)?;
    let before = desired.clone();
    for (c, p) in wanted {
        if allowed.has(c, p) {
            desired.insert(c, p);
        }
    }
    if desired == before {
        return Ok(false);
    }
    ensure(txn, &desired)
}

fn encoded_at(entity: &Map<String, Value>, path: &str) -> Vec<u8> {
    encode::encode(value_at_map(entity, path).as_ref())
}

/// What a filter on `path` reads from `entity` (`ValuePointer.Get`).
fn value_at_map(entity: &Map<String, Value>, path: &str) -> Option<Value> {
    let mut segs = path.split('.');
    let first = entity.get(segs.next()?)?;
    value_at(first, segs).map(|v| v.into_owned())
}

/// The encoded values of `entity` for every index of `collection`, in
/// the registry's path order (what [`maintain`] compares).
pub fn encodings(
    registry: &Registry,
    collection: &str,
    entity: &Map<String, Value>,
) -> Vec<Vec<u8>> {
    registry
        .paths(collection)
        .iter()
        .map(|p| encoded_at(entity, p))
        .collect()
}

/// Updates the indexes of `collection` for entity `id` going from the
/// encodings `before` to `after` (`None`: the entity is absent).
pub fn maintain(
    txn: &mut dyn WriteTxn,
    registry: &Registry,
    collection: &str,
    id: &str,
    before: Option<&[Vec<u8>]>,
    after: Option<&[Vec<u8>]>,
) -> Result<(), TriplitError> {
    for (i, path) in registry.paths(collection).iter().enumerate() {
        let b = before.and_then(|e| e.get(i));
        let a = after.and_then(|e| e.get(i));
        if b == a {
            continue;
        }
        if let Some(b) = b {
            txn.delete(&keys::index_entry(collection, path, b, id))?;
        }
        if let Some(a) = a {
            txn.put(&keys::index_entry(collection, path, a, id), &[])?;
        }
    }
    Ok(())
}

fn delete_prefix(txn: &mut dyn WriteTxn, prefix: &[u8]) -> Result<(), TriplitError> {
    let mut found = Vec::new();
    txn.scan(&KeyRange::prefix(prefix), false, &mut |k, _| {
        found.push(k.to_vec());
        ControlFlow::Continue(())
    })?;
    for k in found {
        txn.delete(&k)?;
    }
    Ok(())
}

/// Removes every index entry (the entities are being cleared); the
/// registry stays.
pub fn clear_entries(txn: &mut dyn WriteTxn) -> Result<(), TriplitError> {
    delete_prefix(txn, &keys::all_index_entries())
}

/// Entities read per page while building an index: the entries of one
/// page are written before the next is read, so a build holds one page of
/// decoded entities, not the collection.
pub(crate) const BUILD_PAGE: usize = 1024;

/// Writes the entries of the indexes on `paths` of `collection` for every
/// stored entity.
fn build(txn: &mut dyn WriteTxn, collection: &str, paths: &[&String]) -> Result<(), TriplitError> {
    let mut range = KeyRange::prefix(&keys::collection(collection));
    loop {
        let mut entries: Vec<Vec<u8>> = Vec::new();
        let mut seen = 0;
        let mut last: Option<Vec<u8>> = None;
        let mut bad = false;
        txn.scan(&range, false, &mut |k, v| {
            let id = keys::parse_entity(k).map(|(_, id)| id);
            match (id, serde_json::from_slice::<Value>(v)) {
                (Some(id), Ok(Value::Object(e))) => {
                    for p in paths {
                        entries.push(keys::index_entry(collection, p, &encoded_at(&e, p), &id));
                    }
                }
                _ => {
                    bad = true;
                    return ControlFlow::Break(());
                }
            }
            seen += 1;
            if seen == BUILD_PAGE {
                last = Some(k.to_vec());
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })?;
        if bad {
            return Err(TriplitError::internal(format!(
                "a stored entity of '{collection}' is not a JSON object; cannot index it"
            )));
        }
        for e in &entries {
            txn.put(e, &[])?;
        }
        match last {
            Some(mut k) => {
                k.push(0);
                range.start = k;
            }
            None => return Ok(()),
        }
    }
}

/// Makes the stored indexes those of `desired`, inside `txn`: indexes no
/// longer wanted are dropped, new ones are built from the stored entities,
/// and the registry is written. Returns whether anything changed. A
/// database without a registry is treated as having no index entries at
/// all (it was written before indexes existed).
pub fn ensure(txn: &mut dyn WriteTxn, desired: &Registry) -> Result<bool, TriplitError> {
    let stored = Registry::load_stored(txn)?;
    if stored.as_ref() == Some(desired) {
        return Ok(false);
    }
    let current = stored.unwrap_or_default();
    if current.is_empty() {
        // Also removes entries a crashed or foreign writer may have left.
        clear_entries(txn)?;
    }
    for (c, paths) in &current.collections {
        for p in paths {
            if !desired.has(c, p) {
                delete_prefix(txn, &keys::index(c, p))?;
            }
        }
    }
    for (c, paths) in &desired.collections {
        let new: Vec<&String> = paths.iter().filter(|p| !current.has(c, p)).collect();
        if new.is_empty() {
            continue;
        }
        build(txn, c, &new)?;
    }
    let bytes = serde_json::to_vec(&desired.collections)
        .map_err(|e| TriplitError::internal(e.to_string()))?;
    txn.put(&keys::index_registry(), &bytes)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_scalars_are_indexed_at_any_depth() {
        let s = Schema::from_json(&json!({"collections": {"t": {"schema": {
        "type": "record", "properties": {
            "id": {"type": "string"},
            "n": {"type": "number"},
            "tags": {"type": "set", "items": {"type": "string"}},
            "meta": {"type": "record", "properties": {
                "at": {"type": "date"}, "raw": {"type": "json"}
            }},
            "b": {"type": "boolean"}
        }}}}}))
        .expect("schema");
        let r = Registry::for_schema(Some(&s));
        assert_eq!(r.paths("t"), ["b", "meta.at", "n"]);
        assert!(Registry::for_schema(None).is_empty());
        assert_eq!(
            value_at_map(json!({"a": {"b": 1}}).as_object().unwrap(), "a.b"),
            Some(json!(1))
        );
    }
}
