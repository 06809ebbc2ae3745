//! Evaluating a write-permission clause against one entity (upstream's
//! `satisfiesFilters`, as `checkWritePermission` runs it).
//!
//! Filters are tried in upstream's priority order (booleans, statements,
//! groups, subqueries). Statements compare against their values as
//! prepared — upstream binds no variables at this level, so a `$0.x` or
//! `$1.x` left in a permission statement is compared as that string. Each
//! subquery runs with only the entity on the stack, against the
//! transaction's view of the data.

use ferry_store::ReadTxn;
use serde_json::Value;

use super::ast::Filter;
use super::compile::Plan;
use super::engine::{Exec, ScanCache, filters_pass};
use super::plan::compile;
use super::row::Row;
use crate::TriplitError;

/// A compiled permission clause.
#[derive(Debug, Clone)]
pub struct WriteClause {
    filters: Vec<Check>,
}

#[derive(Debug, Clone)]
enum Check {
    Static(Filter),
    Group(bool, Vec<Check>),
    Exists(Plan),
}

fn rank(c: &Check) -> u8 {
    match c {
        Check::Static(Filter::Bool(_)) => 0,
        Check::Static(Filter::Stmt(_)) => 1,
        Check::Static(_) | Check::Group(..) => 2,
        Check::Exists(_) => 3,
    }
}

fn build(f: &Filter) -> Result<Check, TriplitError> {
    Ok(match f {
        Filter::Group(g) if !f.is_static() => Check::Group(
            g.and,
            g.filters.iter().map(build).collect::<Result<_, _>>()?,
        ),
        Filter::Exists(e) => Check::Exists(compile(&e.query, false, true)?),
        other => Check::Static(other.clone()),
    })
}

impl WriteClause {
    /// Compiles prepared permission filters.
    pub fn new(filters: Vec<Filter>) -> Result<Self, TriplitError> {
        Ok(WriteClause {
            filters: filters.iter().map(build).collect::<Result<_, _>>()?,
        })
    }

    /// Whether `row` satisfies every filter. `cache` carries what earlier
    /// checks on the same snapshot decoded.
    pub fn allows(
        &self,
        txn: &dyn ReadTxn,
        row: &Row,
        cache: &mut ScanCache,
    ) -> Result<bool, TriplitError> {
        all(txn, row, &self.filters, cache)
    }
}

fn all(
    txn: &dyn ReadTxn,
    row: &Row,
    filters: &[Check],
    cache: &mut ScanCache,
) -> Result<bool, TriplitError> {
    let mut order: Vec<&Check> = filters.iter().collect();
    order.sort_by_key(|c| rank(c));
    for c in order {
        if !one(txn, row, c, cache)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn one(
    txn: &dyn ReadTxn,
    row: &Row,
    c: &Check,
    cache: &mut ScanCache,
) -> Result<bool, TriplitError> {
    match c {
        Check::Static(f) => filters_pass(&row.data, std::slice::from_ref(f)),
        Check::Group(true, fs) => all(txn, row, fs, cache),
        Check::Group(false, fs) => {
            for f in fs {
                if all(txn, row, std::slice::from_ref(f), cache)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Check::Exists(plan) => {
            let mut exec = Exec::with_cache(txn, plan, std::mem::take(cache));
            let found = exec.run(&plan.steps, std::slice::from_ref(row), false);
            *cache = exec.into_cache();
            Ok(!found?.is_empty())
        }
    }
}

/// The entity a check runs on, as a row.
pub(crate) fn entity_row(
    collection: &str,
    id: &str,
    entity: &serde_json::Map<String, Value>,
) -> Row {
    Row::new(collection.into(), id.into(), Value::Object(entity.clone()))
}
