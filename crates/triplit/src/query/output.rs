//! What a query run produces: result rows with their includes, the sync
//! closure, and the HTTP serialization of `/fetch`.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::{Map, Value};

use super::ast::Node;
use super::filter::value_at;
use super::plan::Alias;
use super::row::{Row, Sub};
use crate::TriplitError;
use crate::schema::Schema;
use crate::types::serialize::field_key;
use crate::types::{serialize_entity, write_entity_fields};

/// A result row: a stored (encoded) entity and its includes.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    /// The entity's collection.
    pub collection: String,
    /// The entity's id.
    pub id: String,
    /// The entity as stored.
    pub entity: Map<String, Value>,
    /// The query's includes for this row, in the query's order.
    pub includes: Vec<(String, Included)>,
}

/// The result of one include for one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Included {
    /// `cardinality: 'one'`: the first match, if any.
    One(Option<Box<ResultRow>>),
    /// `cardinality: 'many'`.
    Many(Vec<ResultRow>),
}

/// `(collection, id, entity)`: one entity of a sync closure.
pub type ClosureEntity = (String, String, Map<String, Value>);

/// A query run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryOutput {
    /// The root rows in result order, with their includes.
    pub rows: Vec<ResultRow>,
    /// Every entity the client needs to evaluate the query itself: the
    /// rows, their includes at any depth, one witness per `exists` per row
    /// (inside includes and permission subqueries too) and the entities
    /// behind relational `order`; full stored entities, each once, in the
    /// order they were first reached.
    pub closure: Vec<ClosureEntity>,
    /// The attribute indexes the query's scans would have used had they
    /// existed, for the database to build (see `crate::indexes::add`).
    pub wanted_indexes: Vec<crate::indexes::IndexWant>,
}

/// [`result_row`] of a row the caller gives up: its entity is moved out
/// when no other holder shares it.
pub(super) fn into_result_row(row: Row, node: &Node) -> ResultRow {
    let mut out = result_row_with(&row, node, Map::new());
    out.entity = match std::rc::Rc::try_unwrap(row.data) {
        Ok(Value::Object(m)) => m,
        Ok(_) => Map::new(),
        Err(shared) => match shared.as_ref() {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        },
    };
    out
}

pub(super) fn result_row(row: &Row, node: &Node) -> ResultRow {
    result_row_with(row, node, row.entity().clone())
}

fn result_row_with(row: &Row, node: &Node, entity: Map<String, Value>) -> ResultRow {
    let includes = node
        .include
        .iter()
        .map(|(alias, inc)| {
            let got = match row.sub(&Alias::Include(alias.clone())) {
                Some(Sub::One(Some(r))) => Included::One(Some(Box::new(result_row(r, &inc.query)))),
                Some(Sub::Many(rows)) => {
                    Included::Many(rows.iter().map(|r| result_row(r, &inc.query)).collect())
                }
                _ if inc.one => Included::One(None),
                _ => Included::Many(Vec::new()),
            };
            (alias.clone(), got)
        })
        .collect();
    ResultRow {
        collection: row.collection.to_string(),
        id: row.id.to_string(),
        entity,
        includes,
    }
}

/// The closure of `rows`: every row reached through any subquery result.
pub(super) fn closure(rows: &[Row]) -> Vec<ClosureEntity> {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut out = Vec::new();
    fn walk(row: &Row, seen: &mut HashSet<(String, String)>, out: &mut Vec<ClosureEntity>) {
        if seen.insert((row.collection.to_string(), row.id.to_string())) {
            out.push((
                row.collection.to_string(),
                row.id.to_string(),
                row.entity().clone(),
            ));
        }
        for (_, sub) in row.subs.iter() {
            match sub {
                Sub::One(Some(r)) => walk(r, seen, out),
                Sub::One(None) => {}
                Sub::Many(rs) => rs.iter().for_each(|r| walk(r, seen, out)),
            }
        }
    }
    for r in rows {
        walk(r, &mut seen, &mut out);
    }
    out
}

/// Upstream's `select` projection: `ValuePointer.Set(out, path,
/// ValuePointer.Get(entity, path))` for each path.
fn project(entity: &Map<String, Value>, select: &[String]) -> Map<String, Value> {
    let root = Value::Object(entity.clone());
    let mut out = Map::new();
    for path in select {
        let segs: Vec<&str> = path.split('.').collect();
        let value = value_at(&root, segs.iter().copied()).map(|v| v.into_owned());
        set_path(&mut out, &segs, value);
    }
    out
}

/// `ValuePointer.Set`: creates the objects on the way; `undefined` sets a
/// key that JSON then drops. Through an array only an index is written (a
/// named property of an array is not serialized); through any other value
/// nothing is.
fn set_path(target: &mut Map<String, Value>, segs: &[&str], value: Option<Value>) {
    let Some((first, rest)) = segs.split_first() else {
        return;
    };
    if rest.is_empty() {
        match value {
            Some(v) => {
                target.insert((*first).to_string(), v);
            }
            None => {
                target.shift_remove(*first);
            }
        }
        return;
    }
    let entry = target
        .entry((*first).to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    set_in(entry, rest, value);
}

fn set_in(current: &mut Value, segs: &[&str], value: Option<Value>) {
    match current {
        Value::Object(m) => set_path(m, segs, value),
        Value::Array(items) => {
            let Some(i) = segs[0]
                .parse::<usize>()
                .ok()
                .filter(|_| crate::types::js::is_array_index(segs[0]))
            else {
                return;
            };
            if i >= items.len() {
                items.resize(i + 1, Value::Null);
            }
            if segs.len() == 1 {
                items[i] = value.unwrap_or(Value::Null);
            } else {
                if items[i].is_null() {
                    items[i] = Value::Object(Map::new());
                }
                set_in(&mut items[i], &segs[1..], value);
            }
        }
        _ => {}
    }
}

/// The row's entity with the query's `select` applied.
fn selected<'a>(row: &'a ResultRow, node: &Node) -> Cow<'a, Map<String, Value>> {
    match &node.select {
        Some(select) => Cow::Owned(project(&row.entity, select)),
        None => Cow::Borrowed(&row.entity),
    }
}

fn serialize_row(
    row: &ResultRow,
    node: &Node,
    schema: Option<&Schema>,
) -> Result<Value, TriplitError> {
    let collection = schema.and_then(|s| s.collection(&node.collection));
    let mut out = serialize_entity(collection, &selected(row, node))?;
    for ((alias, inc), (_, got)) in node.include.iter().zip(&row.includes) {
        let v = match got {
            Included::One(None) => Value::Null,
            Included::One(Some(r)) => serialize_row(r, &inc.query, schema)?,
            Included::Many(rs) => Value::Array(
                rs.iter()
                    .map(|r| serialize_row(r, &inc.query, schema))
                    .collect::<Result<_, _>>()?,
            ),
        };
        out.shift_remove(alias);
        out.insert(alias.clone(), v);
    }
    Ok(Value::Object(out))
}

/// The `/fetch` body: serialized entities (sets as arrays), `select`
/// applied, includes nested (`one` → object or `null`, `many` → array).
pub(super) fn serialize_rows(
    rows: &[ResultRow],
    node: &Node,
    schema: Option<&Schema>,
) -> Result<Value, TriplitError> {
    Ok(Value::Array(
        rows.iter()
            .map(|r| serialize_row(r, node, schema))
            .collect::<Result<_, _>>()?,
    ))
}

/// [`serialize_rows`] written straight to JSON bytes: equal to
/// `serde_json::to_vec` of what it returns, without building it.
pub(super) fn serialize_rows_json(
    rows: &[ResultRow],
    node: &Node,
    schema: Option<&Schema>,
) -> Result<Vec<u8>, TriplitError> {
    let mut out = Vec::with_capacity(rows.len() * 128 + 2);
    write_rows(rows, node, schema, &mut out)?;
    Ok(out)
}

fn write_rows(
    rows: &[ResultRow],
    node: &Node,
    schema: Option<&Schema>,
    out: &mut Vec<u8>,
) -> Result<(), TriplitError> {
    out.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_row(row, node, schema, out)?;
    }
    out.push(b']');
    Ok(())
}

/// One row as [`serialize_row`] makes it: the entity's fields, except
/// those an include replaces, then the includes in the query's order.
fn write_row(
    row: &ResultRow,
    node: &Node,
    schema: Option<&Schema>,
    out: &mut Vec<u8>,
) -> Result<(), TriplitError> {
    let collection = schema.and_then(|s| s.collection(&node.collection));
    let is_alias = |k: &str| node.include.iter().any(|(alias, _)| alias == k);
    let mut any = false;
    out.push(b'{');
    write_entity_fields(collection, &selected(row, node), &is_alias, &mut any, out)?;
    for ((alias, inc), (_, got)) in node.include.iter().zip(&row.includes) {
        field_key(alias, &mut any, out)?;
        match got {
            Included::One(None) => out.extend_from_slice(b"null"),
            Included::One(Some(r)) => write_row(r, &inc.query, schema, out)?,
            Included::Many(rs) => write_rows(rs, &inc.query, schema, out)?,
        }
    }
    out.push(b'}');
    Ok(())
}
