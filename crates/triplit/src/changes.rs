//! `DBChanges`: a batch of writes, per collection, as it travels in
//! `CHANGES`, `ENTITY_DATA` and `/apply-changes`.

use serde_json::{Map, Value};

/// One collection's part of a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectionChanges {
    /// Entity id → entity (an insert when it carries `id`) or patch, in
    /// wire order.
    pub sets: Vec<(String, Map<String, Value>)>,
    /// Deleted entity ids, in wire order.
    pub deletes: Vec<String>,
}

/// A batch of changes, collections in wire order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbChanges {
    /// `(collection name, its changes)`, each collection at most once.
    pub collections: Vec<(String, CollectionChanges)>,
}

impl DbChanges {
    /// The entry for `collection`, created empty when missing.
    pub fn collection_mut(&mut self, collection: &str) -> &mut CollectionChanges {
        if let Some(i) = self.collections.iter().position(|(c, _)| c == collection) {
            return &mut self.collections[i].1;
        }
        self.collections
            .push((collection.to_string(), CollectionChanges::default()));
        &mut self.collections.last_mut().expect("just pushed").1
    }

    /// How many sets and deletes the batch holds.
    pub fn len(&self) -> usize {
        self.collections
            .iter()
            .map(|(_, c)| c.sets.len() + c.deletes.len())
            .sum()
    }

    /// Whether the batch has no sets and no deletes.
    pub fn is_empty(&self) -> bool {
        self.collections
            .iter()
            .all(|(_, c)| c.sets.is_empty() && c.deletes.is_empty())
    }
}
