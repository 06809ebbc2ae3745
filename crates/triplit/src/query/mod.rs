//! The Triplit query language, with the results of `@triplit/db` 1.1.10's
//! engine (which the client runs over its cache).
//!
//! [`prepare`] validates a `CollectionQuery` against the schema and the
//! session (relation paths and relational values become `exists`
//! subqueries, includes are loaded, static variables substituted, read
//! permissions ANDed in); [`execute`] runs it on a store snapshot and
//! returns the result rows and the sync closure;
//! [`serialize_for_http`] gives the `/fetch` body.
//!
//! Module map: `prepare`/`prepare_where` (preparation), `simplify` and
//! `hash` (upstream's simplification and query hash), `plan`/`compile`
//! (upstream's planner, reproduced because results depend on it),
//! `engine`/`view_search`/`row` (execution), `filter`/`compare`/`like`/
//! `operand` (evaluation), `bind` (run-time variables), `order` (sorting
//! and cursors), `output` (rows, closure, HTTP).

mod ast;
mod bind;
mod compare;
mod compile;
mod engine;
mod errors;
mod filter;
pub(crate) mod hash;
mod incremental;
mod index;
#[cfg(test)]
mod index_props;
mod index_scan;
mod like;
mod operand;
mod order;
mod output;
mod plan;
mod prepare;
#[cfg(test)]
mod prepare_tests;
mod prepare_where;
mod row;
mod schema_path;
mod simplify;
mod sort_key;
mod source;
mod variables;
mod view_probe;
mod view_search;
mod write_check;

use std::collections::BTreeSet;
use std::sync::Arc;

use ferry_store::ReadTxn;
use serde_json::{Map, Value};

pub use compare::{compare_js_str, compare_tuple, compare_value};
pub(crate) use filter::value_at;
pub use incremental::{Incremental, Rank, RankId};
pub(crate) use operand::same_value_zero;
pub use output::{ClosureEntity, Included, QueryOutput, ResultRow};

use crate::TriplitError;
use crate::permissions::{Operation, Role, session_roles, session_vars};
use crate::schema::Schema;
use crate::session::Session;

/// A query prepared for one session: validated, with the session's read
/// permissions applied (unless it is the service token) and compiled.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct PreparedQuery {
    node: Arc<ast::Node>,
    plan: Arc<compile::Plan>,
    closure_plan: Arc<compile::Plan>,
    incremental: Option<Arc<Incremental>>,
}

impl PreparedQuery {
    /// The root collection.
    pub fn collection(&self) -> &str {
        &self.node.collection
    }

    /// Every collection whose data can change the result or the closure:
    /// the root, includes, `exists` subqueries (permission ones too) and
    /// relational order subqueries, at any depth.
    pub fn referenced_collections(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        collect_collections(&self.node, &mut out);
        out
    }

    /// Upstream's `hashPreparedQuery` of the prepared query.
    pub fn hash(&self) -> u32 {
        hash::hash_node(&self.node)
    }

    /// Whether `other` is the same prepared query (same tree, same bound
    /// permissions and variables), so their results are interchangeable.
    pub fn same_as(&self, other: &PreparedQuery) -> bool {
        Arc::ptr_eq(&self.node, &other.node) || *self.node == *other.node
    }

    /// How to maintain the result entity by entity, when the query's
    /// shape allows it (see [`Incremental`]).
    pub fn incremental(&self) -> Option<&Arc<Incremental>> {
        self.incremental.as_ref()
    }

    /// The `select` paths `/fetch` projects onto.
    pub fn select(&self) -> Option<&[String]> {
        self.node.select.as_deref()
    }
}

fn collect_collections(n: &ast::Node, out: &mut BTreeSet<String>) {
    out.insert(n.collection.clone());
    for (_, inc) in &n.include {
        collect_collections(&inc.query, out);
    }
    for e in ast::flat_exists(n.filters()) {
        collect_collections(&e.query, out);
    }
    for o in n.order.iter().flatten() {
        if let Some(sub) = &o.sub {
            collect_collections(sub, out);
        }
    }
}

/// The static variables of a session: `$global` (empty on a server) and
/// `$session` (the normalized claims).
fn system_vars(session: &Session) -> prepare::Vars {
    let mut vars = Map::new();
    vars.insert("$global".into(), Value::Object(Map::new()));
    vars.insert(
        "$session".into(),
        Value::Object(session_vars(&session.claims)),
    );
    vars
}

/// Prepares `query` (the JSON of a `CollectionQuery`) for `session`, with
/// upstream's validation errors (`InvalidCollectionNameError`,
/// `InvalidFilterError`, `InvalidOrderClauseError`, …).
pub fn prepare(
    query: &Value,
    schema: Option<&Schema>,
    session: &Session,
) -> Result<PreparedQuery, TriplitError> {
    let roles = session_roles(schema, session);
    let apply = (!session.is_service).then_some(Operation::Read);
    let mut vars = system_vars(session);
    if let Some(qv) =
        crate::types::js::js_get(query, "vars").filter(|v| crate::types::js::js_truthy(v))
    {
        vars.insert("$query".into(), qv.clone());
    }
    let node = prepare_node(query, schema, &roles, vars, apply)?;
    let plan = Arc::new(plan::compile(&node, false, false)?);
    let closure = plan::compile(&node, true, false)?;
    let incremental = Incremental::from_plan(&closure).map(Arc::new);
    // Without an `exists` the closure adds no witnesses: both plans are
    // the same, and a prepared query lives as long as its subscriptions.
    let closure_plan = if closure == *plan {
        plan.clone()
    } else {
        Arc::new(closure)
    };
    Ok(PreparedQuery {
        node: Arc::new(node),
        plan,
        closure_plan,
        incremental,
    })
}

/// Preparation proper, shared with the write-permission check.
fn prepare_node(
    query: &Value,
    schema: Option<&Schema>,
    roles: &[Role],
    vars: prepare::Vars,
    apply: Option<Operation>,
) -> Result<ast::Node, TriplitError> {
    let mut prep = prepare::Prep {
        schema,
        roles,
        stack: Vec::new(),
    };
    let opts = prepare::Opts {
        apply,
        expanding: false,
        perm_stack: Vec::new(),
    };
    let mut node = prep.query(query, &vars, &opts)?;
    simplify::simplify(&mut node);
    Ok(node)
}

/// Runs `q` on a snapshot: the rows and the sync closure.
pub fn execute(txn: &dyn ReadTxn, q: &PreparedQuery) -> Result<QueryOutput, TriplitError> {
    let mut exec = engine::Exec::new(txn, &q.closure_plan);
    let rows = exec.run(&q.closure_plan.steps, &[], false)?;
    Ok(QueryOutput {
        closure: output::closure(&rows),
        rows: rows
            .iter()
            .map(|r| output::result_row(r, &q.node))
            .collect(),
        wanted_indexes: exec.take_wanted(),
    })
}

/// Runs `q` on a snapshot for its rows only (no closure), as `/fetch`
/// needs; also the indexes its scans would have used
/// ([`QueryOutput::wanted_indexes`]).
pub fn fetch_rows(
    txn: &dyn ReadTxn,
    q: &PreparedQuery,
) -> Result<(Vec<ResultRow>, Vec<IndexWant>), TriplitError> {
    let mut exec = engine::Exec::new(txn, &q.plan);
    let rows = exec.run(&q.plan.steps, &[], false)?;
    let wanted = exec.take_wanted();
    drop(exec);
    let rows = rows
        .into_iter()
        .map(|r| output::into_result_row(r, &q.node))
        .collect();
    Ok((rows, wanted))
}

/// The `/fetch` response body for `rows` of `q`: each entity serialized
/// with its collection's schema (sets as arrays), `select` applied,
/// includes nested (`one` → object or `null`, `many` → array).
pub fn serialize_rows(
    rows: &[ResultRow],
    q: &PreparedQuery,
    schema: Option<&Schema>,
) -> Result<Value, TriplitError> {
    output::serialize_rows(rows, &q.node, schema)
}

/// [`serialize_rows`] as JSON bytes (what `/fetch` sends), written without
/// building the document.
pub fn serialize_rows_json(
    rows: &[ResultRow],
    q: &PreparedQuery,
    schema: Option<&Schema>,
) -> Result<Vec<u8>, TriplitError> {
    output::serialize_rows_json(rows, &q.node, schema)
}

/// [`serialize_rows`] of an [`execute`] output.
pub fn serialize_for_http(
    out: &QueryOutput,
    q: &PreparedQuery,
    schema: Option<&Schema>,
) -> Result<Value, TriplitError> {
    serialize_rows(&out.rows, q, schema)
}

/// The permission clause for a write check (see
/// [`crate::permissions::check_write_permissions`]): the prepared `where`
/// of `{collectionName}` with `op` applied, compiled for per-entity
/// evaluation. `None` when nothing is to be checked.
pub(crate) fn write_clause(
    collection: &str,
    schema: &Schema,
    roles: &[Role],
    session: &Session,
    prev: Option<&Map<String, Value>>,
    op: Operation,
) -> Result<Option<WriteClause>, TriplitError> {
    let mut vars = system_vars(session);
    if let Some(p) = prev {
        vars.insert("$prev".into(), Value::Object(p.clone()));
    }
    let mut q = Map::new();
    q.insert("collectionName".into(), Value::String(collection.into()));
    let node = prepare_node(&Value::Object(q), Some(schema), roles, vars, Some(op))?;
    match node.where_ {
        Some(w) if !w.is_empty() => Ok(Some(WriteClause::new(w)?)),
        _ => Ok(None),
    }
}

use crate::indexes::IndexWant;
pub(crate) use engine::ScanCache;
pub(crate) use write_check::{WriteClause, entity_row};
