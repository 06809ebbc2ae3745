//! Unit tests of preparation and planning: each rewrite rule on its own.

use serde_json::{Value, json};

use super::ast::{Filter, Node};
use super::compile::Step;
use super::operand::Operand;
use super::{plan, prepare_node, system_vars};
use crate::permissions::{Operation, Role};
use crate::schema::Schema;
use crate::session::Session;

fn schema() -> Schema {
    Schema::from_json(&json!({"collections": {
        "users": {"schema": {"type": "record", "properties": {
            "id": {"type": "string"}, "name": {"type": "string"},
            "tags": {"type": "set", "items": {"type": "string"}}}},
            "relationships": {"posts": {"query": {"collectionName": "posts",
                "where": [["authorId", "=", "$id"]]}, "cardinality": "many"}}},
        "posts": {"schema": {"type": "record", "properties": {
            "id": {"type": "string"}, "authorId": {"type": "string"}, "score": {"type": "number"},
            "created": {"type": "date"}}},
            "relationships": {"author": {"query": {"collectionName": "users",
                "where": [["id", "=", "$authorId"]]}, "cardinality": "one"}},
            "permissions": {
                "a": {"read": {"filter": [["score", ">", 1]]}, "insert": {"filter": []}},
                "b": {"read": {"filter": [["authorId", "=", "$role.uid"]]}}}}
    }}))
    .expect("valid")
}

fn prep(q: Value) -> Node {
    prep_as(q, &[], None)
}

fn prep_as(q: Value, roles: &[Role], apply: Option<Operation>) -> Node {
    let mut vars = system_vars(&Session {
        claims: json!({"sub": "u1", "list": ["a", "b"]})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..Session::default()
    });
    if let Some(v) = q.get("vars") {
        vars.insert("$query".into(), v.clone());
    }
    prepare_node(&q, Some(&schema()), roles, vars, apply).expect("prepares")
}

fn stmt(f: &Filter) -> (&str, &str, &Operand) {
    match f {
        Filter::Stmt(s) => (s.path.as_str(), s.op.as_str(), &s.value),
        other => panic!("not a statement: {other:?}"),
    }
}

fn exists(f: &Filter) -> &Node {
    match f {
        Filter::Exists(e) => &e.query,
        other => panic!("not an exists: {other:?}"),
    }
}

#[test]
fn relation_paths_become_exists_over_the_relation() {
    let n = prep(json!({"collectionName": "posts", "where": [["author.name", "=", "Ada"]]}));
    let sub = exists(&n.filters()[0]);
    assert_eq!(sub.collection, "users");
    assert_eq!(
        stmt(&sub.filters()[0]),
        ("id", "=", &Operand::Json(json!("$1.authorId")))
    );
    assert_eq!(
        stmt(&sub.filters()[1]),
        ("name", "=", &Operand::Json(json!("Ada")))
    );
    let n = prep(
        json!({"collectionName": "users", "where": [{"exists": {"_extends": "posts.author", "where": [["name", "=", "x"]]}}]}),
    );
    let inner = exists(&exists(&n.filters()[0]).filters()[1]);
    assert_eq!(inner.collection, "users");
}

#[test]
fn relational_values_flip_the_operator() {
    let n = prep(
        json!({"collectionName": "users", "where": [{"exists": {"collectionName": "posts",
        "where": [["score", "<", "$1.posts.score"]]}}]}),
    );
    let sub = exists(&n.filters()[0]);
    let flipped = exists(&sub.filters()[0]);
    assert_eq!(flipped.collection, "posts");
    assert_eq!(
        stmt(&flipped.filters()[1]),
        ("score", ">", &Operand::Json(json!("$1.score")))
    );
}

#[test]
fn variables_sets_and_prefixes() {
    let n = prep(json!({"collectionName": "users", "where": [
        ["tags", "has", "a"], ["name", "=", "$token.sub"], ["name", "=", "$query.nope"],
        ["name", "in", "$session.list"], ["id", "in", ["a", "a", "b"]]], "vars": {"x": 1}}));
    let f = n.filters();
    assert_eq!(stmt(&f[0]).1, "SET_has");
    assert_eq!(stmt(&f[1]).2, &Operand::Json(json!("u1")));
    assert_eq!(stmt(&f[2]).2, &Operand::Undefined);
    assert_eq!(
        stmt(&f[3]).2,
        &Operand::set_from(vec![json!("a"), json!("b")])
    );
    assert_eq!(
        stmt(&f[4]).2,
        &Operand::set_from(vec![json!("a"), json!("b")])
    );
    let n = prep(
        json!({"collectionName": "users", "include": {"p": {"subquery":
        {"collectionName": "posts", "where": [["authorId", "=", "$id"]]}, "cardinality": "many"}}}),
    );
    assert_eq!(
        stmt(&n.include[0].1.query.filters()[0]).2,
        &Operand::Json(json!("$1.id"))
    );
}

#[test]
fn permissions_or_across_roles_and_deny_without_a_role() {
    let role = |k: &str, v: Value| Role {
        key: k.into(),
        vars: v.as_object().cloned().unwrap_or_default(),
    };
    let roles = [role("a", json!({})), role("b", json!({"uid": "u7"}))];
    let n = prep_as(
        json!({"collectionName": "posts"}),
        &roles,
        Some(Operation::Read),
    );
    let Filter::Group(g) = &n.filters()[0] else {
        panic!("or group")
    };
    assert!(!g.and);
    assert_eq!(stmt(&g.filters[1]).2, &Operand::Json(json!("u7")));
    let n = prep_as(
        json!({"collectionName": "posts"}),
        &[],
        Some(Operation::Read),
    );
    assert_eq!(n.filters(), [Filter::Bool(false)]);
    let n = prep_as(
        json!({"collectionName": "posts"}),
        &roles[..1],
        Some(Operation::Insert),
    );
    assert_eq!(n.filters(), [Filter::Bool(false)]);
    let n = prep_as(
        json!({"collectionName": "posts"}),
        &roles,
        Some(Operation::PostUpdate),
    );
    assert!(n.where_.is_none());
    let n = prep_as(
        json!({"collectionName": "users"}),
        &roles,
        Some(Operation::Read),
    );
    assert!(n.where_.is_none());
}

#[test]
fn includes_merge_and_order_limit_after_prepare() {
    let n = prep(
        json!({"collectionName": "users", "include": {"top": {"_extends": "posts",
        "where": [["score", ">", 1]], "limit": 2, "order": [["score", "DESC"]]}}}),
    );
    let sub = &n.include[0].1;
    assert!(!sub.one);
    assert_eq!(sub.query.filters().len(), 2);
    assert_eq!(sub.query.limit, Some(2.0));
    let n = prep(json!({"collectionName": "posts", "order": [["author.name", "ASC"]], "limit": 0}));
    assert!(n.order.as_ref().is_some_and(|o| o[0].sub.is_some()));
    assert_eq!(n.limit, Some(0.0));
    let n = prep(
        json!({"collectionName": "posts", "order": [["created", "ASC"]], "after": [["2024-01-02"], true]}),
    );
    assert_eq!(
        n.after,
        Some((vec![json!("2024-01-02T00:00:00.000Z")], true))
    );
}

fn steps(q: Value, closure: bool) -> Vec<Step> {
    plan::compile(&prep(q), closure, false)
        .expect("compiles")
        .steps
}

#[test]
fn planner_inverts_drops_and_caches_like_upstream() {
    // One `$1` statement: inverted into point lookups of the view's ids.
    let s = steps(
        json!({"collectionName": "users", "where": [{"exists": {"_extends": "posts"}}]}),
        false,
    );
    assert!(
        matches!(&s[1], Step::IdLookup(c, Operand::Json(Value::String(v))) if c == "users" && v == "$view_0.authorId")
    );
    // No `$1` statement: the filter disappears.
    let s = steps(
        json!({"collectionName": "users", "where": [{"exists": {"collectionName": "posts", "where": [["score", ">", 1]]}}]}),
        false,
    );
    assert!(matches!(&s[..], [Step::Scan(_), Step::Collect]));
    // Two: resolved from a sorted view.
    let s = steps(
        json!({"collectionName": "posts", "where": [{"exists": {"collectionName": "posts",
        "where": [["id", "=", "$1.id"], ["score", ">", "$1.score"]]}}]}),
        false,
    );
    assert!(
        matches!(&s[1], Step::IterSubqueryFilter(sub, None) if matches!(sub[1], Step::ResolveFromView(..)))
    );
    // An `exists` that stays a subquery inside a group cannot be compiled.
    let q = json!({"collectionName": "posts", "where": [{"mod": "or", "filters": [["score", "=", 1],
        {"exists": {"collectionName": "posts", "where": [["id", "=", "$1.id"], ["score", ">", "$1.score"]]}}]}]});
    assert_eq!(
        plan::compile(&prep(q), false, false).unwrap_err().name,
        "TriplitError"
    );
}

#[test]
fn closure_plans_add_witnesses_after_the_includes() {
    let s = steps(
        json!({"collectionName": "posts", "where": [["author.name", "=", "x"]], "include": {"author": null}}),
        true,
    );
    let aliases: Vec<String> = s
        .iter()
        .filter_map(|s| match s {
            Step::Subquery { alias, .. } => Some(alias.name()),
            _ => None,
        })
        .collect();
    assert_eq!(aliases, ["author", "_exists-0"]);
}

#[test]
fn a_query_without_exists_shares_one_plan_for_rows_and_closure() {
    let service = Session::service();
    let plain = super::prepare(
        &json!({"collectionName": "posts", "where": [["n", ">", 1]], "order": [["n", "ASC"]]}),
        None,
        &service,
    )
    .expect("prepare");
    assert!(std::sync::Arc::ptr_eq(&plain.plan, &plain.closure_plan));
    let with_exists = super::prepare(
        &json!({"collectionName": "posts", "where": [{"exists": {"collectionName": "users", "where": [["id", "=", "$1.authorId"]]}}]}),
        None,
        &service,
    )
    .expect("prepare");
    assert!(!std::sync::Arc::ptr_eq(
        &with_exists.plan,
        &with_exists.closure_plan
    ));
}
