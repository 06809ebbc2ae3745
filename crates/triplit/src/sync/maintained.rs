//! A subscribed result kept up to date from commits, without re-running
//! the query.
//!
//! For a query whose result depends on each entity alone
//! ([`Incremental`]), a connection keeps the result rows in order. A
//! commit's touched entities (their full post-state) are taken out and,
//! when they still pass the filters, put back at their rank; rows beyond
//! the `limit` fall out. The result is exact as long as the rows held are
//! every matching entity (`complete`) or the window stays full: when a
//! limited window loses rows while entities beyond it may exist, only the
//! store can say which move up, so [`Maintained::apply`] answers
//! [`Applied::Refill`] and the caller runs the query again.
//!
//! Commits at or below `base_seq` are already reflected (the result was
//! computed from a snapshot that included them) and are skipped.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::entity_key::EntityKey;
use super::view::HashedClosure;
use crate::TriplitError;
use crate::db::Commit;
use crate::query::{Incremental, Rank};

/// A held row: its rank and the content hash of the version the client
/// has. Documents are not kept: a row is sent only when a commit touches
/// it, and the commit carries the document. The id is the interned entity
/// key (shared with every other result and view holding the entity).
#[derive(Debug)]
struct Row {
    rank: Rank<EntityKey>,
    hash: u64,
}

/// One query's maintained result.
#[derive(Debug)]
pub struct Maintained {
    spec: Arc<Incremental>,
    rows: Vec<Row>,
    /// Every matching entity is held (the last run returned fewer rows
    /// than the limit, or there is none).
    complete: bool,
    base_seq: u64,
}

/// A document to send: the `index`th entity of the commit that wrote it
/// (whose encoded text every connection sending it shares).
#[derive(Debug)]
pub struct SetDoc {
    /// The commit.
    pub commit: Arc<Commit>,
    /// The entity's position in it.
    pub index: usize,
}

impl SetDoc {
    /// The document.
    pub fn map(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        self.commit.entities[self.index]
            .2
            .as_ref()
            .unwrap_or(&EMPTY)
    }
}

/// What changed in a maintained result.
#[derive(Debug, Default)]
pub struct Delta {
    /// Entities that left the result.
    pub left: Vec<EntityKey>,
    /// Entities that entered it.
    pub entered: Vec<EntityKey>,
    /// Entities that entered or whose content changed: key, document, hash.
    pub sets: Vec<(EntityKey, SetDoc, u64)>,
}

impl Delta {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.left.is_empty() && self.entered.is_empty() && self.sets.is_empty()
    }
}

/// The outcome of applying commits.
#[derive(Debug)]
pub enum Applied {
    /// The result after the commits, as a change.
    Changed(Delta),
    /// The window lost rows that only the store can refill.
    Refill,
}

impl Maintained {
    /// The result of a run of the query (its closure, in result order),
    /// reflecting every commit up to `base_seq`.
    pub fn new(spec: Arc<Incremental>, closure: &HashedClosure, base_seq: u64) -> Self {
        let rows: Vec<Row> = closure
            .iter()
            .map(|e| Row {
                rank: spec.rank_with(e.key.clone(), &e.doc),
                hash: e.hash,
            })
            .collect();
        let complete = spec.limit().is_none_or(|l| rows.len() < l);
        Self {
            spec,
            rows,
            complete,
            base_seq,
        }
    }

    /// The commits after `base_seq` (in feed order) applied to the result.
    pub fn apply(&mut self, commits: &[Arc<Commit>]) -> Result<Applied, TriplitError> {
        // Membership and content hash before the commits, per id seen.
        // Keys come from the commit, interned once for every connection.
        let mut before: HashMap<EntityKey, Option<u64>> = HashMap::new();
        // The latest version of each touched entity: commit and index.
        let mut docs: HashMap<EntityKey, (&Arc<Commit>, usize)> = HashMap::new();
        let mut refill = false;
        let limit = self.spec.limit();
        for commit in commits {
            let Some(seq) = commit.seq else { continue };
            if seq <= self.base_seq {
                continue;
            }
            self.base_seq = seq;
            for (index, (collection, _, entity)) in commit.entities.iter().enumerate() {
                if collection != self.spec.collection() {
                    continue;
                }
                let key = commit.entity_key(index);
                let at = self.rows.iter().position(|r| r.rank.id == key);
                let old = at.map(|i| self.rows.remove(i));
                before
                    .entry(key.clone())
                    .or_insert(old.as_ref().map(|r| r.hash));
                if let Some(doc) = entity
                    && self.spec.matches(doc)?
                {
                    let rank = self.spec.rank_with(key.clone(), doc);
                    let pos = self
                        .rows
                        .partition_point(|r| self.spec.compare(&r.rank, &rank).is_lt());
                    // Past every row held of an incomplete window: unheld
                    // entities may rank before it, so it stays outside (and
                    // a short window is refilled below).
                    if self.complete || pos < self.rows.len() {
                        self.rows.insert(
                            pos,
                            Row {
                                rank,
                                hash: commit.content_hash(index),
                            },
                        );
                        docs.insert(key, (commit, index));
                    }
                }
                if let Some(l) = limit {
                    while self.rows.len() > l {
                        let out = self.rows.pop().expect("rows beyond the limit");
                        self.complete = false;
                        before.entry(out.rank.id).or_insert(Some(out.hash));
                    }
                    if !self.complete && self.rows.len() < l {
                        refill = true;
                    }
                }
            }
        }
        if refill {
            return Ok(Applied::Refill);
        }
        let mut delta = Delta::default();
        if before.is_empty() {
            return Ok(Applied::Changed(delta));
        }
        let now: HashMap<&EntityKey, &Row> = self
            .rows
            .iter()
            .filter(|r| before.contains_key(&r.rank.id))
            .map(|r| (&r.rank.id, r))
            .collect();
        let shared = |key: &EntityKey| {
            let (c, i) = docs[key];
            SetDoc {
                commit: c.clone(),
                index: i,
            }
        };
        for (key, was) in before {
            match (was, now.get(&key)) {
                (Some(_), None) => delta.left.push(key),
                (None, Some(r)) => {
                    delta.sets.push((key.clone(), shared(&key), r.hash));
                    delta.entered.push(key);
                }
                (Some(h), Some(r)) if h != r.hash => {
                    let doc = shared(&key);
                    delta.sets.push((key, doc, r.hash))
                }
                _ => {}
            }
        }
        Ok(Applied::Changed(delta))
    }
}

#[cfg(test)]
mod tests {
    //! Maintained results against running the query again after every
    //! batch of random writes.

    use super::*;
    use crate::query::{execute, prepare};
    use crate::session::Session;
    use crate::sync::view::hash_closure;
    use ferry_core::Hlc;
    use ferry_store::{MemoryStore, Store, StoreExt};
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Put(usize, Value),
        Delete(usize),
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            (0..5i64).prop_map(Value::from),
            prop_oneof![Just("a"), Just("b"), Just("B"), Just("")].prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
        ]
    }

    fn entity() -> impl Strategy<Value = Value> {
        (
            proptest::option::of(value()),
            proptest::option::of(value()),
            any::<bool>(),
        )
            .prop_map(|(n, s, b)| {
                let mut m = Map::new();
                if let Some(n) = n {
                    m.insert("n".into(), n);
                }
                if let Some(s) = s {
                    m.insert("s".into(), s);
                }
                m.insert("b".into(), Value::Bool(b));
                Value::Object(m)
            })
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..10usize, entity()).prop_map(|(i, e)| Op::Put(i, e)),
            1 => (0..10usize).prop_map(Op::Delete),
        ]
    }

    fn query() -> impl Strategy<Value = Value> {
        let filter = prop_oneof![
            Just(json!([])),
            Just(json!([["b", "=", true]])),
            Just(json!([["n", ">", 1]])),
            Just(json!([["n", "<=", 2], ["b", "=", false]])),
            Just(json!([{"mod": "or", "filters": [["s", "=", "a"], ["n", "=", 0]]}])),
            Just(json!([["s", "!=", "b"]])),
        ];
        let order = prop_oneof![
            Just(Value::Null),
            Just(json!([["n", "ASC"]])),
            Just(json!([["n", "DESC"]])),
            Just(json!([["s", "ASC"], ["n", "DESC"]])),
            Just(json!([["b", "DESC"]])),
        ];
        let limit = prop_oneof![
            Just(Value::Null),
            Just(json!(0)),
            Just(json!(1)),
            Just(json!(3)),
            Just(json!(5))
        ];
        (filter, order, limit).prop_map(|(w, o, l)| {
            let mut q = json!({"collectionName": "t", "where": w});
            if !o.is_null() {
                q["order"] = o;
            }
            if !l.is_null() {
                q["limit"] = l;
            }
            q
        })
    }

    fn id(i: usize) -> String {
        format!("e{i:02}")
    }

    async fn run(store: &MemoryStore, q: &crate::query::PreparedQuery) -> HashedClosure {
        let q = q.clone();
        let closure = store
            .read(move |txn| Ok::<_, TriplitError>(execute(txn, &q)?.closure))
            .await
            .unwrap();
        hash_closure(closure)
    }

    async fn check(q: Value, batches: Vec<Vec<Op>>) -> Result<(), TestCaseError> {
        let store = MemoryStore::new();
        let prepared = prepare(&q, None, &Session::service()).unwrap();
        let spec = prepared.incremental().expect("maintainable").clone();
        let mut m = Maintained::new(spec.clone(), &run(&store, &prepared).await, 0);
        // What a client holds after applying every delta.
        let mut client: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        let mut state: BTreeMap<String, Value> = BTreeMap::new();
        for (n, batch) in batches.into_iter().enumerate() {
            let seq = n as u64 + 1;
            let mut touched: BTreeMap<String, Option<Map<String, Value>>> = BTreeMap::new();
            for op in batch {
                match op {
                    Op::Put(i, mut e) => {
                        e["id"] = Value::String(id(i));
                        state.insert(id(i), e.clone());
                        touched.insert(id(i), e.as_object().cloned());
                    }
                    Op::Delete(i) => {
                        state.remove(&id(i));
                        touched.insert(id(i), None);
                    }
                }
            }
            let writes = touched.clone();
            store
                .write(move |txn| {
                    for (i, e) in &writes {
                        let key = crate::keys::entity("t", i);
                        match e {
                            Some(e) => txn.put(&key, &serde_json::to_vec(e).unwrap())?,
                            None => txn.delete(&key)?,
                        }
                    }
                    Ok::<_, TriplitError>(())
                })
                .await
                .unwrap();
            let commit = Arc::new(Commit::new(
                Some(seq),
                Hlc::new(seq, 0),
                touched
                    .into_iter()
                    .map(|(i, e)| ("t".to_string(), i, e))
                    .collect(),
            ));
            let expected = run(&store, &prepared).await;
            match m.apply(&[commit]).unwrap() {
                Applied::Changed(d) => {
                    for k in &d.left {
                        prop_assert!(client.remove(k.id()).is_some() || !d.entered.contains(k));
                    }
                    for (k, e, _) in d.sets {
                        client.insert(k.id().to_string(), e.map().clone());
                    }
                }
                Applied::Refill => {
                    m = Maintained::new(spec.clone(), &expected, seq);
                    client = expected
                        .iter()
                        .map(|e| (e.key.id().to_string(), e.doc.clone()))
                        .collect();
                }
            }
            let held: Vec<&str> = m.rows.iter().map(|r| r.rank.id.id()).collect();
            let want: Vec<&str> = expected.iter().map(|e| e.key.id()).collect();
            prop_assert_eq!(&held, &want, "after batch {}", n);
            let client_now: BTreeMap<String, Map<String, Value>> = expected
                .iter()
                .map(|e| (e.key.id().to_string(), e.doc.clone()))
                .collect();
            prop_assert_eq!(&client, &client_now, "client copy after batch {}", n);
        }
        let _ = store.close().await;
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn maintained_results_equal_running_the_query_again(
            q in query(),
            batches in proptest::collection::vec(proptest::collection::vec(op(), 1..4), 1..25),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(check(q, batches))?;
        }
    }

    #[test]
    fn queries_with_relations_or_cursors_are_not_maintained() {
        let s = Session::service();
        for q in [
            json!({"collectionName": "t", "where": [{"exists": {"collectionName": "u"}}]}),
            json!({"collectionName": "t", "include": {"x": {"subquery": {"collectionName": "u"}, "cardinality": "many"}}}),
            json!({"collectionName": "t", "order": [["n", "ASC"]], "after": [[1], false]}),
            json!({"collectionName": "t", "limit": 2.5}),
            json!({"collectionName": "t", "where": [["id", "=", "x"]]}),
        ] {
            let p = prepare(&q, None, &s).unwrap();
            assert!(p.incremental().is_none(), "{q}");
        }
        let p = prepare(&json!({"collectionName": "t", "where": [["n", ">", 1]], "order": [["n", "DESC"]], "limit": 3}), None, &s).unwrap();
        assert_eq!(p.incremental().unwrap().limit(), Some(3));
    }
}
