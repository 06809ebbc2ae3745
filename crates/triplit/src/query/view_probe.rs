//! Answering a view-resolved subquery for one parent row from a persistent
//! index, without computing the view.
//!
//! An include (or relational order) such as `users.todos` (`ownerId =
//! $1.id`) is planned as upstream plans it: a view holding every todo,
//! sorted by `ownerId`, then narrowed per parent row by binary search
//! ([`super::view_search`]). The view costs a decode of the whole related
//! collection, on every query run, even for ten parents and an indexed
//! `ownerId`. When the view is a plain scan (`Scan`, filters that cannot
//! fail and read no variable, `Collect`, a sort by plain paths) and every statement's
//! bound value is a string, the run the binary search finds is exactly the
//! rows of the scan whose attribute equals that string, in the view's
//! sort order: the index (or the id, for `id`) gives those candidates in
//! id order, the view's filters and an exact equality check run on each,
//! and the same stable sort orders them. Anything else computes the view.
//!
//! Why exact: with a string target, `safeCompareValue` is `Less` for a
//! missing attribute, `null` and every type ranking below strings,
//! `Greater` for booleans, and compares strings by code units, all
//! consistently with the view's sort (missing as `null`,
//! `compareValue`), so the equal run is contiguous and the binary search
//! finds it whole. Only paths without a dot qualify: the view reads
//! `data[path]` as one key, an index reads nested attributes.
//!
//! A view is probed for at most [`MAX_PROBES`] distinct parents per
//! execution (answers are kept per value); past that, or once the related
//! collection is in memory anyway, the view is computed and used for the
//! rest of the execution. Results are the same either way.

use std::rc::Rc;

use serde_json::Value;

use super::ast::{Filter, Stmt};
use super::compare::safe_compare;
use super::compile::{SortKey, Step};
use super::engine::{Exec, Source, Stage};
use super::index_scan::{self, infallible};
use super::operand::Operand;
use super::order::sort;
use super::row::Row;
use crate::TriplitError;

/// Distinct parent values probed per view and execution before the view
/// is computed instead.
pub(super) const MAX_PROBES: usize = 64;

/// The parts of a plain-scan view.
struct PlainView<'p> {
    collection: &'p str,
    filters: &'p [Filter],
    keys: &'p [SortKey],
}

fn plain_view(steps: &[Step]) -> Option<PlainView<'_>> {
    let (collection, filters, keys) = match steps {
        [Step::Scan(c), Step::Collect, Step::Sort(keys)] => (c, &[][..], keys),
        [
            Step::Scan(c),
            Step::IterFilter(fs, None),
            Step::Collect,
            Step::Sort(keys),
        ] => (c, fs.as_slice(), keys),
        _ => return None,
    };
    let plain = filters.iter().all(|f| infallible(f) && !has_variables(f))
        && keys.iter().all(|k| k.subs.is_empty());
    plain.then_some(PlainView {
        collection,
        filters,
        keys,
    })
}

/// Whether `f` still reads a variable at run time. A view's filter can
/// hold a `$1` statement the planner does not narrow by (inside a group,
/// or with an operator like `like`); the view binds it once, with the
/// parent of its first use, so a per-parent answer would differ.
fn has_variables(f: &Filter) -> bool {
    match f {
        Filter::Bool(_) => false,
        Filter::Stmt(s) => s.value.as_variable().is_some(),
        Filter::Group(g) => g.filters.iter().any(has_variables),
        Filter::Exists(_) => true,
    }
}

fn resolvable(op: &str) -> bool {
    matches!(op, "=" | "<" | "<=" | ">" | ">=")
}

impl<'p> Exec<'p> {
    /// The rows `ResolveFromView(id, stmts)` gives for the current parent,
    /// read through an index; `None` when the view must be computed.
    pub(super) fn probe_view(
        &mut self,
        id: usize,
        stmts: &[Stmt],
        stack: &[Row],
    ) -> Result<Option<Vec<Row>>, TriplitError> {
        if !matches!(self.views.get(id), Some(None)) || stmts.is_empty() {
            return Ok(None);
        }
        let plan = self.plan;
        let Some(view) = plan.views.get(id).and_then(|s| plain_view(s)) else {
            return Ok(None);
        };
        if self.cache_holds(view.collection) {
            return Ok(None);
        }
        let mut values = Vec::with_capacity(stmts.len());
        for s in stmts {
            match self.bind_value(&s.value, stack, false)? {
                Operand::Json(Value::String(v)) if resolvable(&s.op) && !s.path.contains('.') => {
                    values.push(v)
                }
                _ => return Ok(None),
            }
        }
        let key = (id, values);
        if let Some(rows) = self.probed.get(&key) {
            return Ok(Some(rows.clone()));
        }
        let probes = self.probes.entry(id).or_insert(0);
        if *probes >= MAX_PROBES {
            return Ok(None);
        }
        *probes += 1;
        let registry = self.registry()?;
        let collection: Rc<str> = Rc::from(view.collection);
        let targets: Vec<Operand> = key
            .1
            .iter()
            .map(|v| Operand::Json(Value::String(v.clone())))
            .collect();
        let mut ids = None;
        for ((s, v), target) in stmts.iter().zip(&key.1).zip(&targets) {
            if s.path == "id" {
                ids = Some(vec![v.clone()]);
                break;
            }
            let eq = Filter::Stmt(Stmt {
                path: s.path.clone(),
                op: "=".into(),
                value: target.clone(),
            });
            if let Some(found) = index_scan::filter_ids(
                self.txn,
                &registry,
                view.collection,
                std::slice::from_ref(&eq),
                index_scan::Narrow::Equal,
            )? {
                ids = Some(found);
                break;
            }
        }
        let Some(ids) = ids else {
            // Without an index the view is computed; with one on the first
            // statement's path, the next execution probes.
            self.cache_want(view.collection, &stmts[0].path);
            *self.probes.entry(id).or_insert(0) = MAX_PROBES;
            return Ok(None);
        };
        let stages = if view.filters.is_empty() {
            Vec::new()
        } else {
            vec![Stage::Filter(self.bind_all(view.filters, stack)?, None)]
        };
        let mut rows = self.collect(Source::Ids(collection, ids), stages, stack, None)?;
        rows.retain(|r| {
            stmts
                .iter()
                .zip(&targets)
                .all(|(s, t)| safe_compare(r.entity().get(&s.path), t).is_eq())
        });
        sort(&mut rows, view.keys);
        self.probed.insert(key, rows.clone());
        Ok(Some(rows))
    }
}
