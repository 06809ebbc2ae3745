//! What one connection's client holds: the union of its queries'
//! closures, and how it changes.
//!
//! The server remembers, per connection, which entities it has sent (with
//! a hash of the version sent) and which query needs which entities. After
//! a change it sends every entity that is new to the union or whose
//! content changed, and a delete for every entity that left the union —
//! the client then evicts it from its cache.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::entity_key::EntityKey;
use super::maintained::Delta;
use crate::changes::DbChanges;

/// One entity of a closure: key and full stored document.
pub type ClosureEntity = (String, String, Map<String, Value>);

/// An entity of a computed result: interned key, document, content hash.
#[derive(Debug, Clone)]
pub struct HashedEntity {
    /// `(collection, id)`.
    pub key: EntityKey,
    /// The stored document.
    pub doc: Map<String, Value>,
    /// [`content_hash`] of `doc`.
    pub hash: u64,
}

/// A closure with each entity's content hash.
pub type HashedClosure = Vec<HashedEntity>;

/// Hashes every entity of a closure (done once per computed result).
pub fn hash_closure(closure: Vec<ClosureEntity>) -> HashedClosure {
    closure
        .into_iter()
        .map(|(c, id, doc)| HashedEntity {
            key: EntityKey::new(&c, &id),
            hash: content_hash(&doc),
            doc,
        })
        .collect()
}

/// The hash of an entity version (its JSON text).
pub(crate) fn content_hash(e: &Map<String, Value>) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_string(e).unwrap_or_default().hash(&mut h);
    h.finish()
}

/// The per-connection view.
#[derive(Debug, Default)]
pub struct View {
    /// Every entity sent or held by a query (one map, not two: it is the
    /// larger part of an idle connection's view).
    held: HashMap<EntityKey, Held>,
    members: HashMap<String, Vec<EntityKey>>,
}

/// What the client has of one entity and how many queries hold it.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    /// [`content_hash`] of the version sent, when `sent`.
    hash: u64,
    sent: bool,
    /// How many queries hold the entity.
    refs: u32,
}

impl View {
    /// Whether the client has version `hash` of `key`.
    fn has_sent(&self, key: &EntityKey, hash: u64) -> bool {
        self.held.get(key).is_some_and(|e| e.sent && e.hash == hash)
    }

    /// Records that the client now has version `hash` of `key`.
    fn mark_sent(&mut self, key: &EntityKey, hash: u64) {
        let e = self.held.entry(key.clone()).or_default();
        e.hash = hash;
        e.sent = true;
    }

    /// Forgets that `key` was sent; whether it was.
    fn clear_sent(&mut self, key: &EntityKey) -> bool {
        let Some(e) = self.held.get_mut(key) else {
            return false;
        };
        let was = std::mem::replace(&mut e.sent, false);
        if e.refs == 0 {
            self.held.remove(key);
        }
        was
    }

    /// One more query holds `key`.
    fn hold(&mut self, key: &EntityKey) {
        self.held.entry(key.clone()).or_default().refs += 1;
    }

    /// One query fewer holds `key`; whether none does any more.
    fn release(&mut self, key: &EntityKey) -> bool {
        let Some(e) = self.held.get_mut(key) else {
            return false;
        };
        if e.refs == 0 {
            return false;
        }
        e.refs -= 1;
        e.refs == 0
    }

    /// Whether some query holds `key`.
    fn referenced(&self, key: &EntityKey) -> bool {
        self.held.get(key).is_some_and(|e| e.refs > 0)
    }
}

/// The outcome of updating some queries.
#[derive(Debug, Default)]
pub struct ViewChange {
    /// What to send (sets and deletes, collections in first-seen order).
    pub changes: DbChanges,
    /// Queries whose result or entities changed.
    pub fired: Vec<String>,
    /// Sets whose wire text is shared with other connections:
    /// `(collection, id, encoded entry)`, after `changes`' own sets of
    /// the collection (which `changes` lists).
    pub shared_sets: Vec<(String, String, Arc<str>)>,
}

impl View {
    /// Whether `query` is tracked.
    pub fn has_query(&self, query: &str) -> bool {
        self.members.contains_key(query)
    }

    fn set_members(&mut self, query: &str, keys: Option<Vec<EntityKey>>) -> Vec<EntityKey> {
        // The new members are counted before the old ones are released, so
        // a key in both never reaches zero.
        let old = match keys {
            Some(k) => {
                for key in &k {
                    self.hold(key);
                }
                self.members.insert(query.to_string(), k)
            }
            None => self.members.remove(query),
        };
        let mut dropped = Vec::new();
        for key in old.unwrap_or_default() {
            if self.release(&key) {
                dropped.push(key);
            }
        }
        // Keys no query holds any more are candidates for eviction.
        dropped
    }

    /// Marks `key` as already held by the client in version `entity`
    /// (the checkpoint skip).
    pub fn assume_sent(&mut self, key: EntityKey, entity: &Map<String, Value>) {
        self.mark_sent(&key, content_hash(entity));
    }

    /// Replaces the closures of `updated` queries and returns the diff.
    pub fn update(&mut self, updated: Vec<(String, Vec<ClosureEntity>)>) -> ViewChange {
        let hashed = updated
            .into_iter()
            .map(|(q, closure)| (q, Arc::new(hash_closure(closure))))
            .collect();
        self.update_hashed(hashed)
    }

    /// [`View::update`] for closures whose entities are already hashed
    /// (shared between connections; entities are cloned only when sent).
    pub fn update_hashed(&mut self, updated: Vec<(String, Arc<HashedClosure>)>) -> ViewChange {
        self.update_all(updated, Vec::new())
    }

    /// Replaces the closures of `updated` queries and applies the changes
    /// of maintained ones (`(query, collection, delta)`: the query's
    /// members gain `entered` and lose `left`, and `sets` are its entities
    /// that are new or changed); returns the combined diff. An entity that
    /// leaves one query and is held by another is not evicted.
    pub fn update_all(
        &mut self,
        updated: Vec<(String, Arc<HashedClosure>)>,
        deltas: Vec<(String, String, Delta)>,
    ) -> ViewChange {
        let mut out = ViewChange::default();
        let mut seen: HashSet<EntityKey> = HashSet::new();
        let mut candidates: Vec<EntityKey> = Vec::new();
        for (query, closure) in updated {
            let mut fired = false;
            let keys: Vec<EntityKey> = closure.iter().map(|e| e.key.clone()).collect();
            if self.members.get(&query) != Some(&keys) {
                fired = true;
            }
            for HashedEntity { key, doc, hash } in closure.iter() {
                if !self.has_sent(key, *hash) {
                    self.mark_sent(key, *hash);
                    out.changes
                        .collection_mut(key.collection())
                        .sets
                        .push((key.id().to_string(), doc.clone()));
                    seen.insert(key.clone());
                    fired = true;
                } else if seen.contains(key) {
                    fired = true;
                }
            }
            candidates.extend(self.set_members(&query, Some(keys)));
            if fired {
                out.fired.push(query);
            }
        }
        for (query, collection, delta) in deltas {
            let mut fired = !delta.left.is_empty() || !delta.entered.is_empty();
            let mut members = self.members.remove(&query).unwrap_or_default();
            for key in delta.left {
                if let Some(i) = members.iter().position(|k| *k == key) {
                    members.swap_remove(i);
                    if self.release(&key) {
                        candidates.push(key);
                    }
                }
            }
            for key in delta.entered {
                self.hold(&key);
                members.push(key);
            }
            self.members.insert(query.clone(), members);
            for (key, entity, h) in delta.sets {
                if !self.has_sent(&key, h) {
                    self.mark_sent(&key, h);
                    // Listed in `changes` so the collection keeps its place.
                    out.changes.collection_mut(&collection);
                    out.shared_sets.push((
                        collection.clone(),
                        key.id().to_string(),
                        entity.commit.encoded_set(entity.index),
                    ));
                    seen.insert(key);
                    fired = true;
                } else if seen.contains(&key) {
                    fired = true;
                }
            }
            if fired {
                out.fired.push(query);
            }
        }
        for key in candidates {
            if !self.referenced(&key) && self.clear_sent(&key) {
                out.changes
                    .collection_mut(key.collection())
                    .deletes
                    .push(key.id().to_string());
            }
        }
        out
    }

    /// Whether some query holds `key` (the client should have it).
    pub fn holds(&self, key: &EntityKey) -> bool {
        self.referenced(key)
    }

    /// Forgets which version of `key` was sent, so the next update of a
    /// query holding it sends it again.
    pub fn unsend(&mut self, key: &EntityKey) {
        self.clear_sent(key);
    }

    /// Forgets a query without telling the client (no evictions).
    pub fn forget(&mut self, query: &str) {
        for key in self.set_members(query, None) {
            self.clear_sent(&key);
        }
    }

    /// Number of entities the client holds through this connection.
    pub fn len(&self) -> usize {
        self.held.values().filter(|e| e.sent).count()
    }

    /// Whether no entity is held.
    pub fn is_empty(&self) -> bool {
        !self.held.values().any(|e| e.sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn e(c: &str, id: &str, v: Value) -> ClosureEntity {
        (c.into(), id.into(), v.as_object().unwrap().clone())
    }

    #[test]
    fn new_changed_and_evicted_entities() {
        let mut v = View::default();
        let first = v.update(vec![(
            "q".into(),
            vec![
                e("t", "1", json!({"id":"1"})),
                e("p", "a", json!({"id":"a"})),
            ],
        )]);
        assert_eq!(first.changes.collections.len(), 2);
        assert_eq!(first.fired, vec!["q"]);
        // Unchanged: nothing to send.
        let same = v.update(vec![(
            "q".into(),
            vec![
                e("t", "1", json!({"id":"1"})),
                e("p", "a", json!({"id":"a"})),
            ],
        )]);
        assert!(same.changes.is_empty());
        assert!(same.fired.is_empty());
        // t/1 changes, p/a leaves: a set and an eviction.
        let next = v.update(vec![(
            "q".into(),
            vec![e("t", "1", json!({"id":"1","x":1}))],
        )]);
        let t = &next
            .changes
            .collections
            .iter()
            .find(|(c, _)| c == "t")
            .unwrap()
            .1;
        assert_eq!(t.sets.len(), 1);
        let p = &next
            .changes
            .collections
            .iter()
            .find(|(c, _)| c == "p")
            .unwrap()
            .1;
        assert_eq!(p.deletes, vec!["a".to_string()]);
    }

    #[test]
    fn overlapping_queries_share_entities_and_forget_does_not_evict() {
        let mut v = View::default();
        v.update(vec![("a".into(), vec![e("t", "1", json!({"id":"1"}))])]);
        let second = v.update(vec![("b".into(), vec![e("t", "1", json!({"id":"1"}))])]);
        assert!(second.changes.is_empty(), "already sent through query a");
        let gone = v.update(vec![("a".into(), vec![])]);
        assert!(gone.changes.is_empty(), "still held through query b");
        v.forget("b");
        assert!(v.is_empty());
        // Re-subscribing sends it again.
        let again = v.update(vec![("c".into(), vec![e("t", "1", json!({"id":"1"}))])]);
        assert_eq!(again.changes.collections[0].1.sets.len(), 1);
    }
}

#[cfg(test)]
mod properties {
    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// One step of a session: a query (re)subscribes to a set of entities,
    /// an entity changes (every live query holding it is re-run, as after a
    /// commit), or a query is disconnected.
    #[derive(Debug, Clone)]
    enum Step {
        Subscribe(usize, Vec<usize>),
        Change(usize),
        Disconnect(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0..3usize, proptest::collection::vec(0..8usize, 0..6)).prop_map(|(q, e)| Step::Subscribe(q, e)),
            3 => (0..8usize).prop_map(Step::Change),
            1 => (0..3usize).prop_map(Step::Disconnect),
        ]
    }

    fn closure(members: &[usize], version: &HashMap<usize, u32>) -> Vec<ClosureEntity> {
        members
            .iter()
            .map(|e| {
                let v = version.get(e).copied().unwrap_or(0);
                let doc = json!({"id": e.to_string(), "v": v});
                (
                    "c".to_string(),
                    e.to_string(),
                    doc.as_object().unwrap().clone(),
                )
            })
            .collect()
    }

    proptest! {
        /// A client cache built only from what the view sends always holds
        /// every entity of every live query in its latest version, and holds
        /// nothing else except entities of disconnected queries (which are
        /// forgotten without eviction, as upstream does).
        #[test]
        fn incremental_diffs_equal_recomputing_from_scratch(steps in proptest::collection::vec(step(), 1..60)) {
            let mut view = View::default();
            let mut client: HashMap<String, u32> = HashMap::new();
            let mut live: HashMap<usize, Vec<usize>> = HashMap::new();
            let mut version: HashMap<usize, u32> = HashMap::new();
            let mut disconnected: HashSet<String> = HashSet::new();
            for s in steps {
                let updates: Vec<(String, Vec<ClosureEntity>)> = match s {
                    Step::Subscribe(q, members) => {
                        live.insert(q, members.clone());
                        vec![(q.to_string(), closure(&members, &version))]
                    }
                    Step::Change(e) => {
                        *version.entry(e).or_insert(0) += 1;
                        live.iter()
                            .filter(|(_, m)| m.contains(&e))
                            .map(|(q, m)| (q.to_string(), closure(m, &version)))
                            .collect()
                    }
                    Step::Disconnect(q) => {
                        if let Some(m) = live.remove(&q) {
                            disconnected.extend(m.iter().map(|e| e.to_string()));
                        }
                        view.forget(&q.to_string());
                        Vec::new()
                    }
                };
                if !updates.is_empty() {
                    let change = view.update(updates);
                    for (_, cc) in &change.changes.collections {
                        for (id, e) in &cc.sets {
                            client.insert(id.clone(), e["v"].as_u64().unwrap() as u32);
                        }
                        for id in &cc.deletes {
                            client.remove(id);
                        }
                    }
                }
                let union: HashMap<String, u32> = live
                    .values()
                    .flatten()
                    .map(|e| (e.to_string(), version.get(e).copied().unwrap_or(0)))
                    .collect();
                for (k, v) in &union {
                    prop_assert_eq!(client.get(k), Some(v), "missing or stale entity {}", k);
                }
                for k in client.keys() {
                    prop_assert!(union.contains_key(k) || disconnected.contains(k), "entity {} should have been evicted", k);
                }
                prop_assert_eq!(view.len(), union.len());
                // Nothing is kept for an entity neither sent nor held, and
                // each one's count is how often live queries list it.
                prop_assert!(view.held.values().all(|e| e.sent || e.refs > 0));
                for (k, e) in &view.held {
                    let holding = live.values().flatten().filter(|x| x.to_string() == k.id()).count();
                    prop_assert_eq!(e.refs as usize, holding, "refs of {}", k.id());
                }
            }
        }
    }
}
