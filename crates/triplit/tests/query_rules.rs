//! End-to-end rules of the query engine over a `MemoryStore`: the sync
//! closure (witnesses at every depth, relational order), permissions that
//! upstream's planner would drop, point lookups agreeing with scans, and
//! the error names of malformed queries.

use std::sync::Arc;

use ferry_store::{MemoryStore, StoreExt};
use ferry_triplit::query::{self, Included, PreparedQuery, QueryOutput};
use ferry_triplit::schema::Schema;
use ferry_triplit::session::Session;
use ferry_triplit::{TriplitError, keys};
use proptest::prelude::*;
use serde_json::{Value, json};

fn schema() -> Schema {
    Schema::from_json(&json!({
        "roles": {"user": {"match": {"sub": "$userId"}}},
        "collections": {
            "users": {"schema": {"type": "record", "properties": {
                "id": {"type": "string"}, "name": {"type": "string"}}}},
            "posts": {"schema": {"type": "record", "properties": {
                "id": {"type": "string"}, "authorId": {"type": "string"},
                "score": {"type": "number"}, "tags": {"type": "set", "items": {"type": "string"}}}},
                "relationships": {
                    "author": {"query": {"collectionName": "users", "where": [["id", "=", "$authorId"]]}, "cardinality": "one"},
                    "comments": {"query": {"collectionName": "comments", "where": [["postId", "=", "$id"]]}, "cardinality": "many"}}},
            "comments": {"schema": {"type": "record", "properties": {
                "id": {"type": "string"}, "postId": {"type": "string"}, "authorId": {"type": "string"}}},
                "relationships": {
                    "author": {"query": {"collectionName": "users", "where": [["id", "=", "$authorId"]]}, "cardinality": "one"}},
                "permissions": {"user": {"read": {"filter": [{"mod": "or", "filters": [
                    ["authorId", "=", "$role.userId"], ["author.name", "=", "public"]]}]}}}}
        }
    }))
    .expect("valid schema")
}

fn data() -> Vec<(&'static str, Value)> {
    vec![
        ("users", json!({"id": "u1", "name": "Ada"})),
        ("users", json!({"id": "u2", "name": "public"})),
        (
            "posts",
            json!({"id": "p1", "authorId": "u1", "score": 3, "tags": {"a": true}}),
        ),
        (
            "posts",
            json!({"id": "p2", "authorId": "u2", "score": 1, "tags": {}}),
        ),
        (
            "posts",
            json!({"id": "p3", "authorId": "gone", "score": 2, "tags": {"a": true}}),
        ),
        (
            "comments",
            json!({"id": "c1", "postId": "p1", "authorId": "u2"}),
        ),
        (
            "comments",
            json!({"id": "c2", "postId": "p1", "authorId": "u1"}),
        ),
        (
            "comments",
            json!({"id": "c3", "postId": "p2", "authorId": "u3"}),
        ),
    ]
}

async fn store(rows: Vec<(&'static str, Value)>) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    store
        .write(move |txn| {
            for (c, e) in &rows {
                let id = e["id"].as_str().unwrap_or_default();
                txn.put(&keys::entity(c, id), e.to_string().as_bytes())?;
            }
            Ok::<_, ferry_store::StoreError>(())
        })
        .await
        .expect("seed");
    store
}

fn user(sub: &str) -> Session {
    Session {
        claims: json!({"sub": sub}).as_object().cloned().unwrap_or_default(),
        ..Session::default()
    }
}

async fn run(
    store: &MemoryStore,
    q: Value,
    s: &Session,
) -> Result<(PreparedQuery, QueryOutput), TriplitError> {
    let prepared = query::prepare(&q, Some(&schema()), s)?;
    let p = prepared.clone();
    let out = store.read(move |txn| query::execute(txn, &p)).await?;
    Ok((prepared, out))
}

fn ids(out: &QueryOutput) -> Vec<&str> {
    out.rows.iter().map(|r| r.id.as_str()).collect()
}

fn closure(out: &QueryOutput) -> Vec<String> {
    let mut c: Vec<String> = out
        .closure
        .iter()
        .map(|(c, id, _)| format!("{c}/{id}"))
        .collect();
    c.sort();
    c
}

#[tokio::test]
async fn closure_holds_rows_includes_witnesses_and_order_entities() {
    let st = store(data()).await;
    let q = json!({"collectionName": "posts", "where": [["author.name", "=", "Ada"]]});
    let (_, out) = run(&st, q, &Session::service()).await.unwrap();
    assert_eq!(ids(&out), ["p1"]);
    assert_eq!(closure(&out), ["posts/p1", "users/u1"]);
    let q = json!({"collectionName": "posts", "order": [["author.name", "DESC"]], "limit": 2});
    let (_, out) = run(&st, q, &Session::service()).await.unwrap();
    assert_eq!(ids(&out), ["p2", "p1"]);
    assert_eq!(
        closure(&out),
        ["posts/p1", "posts/p2", "users/u1", "users/u2"]
    );
}

#[tokio::test]
async fn witnesses_are_shipped_inside_includes_too() {
    let st = store(data()).await;
    let q = json!({"collectionName": "posts", "where": [["id", "=", "p1"]],
        "include": {"comments": {"_extends": "comments", "where": [["author.name", "=", "public"]]}}});
    let (_, out) = run(&st, q, &Session::service()).await.unwrap();
    let Included::Many(cs) = &out.rows[0].includes[0].1 else {
        panic!("many")
    };
    // Upstream's include planner drops an `exists` next to a `$1` filter,
    // so c2 is included although its author is not "public".
    assert_eq!(
        cs.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c1", "c2"]
    );
    // u2 witnesses the include's `exists` for c1; upstream would not ship it.
    assert_eq!(
        closure(&out),
        ["comments/c1", "comments/c2", "posts/p1", "users/u2"]
    );
}

#[tokio::test]
async fn permission_filters_with_subqueries_apply_inside_includes() {
    let st = store(data()).await;
    let q = json!({"collectionName": "posts", "include": {"comments": null}});
    let (prepared, out) = run(&st, q, &user("u1")).await.unwrap();
    let visible: Vec<Vec<&str>> = out
        .rows
        .iter()
        .map(|r| match &r.includes[0].1 {
            Included::Many(cs) => cs.iter().map(|c| c.id.as_str()).collect(),
            Included::One(_) => Vec::new(),
        })
        .collect();
    // c3 (by u3, not public) stays hidden; upstream's include planner
    // would drop the permission's `exists` and return it.
    assert_eq!(visible, vec![vec!["c1", "c2"], vec![], vec![]]);
    assert!(!closure(&out).contains(&"comments/c3".to_string()));
    let refs: Vec<String> = prepared.referenced_collections().into_iter().collect();
    assert_eq!(refs, ["comments", "posts", "users"]);
}

#[tokio::test]
async fn http_body_nests_includes_and_applies_select() {
    let st = store(data()).await;
    let q = json!({"collectionName": "posts", "select": ["score", "tags"], "where": [["id", "in", ["p3", "p1"]]],
        "include": {"author": {"_extends": "author", "select": ["name"]}}});
    let (prepared, out) = run(&st, q, &Session::service()).await.unwrap();
    let body = query::serialize_for_http(&out, &prepared, Some(&schema())).unwrap();
    assert_eq!(
        body,
        json!([{"score": 2, "tags": ["a"], "author": null}, {"score": 3, "tags": ["a"], "author": {"name": "Ada"}}])
    );
}

#[tokio::test]
async fn malformed_queries_get_upstream_error_names() {
    let st = store(data()).await;
    let cases = [
        (json!({"where": []}), "InvalidCollectionNameError"),
        (
            json!({"collectionName": "nope"}),
            "InvalidCollectionNameError",
        ),
        (
            json!({"collectionName": "posts", "where": [["score", "like", "x"]]}),
            "InvalidFilterError",
        ),
        (
            json!({"collectionName": "posts", "where": [["score", "has", 1]]}),
            "InvalidFilterError",
        ),
        (
            json!({"collectionName": "posts", "order": [["tags", "ASC"]]}),
            "InvalidOrderClauseError",
        ),
        (
            json!({"collectionName": "posts", "select": ["author"]}),
            "InvalidSelectClauseError",
        ),
        (
            json!({"collectionName": "posts", "include": {"nope": null}}),
            "RelationDoesNotExistError",
        ),
        (
            json!({"collectionName": "posts", "include": {"score": null}}),
            "IncludedNonRelationError",
        ),
        (
            json!({"collectionName": "posts", "limit": -2}),
            "InvalidQueryLimitError",
        ),
        (
            json!({"collectionName": "posts", "after": [[1], true]}),
            "InvalidQueryAfterError",
        ),
        (
            json!({"collectionName": "posts", "where": 3}),
            "InvalidQueryWhereError",
        ),
    ];
    for (q, name) in cases {
        let err = run(&st, q.clone(), &Session::service()).await.unwrap_err();
        assert_eq!(err.name, name, "{q}");
    }
}

fn lookup_case() -> impl Strategy<Value = (Vec<(String, i64)>, Vec<String>, bool)> {
    let ids = proptest::collection::btree_map("[a-e]{1,2}", -3i64..3, 0..12)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>());
    let wanted = proptest::collection::vec("[a-e]{1,2}", 0..6);
    (ids, wanted, any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// A point-lookup plan (`id in [...]`) returns the same rows as the
    /// same filter evaluated over a full scan; with an `order` they also
    /// come in the same order.
    #[test]
    fn point_lookups_agree_with_scans((rows, wanted, ordered) in lookup_case()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let data: Vec<(&'static str, Value)> = rows
            .iter()
            .map(|(id, n)| ("posts", json!({"id": id, "authorId": "u1", "score": n, "tags": {}})))
            .collect();
        let st = rt.block_on(store(data));
        let order = if ordered { json!([["score", "DESC"], ["id", "ASC"]]) } else { Value::Null };
        let lookup = json!({"collectionName": "posts", "where": [["id", "in", wanted]], "order": order});
        // Inside an `or` the id statement is not used to pick candidates.
        let scan = json!({"collectionName": "posts", "where": [{"mod": "or", "filters": [["id", "in", wanted], false]}], "order": order});
        let (_, a) = rt.block_on(run(&st, lookup, &Session::service())).unwrap();
        let (_, b) = rt.block_on(run(&st, scan, &Session::service())).unwrap();
        let (mut x, mut y) = (ids(&a), ids(&b));
        if ordered {
            prop_assert_eq!(&x, &y);
        } else {
            // Lookups follow the value list, scans the id order.
            let expected: Vec<&str> = wanted.iter().map(String::as_str)
                .filter(|w| rows.iter().any(|(id, _)| id == w))
                .fold(Vec::new(), |mut acc, w| { if !acc.contains(&w) { acc.push(w) } acc });
            prop_assert_eq!(&x, &expected);
        }
        x.sort();
        y.sort();
        prop_assert_eq!(x, y);
    }
}

#[test]
fn prepared_queries_can_cross_threads() {
    fn assert_shareable<T: Send + Sync + Clone + 'static>() {}
    assert_shareable::<PreparedQuery>();
    assert_shareable::<QueryOutput>();
}

fn nested_case() -> impl Strategy<Value = (Vec<(u8, u8)>, Vec<u8>)> {
    let comments = proptest::collection::vec((0u8..6, 0u8..4), 0..20);
    let posts = proptest::collection::vec(0u8..6, 0..8);
    (comments, posts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Nested loops served by the in-memory equality index return what a
    /// plain scan returns (the same filter hidden in an `or` is never used
    /// as an index probe).
    #[test]
    fn indexed_nested_loops_agree_with_scans((comments, posts) in nested_case()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let mut data: Vec<(&'static str, Value)> = vec![("users", json!({"id": "u1", "name": "Ada"}))];
        for (i, p) in posts.iter().enumerate() {
            data.push(("posts", json!({"id": format!("p{i:02}"), "authorId": "u1", "score": p, "tags": {}})));
        }
        for (i, (post, author)) in comments.iter().enumerate() {
            data.push(("comments", json!({"id": format!("c{i:02}"), "postId": format!("p{post:02}"), "authorId": format!("u{author}")})));
        }
        let st = rt.block_on(store(data));
        // The include has its own include, so it runs as a nested loop
        // (once per post) rather than from a view.
        let with = |hide: bool| {
            let stmt = json!(["postId", "=", "$1.id"]);
            let f = if hide { json!({"mod": "or", "filters": [stmt, false]}) } else { stmt };
            json!({"collectionName": "posts", "include": {"cs": {"subquery": {"collectionName": "comments",
                "where": [f], "include": {"author": {"subquery": {"collectionName": "users",
                    "where": [["id", "=", "$1.authorId"]]}, "cardinality": "one"}}},
                "cardinality": "many"}}})
        };
        let (_, a) = rt.block_on(run(&st, with(false), &Session::service())).unwrap();
        let (_, b) = rt.block_on(run(&st, with(true), &Session::service())).unwrap();
        prop_assert_eq!(closure(&a), closure(&b));
        prop_assert_eq!(a.rows, b.rows);
    }
}
