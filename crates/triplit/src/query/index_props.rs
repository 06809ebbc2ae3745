//! Property tests: plans served by persistent indexes return exactly the
//! rows of the full scan (same rows, same order), over random data and
//! random filters, orders, cursors and limits; and the write path keeps
//! every index equal to a rebuild from the stored entities.

use std::ops::ControlFlow;
use std::sync::Arc;

use ferry_core::{ManualTime, SeededRandom};
use ferry_store::{KeyRange, MemoryStore, Store, StoreExt};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::db::{Transaction, TriplitDb};
use crate::indexes::{self, Registry};
use crate::session::Session;
use crate::{TriplitError, keys};

const PATHS: [&str; 3] = ["a", "b", "m.x"];

pub(super) fn arb_scalar() -> impl Strategy<Value = Value> {
    // Few distinct values, so that ties, runs and duplicates are common;
    // long strings share a prefix beyond what the encoding keeps.
    let long = "p".repeat(40);
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..4).prop_map(|n| json!(n)),
        Just(json!(-0.0)),
        Just(json!(1.5)),
        "[ab😀Ａ]{0,2}".prop_map(Value::String),
        (0u8..3).prop_map(move |i| json!(format!("{long}{i}"))),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => arb_scalar(),
        1 => proptest::collection::vec(arb_scalar(), 0..2).prop_map(Value::Array),
        1 => arb_scalar().prop_map(|v| json!({"k": v})),
    ]
}

/// `None`: the attribute is missing.
fn arb_entity() -> impl Strategy<Value = Vec<Option<Value>>> {
    proptest::collection::vec(proptest::option::weighted(0.85, arb_value()), 3)
}

fn entity(id: &str, attrs: &[Option<Value>]) -> Map<String, Value> {
    let mut e = Map::new();
    e.insert("id".into(), json!(id));
    if let Some(v) = &attrs[0] {
        e.insert("a".into(), v.clone());
    }
    if let Some(v) = &attrs[1] {
        e.insert("b".into(), v.clone());
    }
    if let Some(v) = &attrs[2] {
        e.insert("m".into(), json!({"x": v}));
    }
    e
}

/// `c` entities of generated attributes, with ids whose storage order
/// differs from insertion order.
fn entities_of(data: &[Vec<Option<Value>>]) -> Vec<(String, Map<String, Value>)> {
    data.iter()
        .enumerate()
        .map(|(i, attrs)| {
            let id = format!("{}{}", (b'a' + (i * 7 % 5) as u8) as char, i);
            let e = entity(&id, attrs);
            (id, e)
        })
        .collect()
}

fn arb_stmt() -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        Just("="),
        Just("="),
        Just("<"),
        Just("<="),
        Just(">"),
        Just(">="),
        Just("!="),
        Just("in"),
        Just("isDefined"),
    ];
    (
        0..PATHS.len(),
        op,
        arb_scalar(),
        proptest::collection::vec(arb_scalar(), 0..3),
    )
        .prop_map(|(p, op, v, set)| match op {
            "in" => json!([PATHS[p], op, set]),
            "isDefined" => json!([PATHS[p], op, v.as_bool().unwrap_or(true)]),
            _ => json!([PATHS[p], op, v]),
        })
}

/// A statement, or an `or`/`and` group of statements (one level, up to
/// three members; an `or` group's branches may be `and` groups).
fn arb_filter() -> impl Strategy<Value = Value> {
    let group = |and: bool| {
        proptest::collection::vec(arb_stmt(), 1..4)
            .prop_map(move |fs| json!({"mod": if and { "and" } else { "or" }, "filters": fs}))
    };
    let or_of_ands = proptest::collection::vec(group(true), 1..3)
        .prop_map(|fs| json!({"mod": "or", "filters": fs}));
    prop_oneof![
        4 => arb_stmt(),
        2 => group(false),
        1 => group(true),
        1 => or_of_ands,
    ]
}

fn arb_query() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(arb_filter(), 0..3),
        proptest::collection::vec((0..PATHS.len(), any::<bool>()), 0..3),
        proptest::option::of(0u32..8),
        proptest::option::of((proptest::collection::vec(arb_scalar(), 3), any::<bool>())),
    )
        .prop_map(|(filters, order, limit, after)| {
            let mut q = json!({"collectionName": "c"});
            if !filters.is_empty() {
                q["where"] = json!(filters);
            }
            if !order.is_empty() {
                let o: Vec<Value> = order
                    .iter()
                    .map(|(p, desc)| json!([PATHS[*p], if *desc { "DESC" } else { "ASC" }]))
                    .collect();
                if let Some((cursor, inclusive)) = after {
                    q["after"] = json!([cursor[..o.len()].to_vec(), inclusive]);
                }
                q["order"] = json!(o);
            }
            if let Some(l) = limit {
                q["limit"] = json!(l);
            }
            q
        })
}

async fn seed(entities: &[(String, Map<String, Value>)], indexed: bool) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let puts: Vec<(Vec<u8>, Vec<u8>)> = entities
        .iter()
        .map(|(id, e)| (keys::entity("c", id), serde_json::to_vec(e).expect("json")))
        .collect();
    store
        .write(move |txn| {
            for (k, v) in &puts {
                txn.put(k, v)?;
            }
            if indexed {
                let all = Registry::from_paths(PATHS.iter().map(|p| ("c", *p)));
                indexes::ensure(txn, &all)?;
            }
            Ok::<_, TriplitError>(())
        })
        .await
        .expect("seed");
    store
}

async fn ids(store: &Arc<MemoryStore>, q: &Value) -> Result<Vec<String>, String> {
    let prepared = super::prepare(q, None, &Session::service()).map_err(|e| e.name)?;
    let rows = store
        .read(move |txn| super::fetch_rows(txn, &prepared).map(|(rows, _)| rows))
        .await
        .map_err(|e| e.name)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// A relation key: mostly one of three short strings, so that parents
/// and children share values often.
fn arb_key() -> impl Strategy<Value = Value> {
    prop_oneof![4 => "[ab]{0,1}".prop_map(Value::String), 1 => arb_value()]
}

/// A child whose `a` and `b` are relation keys.
fn arb_child() -> impl Strategy<Value = Vec<Option<Value>>> {
    (
        proptest::option::weighted(0.9, arb_key()),
        proptest::option::weighted(0.9, arb_key()),
        proptest::option::weighted(0.85, arb_value()),
    )
        .prop_map(|(a, b, m)| vec![a, b, m])
}

/// A query over `p` including `c` rows related by `a` (and `b`) to the
/// parent's `k` (and `k2`): the view-resolved subqueries of
/// `view_probe`, with a static filter, an order and a cardinality.
fn arb_include_query() -> impl Strategy<Value = Value> {
    let op = prop_oneof![Just("="), Just("="), Just("<"), Just(">="), Just("!=")];
    (
        op,
        any::<bool>(),
        proptest::option::of(arb_stmt()),
        proptest::collection::vec((0..PATHS.len(), any::<bool>()), 0..2),
        any::<bool>(),
        0..3u8,
    )
        .prop_map(|(op, second, extra, order, one, bound_once)| {
            let mut filters = vec![json!(["a", op, "$1.k"])];
            if second {
                filters.push(json!(["b", "=", "$1.k2"]));
            }
            filters.extend(extra);
            // Filters on the parent the view does not narrow by: the view
            // binds them once, with its first parent.
            match bound_once {
                1 => filters
                    .push(json!({"mod": "or", "filters": [["b", "=", "$1.k2"], ["b", "=", "a"]]})),
                2 => filters.push(json!(["b", "like", "$1.k2"])),
                _ => {}
            }
            let order: Vec<Value> = order
                .iter()
                .map(|(p, desc)| json!([PATHS[*p], if *desc { "DESC" } else { "ASC" }]))
                .collect();
            json!({"collectionName": "p", "include": {"kids": {
                "subquery": {"collectionName": "c", "where": filters, "order": order},
                "cardinality": if one { "one" } else { "many" }}}})
        })
}

/// `parent id: [included ids]` of a query over `p`.
async fn tree(store: &Arc<MemoryStore>, q: &Value) -> Result<Vec<(String, Vec<String>)>, String> {
    use super::output::Included;
    let prepared = super::prepare(q, None, &Session::service()).map_err(|e| e.name)?;
    let rows = store
        .read(move |txn| super::fetch_rows(txn, &prepared).map(|(rows, _)| rows))
        .await
        .map_err(|e| e.name)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let kids = match &r.includes[0].1 {
                Included::One(one) => one.iter().map(|k| k.id.clone()).collect(),
                Included::Many(many) => many.iter().map(|k| k.id.clone()).collect(),
            };
            (r.id, kids)
        })
        .collect())
}

/// `p` entities whose `k`/`k2` are mostly strings `c` rows hold too.
fn parents(n: usize, values: &[Value]) -> Vec<(String, Map<String, Value>)> {
    (0..n)
        .map(|i| {
            let id = format!("p{i}");
            let mut e = Map::new();
            e.insert("id".into(), json!(id));
            if let Some(v) = values.get(i) {
                e.insert("k".into(), v.clone());
            }
            if let Some(v) = values.get(n - 1 - i) {
                e.insert("k2".into(), v.clone());
            }
            (id, e)
        })
        .collect()
}

async fn seed_with_parents(
    entities: &[(String, Map<String, Value>)],
    parents: &[(String, Map<String, Value>)],
    indexed: bool,
) -> Arc<MemoryStore> {
    let store = seed(entities, indexed).await;
    let puts: Vec<(Vec<u8>, Vec<u8>)> = parents
        .iter()
        .map(|(id, e)| (keys::entity("p", id), serde_json::to_vec(e).expect("json")))
        .collect();
    store
        .write(move |txn| {
            for (k, v) in &puts {
                txn.put(k, v)?;
            }
            Ok::<_, TriplitError>(())
        })
        .await
        .expect("seed parents");
    store
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// Every index entry, and what a rebuild from the entities would hold.
async fn entries_and_rebuild(store: Arc<dyn Store>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    store
        .read(|txn| {
            let mut stored = Vec::new();
            txn.scan(
                &KeyRange::prefix(&keys::all_index_entries()),
                false,
                &mut |k, _| {
                    stored.push(k.to_vec());
                    ControlFlow::Continue(())
                },
            )?;
            let registry = Registry::load(txn)?;
            let mut expected = Vec::new();
            for e in crate::db::read::scan_collection(txn, "c")? {
                let id = e["id"].as_str().unwrap_or_default().to_string();
                let encs = indexes::encodings(&registry, "c", &e);
                for (p, enc) in registry.paths("c").iter().zip(encs) {
                    expected.push(keys::index_entry("c", p, &enc, &id));
                }
            }
            expected.sort();
            Ok::<_, TriplitError>((stored, expected))
        })
        .await
        .expect("read")
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, Vec<Option<Value>>),
    Update(u8, Vec<Option<Value>>),
    Delete(u8),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, arb_entity()).prop_map(|(i, e)| Op::Insert(i, e)),
        (0u8..6, arb_entity()).prop_map(|(i, e)| Op::Update(i, e)),
        (0u8..6).prop_map(Op::Delete),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn index_plans_return_the_full_scans_rows(
        data in proptest::collection::vec(arb_entity(), 0..24),
        queries in proptest::collection::vec(arb_query(), 1..6),
    ) {
        let entities = entities_of(&data);
        let rt = runtime();
        let (plain, indexed) = rt.block_on(async {
            (seed(&entities, false).await, seed(&entities, true).await)
        });
        for q in &queries {
            let (want, got) = rt.block_on(async { (ids(&plain, q).await, ids(&indexed, q).await) });
            prop_assert_eq!(&want, &got, "query {}", q);
            // An order + limit (whose rows the scan cuts down as it
            // collects) is the unlimited query's prefix.
            if let (Some(n), Some(_), Ok(want)) = (q.get("limit").and_then(Value::as_u64), q.get("order"), &want) {
                let mut unlimited = q.clone();
                unlimited.as_object_mut().expect("object").remove("limit");
                let all = rt.block_on(ids(&plain, &unlimited)).expect("unlimited");
                let prefix: Vec<String> = all.into_iter().take(n as usize).collect();
                prop_assert_eq!(want, &prefix, "query {}", q);
            }
        }
    }

    #[test]
    fn includes_probed_through_indexes_match_the_view(
        data in proptest::collection::vec(arb_child(), 0..24),
        keys_of_parents in proptest::collection::vec(arb_key(), 0..12),
        queries in proptest::collection::vec(arb_include_query(), 1..4),
    ) {
        let entities = entities_of(&data);
        let ps = parents(keys_of_parents.len(), &keys_of_parents);
        let rt = runtime();
        let (plain, indexed) = rt.block_on(async {
            (
                seed_with_parents(&entities, &ps, false).await,
                seed_with_parents(&entities, &ps, true).await,
            )
        });
        for q in &queries {
            let (want, got) = rt.block_on(async { (tree(&plain, q).await, tree(&indexed, q).await) });
            prop_assert_eq!(want, got, "query {}", q);
        }
    }

    #[test]
    fn writes_keep_indexes_equal_to_a_rebuild(
        batches in proptest::collection::vec(proptest::collection::vec(arb_op(), 1..5), 1..5),
        clear_at in proptest::option::of(0usize..5),
    ) {
        let rt = runtime();
        rt.block_on(async {
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
            let db = TriplitDb::open(
                store.clone(),
                Arc::new(ManualTime::new(1_700_000_000_000)),
                Arc::new(SeededRandom::new(1)),
            )
            .await
            .expect("open");
            let schema = crate::schema::Schema::from_json(&json!({"collections": {"c": {"schema": {
                "type": "record", "properties": {
                    "id": {"type": "string"},
                    "a": {"type": "json", "config": {"optional": true}},
                    "b": {"type": "json", "config": {"optional": true}},
                    "m": {"type": "json", "config": {"optional": true}}
                }}}}}))
            .expect("schema");
            db.set_schema(Some(schema)).await.expect("schema");
            // `json` attributes are not indexed by the schema; index them
            // the way a scalar schema would, to exercise every value type.
            store
                .write(|txn| {
                    indexes::ensure(txn, &Registry::from_paths(PATHS.iter().map(|p| ("c", *p))))
                })
                .await
                .expect("index");
            for (n, batch) in batches.iter().enumerate() {
                if clear_at == Some(n) {
                    db.clear(false).await.expect("clear");
                }
                let mut tx = Transaction::new();
                for op in batch {
                    match op {
                        Op::Insert(i, attrs) => {
                            let id = format!("e{i}");
                            tx.insert("c", id.clone(), entity(&id, attrs));
                        }
                        Op::Update(i, attrs) => {
                            let mut patch = entity("", attrs);
                            patch.shift_remove("id");
                            tx.update("c", format!("e{i}"), patch);
                        }
                        Op::Delete(i) => tx.delete("c", format!("e{i}")),
                    }
                }
                db.commit(&Session::service(), tx).await.expect("commit");
                let (stored, expected) = entries_and_rebuild(store.clone()).await;
                assert_eq!(stored, expected, "after batch {n}");
            }
        });
    }
}

/// More distinct parents than a view is probed for: the first ones are
/// answered from the index, the rest from the view computed then, and
/// every parent gets its own rows in the view's order.
#[test]
fn a_view_probed_for_many_parents_is_computed_once_and_agrees() {
    let n = super::view_probe::MAX_PROBES + 10;
    let entities: Vec<(String, Map<String, Value>)> = (0..3 * n)
        .map(|i| {
            let id = format!("c{i:03}");
            let e = json!({"id": id, "a": format!("k{}", i % n), "b": (i * 7 % 5) as i64});
            (id, e.as_object().cloned().expect("object"))
        })
        .collect();
    let keys: Vec<Value> = (0..n).map(|i| json!(format!("k{i}"))).collect();
    let ps = parents(n, &keys);
    let q = json!({"collectionName": "p", "include": {"kids": {"subquery":
        {"collectionName": "c", "where": [["a", "=", "$1.k"]], "order": [["b", "DESC"]]},
        "cardinality": "many"}}});
    let rt = runtime();
    let (want, got) = rt.block_on(async {
        let plain = seed_with_parents(&entities, &ps, false).await;
        let indexed = seed_with_parents(&entities, &ps, true).await;
        (tree(&plain, &q).await, tree(&indexed, &q).await)
    });
    let want = want.expect("plain");
    assert_eq!(want.len(), n);
    assert!(want.iter().all(|(_, kids)| kids.len() == 3), "{want:?}");
    assert_eq!(got.expect("indexed"), want);
}

/// The registry of `store` once it names `want` for `c` (indexes are
/// built in the background after the query that wants them).
async fn registry_once(store: &Arc<dyn Store>, c: &str, want: &[&str]) -> Registry {
    for _ in 0..500 {
        let r = store.read(|txn| Registry::load(txn)).await.expect("read");
        if r.paths(c) == want {
            return r;
        }
        tokio::task::yield_now().await;
    }
    let r = store.read(|txn| Registry::load(txn)).await.expect("read");
    panic!("indexes of {c}: {:?}, wanted {want:?}", r.paths(c));
}

async fn fetch_ids(db: &TriplitDb, q: Value) -> Vec<String> {
    let prepared =
        super::prepare(&q, db.schema().as_deref(), &Session::service()).expect("prepare");
    let rows = db.fetch(prepared).await.expect("fetch");
    rows.into_iter().map(|r| r.id).collect()
}

/// No index exists until a query's scan would have used one: then the
/// database builds it (entries equal to a rebuild), later queries give the
/// same rows through it, writes maintain it, and a schema change drops the
/// indexes of attributes it removes. Queries an index cannot serve, and
/// attributes that are not indexable, build nothing.
#[test]
fn indexes_are_built_when_a_query_first_wants_them() {
    let rt = runtime();
    rt.block_on(async {
        let schema = json!({"collections": {"c": {"schema": {
        "type": "record", "properties": {
            "id": {"type": "string"},
            "n": {"type": "number"},
            "s": {"type": "string", "config": {"optional": true}},
            "j": {"type": "json", "config": {"optional": true}},
            "t": {"type": "string", "config": {"optional": true}}
        }}}}});
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let db = TriplitDb::open(
            store.clone(),
            Arc::new(ManualTime::new(1_700_000_000_000)),
            Arc::new(SeededRandom::new(1)),
        )
        .await
        .expect("open");
        db.set_schema(Some(
            crate::schema::Schema::from_json(&schema).expect("schema"),
        ))
        .await
        .expect("set schema");
        let mut tx = Transaction::new();
        for i in 0..5 {
            let id = format!("e{i}");
            let e = json!({"id": id, "n": 4 - i, "s": format!("s{}", i % 2), "j": i, "t": "x"});
            tx.insert("c", id, e.as_object().cloned().expect("object"));
        }
        db.commit(&Session::service(), tx).await.expect("commit");
        let registry = store.read(|txn| Registry::load(txn)).await.expect("read");
        assert!(
            registry.is_empty(),
            "a schema builds no index: {registry:?}"
        );

        // Not servable by an index (a `like` on a non-string can fail, no
        // filter, a json attribute): nothing is built.
        let like = json!({"collectionName": "c", "where": [["t", "like", 1]]});
        let prepared = super::prepare(&like, db.schema().as_deref(), &Session::service());
        if let Ok(p) = prepared {
            let _ = db.fetch(p).await;
        }
        fetch_ids(&db, json!({"collectionName": "c"})).await;
        fetch_ids(
            &db,
            json!({"collectionName": "c", "where": [["j", "=", 1]]}),
        )
        .await;

        let order = json!({"collectionName": "c", "order": [["n", "ASC"]], "limit": 2});
        assert_eq!(fetch_ids(&db, order.clone()).await, ["e4", "e3"]);
        registry_once(&store, "c", &["n"]).await;
        let (stored, expected) = entries_and_rebuild(store.clone()).await;
        assert_eq!(stored.len(), 5);
        assert_eq!(stored, expected);
        assert_eq!(fetch_ids(&db, order).await, ["e4", "e3"]);

        let eq = json!({"collectionName": "c", "where": [["s", "=", "s1"]]});
        assert_eq!(fetch_ids(&db, eq.clone()).await, ["e1", "e3"]);
        registry_once(&store, "c", &["n", "s"]).await;
        assert_eq!(fetch_ids(&db, eq.clone()).await, ["e1", "e3"]);

        let mut tx = Transaction::new();
        let mut patch = Map::new();
        patch.insert("s".into(), json!("s1"));
        tx.update("c", "e0".to_string(), patch);
        tx.delete("c", "e3".to_string());
        db.commit(&Session::service(), tx).await.expect("commit");
        let (stored, expected) = entries_and_rebuild(store.clone()).await;
        assert_eq!(stored.len(), 8);
        assert_eq!(stored, expected);
        assert_eq!(fetch_ids(&db, eq).await, ["e0", "e1"]);

        // A schema change drops the indexes of the attributes it removes.
        let next = crate::schema::Schema::from_json(&json!({"collections": {"c": {"schema": {
        "type": "record", "properties": {
            "id": {"type": "string"},
            "n": {"type": "number"},
            "j": {"type": "json", "config": {"optional": true}},
            "t": {"type": "string", "config": {"optional": true}}
        }}}}}))
        .expect("schema");
        db.set_schema(Some(next)).await.expect("set schema");
        let registry = store.read(|txn| Registry::load(txn)).await.expect("read");
        assert_eq!(registry.paths("c"), ["n"]);
        let (stored, expected) = entries_and_rebuild(store.clone()).await;
        assert_eq!(stored.len(), 4);
        assert_eq!(stored, expected);
        // ... and an attribute asked for before the change can be again.
        fetch_ids(
            &db,
            json!({"collectionName": "c", "where": [["t", "=", "x"]]}),
        )
        .await;
        registry_once(&store, "c", &["n", "t"]).await;
    });
}

/// A build reads its collection a page at a time: over more than two
/// pages, every entity gets exactly its entries.
#[test]
fn building_an_index_covers_every_page() {
    let rt = runtime();
    rt.block_on(async {
        let n = 2 * indexes::BUILD_PAGE + 5;
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        store
            .write(move |txn| {
                for i in 0..n {
                    let id = format!("e{i:05}");
                    let e = json!({"id": id, "a": (i % 7) as i64, "b": format!("s{}", i % 3)});
                    txn.put(&keys::entity("c", &id), e.to_string().as_bytes())?;
                }
                indexes::ensure(txn, &Registry::from_paths([("c", "a"), ("c", "b")]))
            })
            .await
            .expect("build");
        let (stored, expected) = entries_and_rebuild(store).await;
        assert_eq!(stored.len(), 2 * n);
        assert_eq!(stored, expected);
    });
}
