//! Compiling a planned query into steps (upstream's `compileQueryToSteps`).
//!
//! A query over a collection picks its candidates (point lookups for the
//! first top-level `id =`/`in` statement, else a scan), then filters them
//! lazily (static filters and the `after` cursor, then each subquery
//! filter), stops early for a `limit` without `order`, collects, runs the
//! relational order subqueries, sorts (stable), cuts to the `limit` and
//! finally runs the includes on the rows that are left. A query over a
//! view starts from the view narrowed by binary search instead and keeps
//! the view's order.

use serde_json::Value;

use super::ast::{Filter, Stmt};
use super::errors::engine;
use super::operand::Operand;
use super::plan::{Alias, PlanFilter, PlanQuery, Source};
use crate::TriplitError;

/// One step of a compiled plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Scan a collection in id order.
    Scan(String),
    /// Point lookups by the values of an `id` statement.
    IdLookup(String, Operand),
    /// Compute a view (once per execution).
    PrepareView(usize),
    /// Start from a view, narrowed by binary search per statement.
    ResolveFromView(usize, Vec<Stmt>),
    /// Drive the candidate pipeline into the result list.
    Collect,
    /// Candidate filter: static filters, then the `after` cursor.
    IterFilter(Vec<Filter>, Option<After>),
    /// Candidate filter: a subquery must return a row (unless the view
    /// `(N, f)` proves it, see `PlanQuery::implied_by`).
    IterSubqueryFilter(Vec<Step>, Option<(usize, String)>),
    /// Candidate filter: a permission group holding subqueries.
    IterRelFilter(RelFilter),
    /// Stop the candidates after this many.
    IterLimit(f64),
    /// Stable sort.
    Sort(Vec<SortKey>),
    /// Keep the first rows.
    Limit(f64),
    /// Run a subquery per row and store its result.
    Subquery {
        /// Where it is stored.
        alias: Alias,
        /// Its steps.
        steps: Vec<Step>,
        /// Cardinality one: the first row or nothing.
        one: bool,
    },
}

/// An `after` cursor with the order it refers to.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    /// Cursor values, one per order entry.
    pub cursor: Vec<Value>,
    /// Whether a row equal to the cursor passes.
    pub inclusive: bool,
    /// `(path, desc)` per order entry.
    pub order: Vec<(String, bool)>,
}

/// How to read a sort key off a row.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// Sub-results to descend into before reading the data.
    pub subs: Vec<Alias>,
    /// The data path read at the end.
    pub path: Vec<String>,
    /// `DESC`.
    pub desc: bool,
}

/// A filter evaluated per row with nested-loop semantics.
#[derive(Debug, Clone, PartialEq)]
pub enum RelFilter {
    /// A static filter.
    Static(Filter),
    /// `and` (true) / `or` (false).
    Group(bool, Vec<RelFilter>),
    /// A subquery that must return a row (unless a view proves it).
    Exists(Vec<Step>, Option<(usize, String)>),
}

/// A compiled query: its steps and the views they refer to.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The root steps.
    pub steps: Vec<Step>,
    /// The steps of each view, by id.
    pub views: Vec<Vec<Step>>,
}

/// The view id of a `$view_N…` value.
pub fn view_id(var: &str) -> Option<usize> {
    var.strip_prefix("$view_")?.split('.').next()?.parse().ok()
}

fn rel_filter(f: &PlanFilter) -> Result<RelFilter, TriplitError> {
    Ok(match f {
        PlanFilter::Group(and, fs) => {
            RelFilter::Group(*and, fs.iter().map(rel_filter).collect::<Result<_, _>>()?)
        }
        PlanFilter::Exists(q) => RelFilter::Exists(compile_steps(q)?, q.implied_by.clone()),
        other => RelFilter::Static(other.to_static().unwrap_or(Filter::Bool(false))),
    })
}

fn unsupported(f: &PlanFilter) -> TriplitError {
    engine(format!(
        "Could not compile query: Unsupported filter type in where clause: {f:?}"
    ))
}

/// Views referenced by `$view_N` values in statements (through groups).
fn referenced_views(filters: &[Filter], out: &mut Vec<usize>) {
    for f in filters {
        match f {
            Filter::Stmt(s) => {
                if let Some(id) = s.value.as_variable().and_then(view_id)
                    && !out.contains(&id)
                {
                    out.push(id);
                }
            }
            Filter::Group(g) => referenced_views(&g.filters, out),
            _ => {}
        }
    }
}

/// Views referenced by statements inside a permission group.
fn group_views(f: &PlanFilter, out: &mut Vec<usize>) {
    match f {
        PlanFilter::Stmt(s) => {
            if let Some(id) = s.value.as_variable().and_then(view_id)
                && !out.contains(&id)
            {
                out.push(id);
            }
        }
        PlanFilter::Group(_, fs) => fs.iter().for_each(|f| group_views(f, out)),
        _ => {}
    }
}

/// `compileQueryToSteps`.
pub fn compile_steps(q: &PlanQuery) -> Result<Vec<Step>, TriplitError> {
    let mut statics: Vec<Filter> = Vec::new();
    let mut relational: Vec<Step> = Vec::new();
    let mut views = Vec::new();
    for f in &q.where_ {
        if let Some(s) = f.is_static().then(|| f.to_static()).flatten() {
            statics.push(s);
        } else if let PlanFilter::Exists(sub) = f {
            relational.push(Step::IterSubqueryFilter(
                compile_steps(sub)?,
                sub.implied_by.clone(),
            ));
        } else if f.has_strict() && !f.has_loose() {
            group_views(f, &mut views);
            relational.push(Step::IterRelFilter(rel_filter(f)?));
        } else {
            return Err(unsupported(f));
        }
    }
    let after = q.after.as_ref().map(|(cursor, inclusive)| After {
        cursor: cursor.clone(),
        inclusive: *inclusive,
        order: q.order.iter().map(|o| (o.path.clone(), o.desc)).collect(),
    });
    let mut steps = Vec::new();
    let mut collected = false;
    let mut order_handled = false;
    let mut limit_handled = false;
    match &q.source {
        Source::View(id) => {
            let mut stmts = Vec::with_capacity(statics.len());
            for s in &statics {
                match s {
                    Filter::Stmt(s) => stmts.push(s.clone()),
                    _ => {
                        return Err(engine(format!(
                            "Filters on view {id} must be simple filter statements."
                        )));
                    }
                }
            }
            steps.push(Step::PrepareView(*id));
            steps.push(Step::ResolveFromView(*id, stmts));
            steps.extend(
                std::mem::take(&mut views)
                    .into_iter()
                    .map(Step::PrepareView),
            );
            if !relational.is_empty() {
                steps.append(&mut relational);
                steps.push(Step::Collect);
            }
            statics.clear();
            collected = true;
            order_handled = true;
        }
        Source::Collection(c) => {
            let id_filter = q.where_.iter().position(|f| {
                matches!(f, PlanFilter::Stmt(s) if s.path == "id" && (s.op == "=" || s.op == "in"))
            });
            match id_filter.and_then(|i| match &q.where_[i] {
                PlanFilter::Stmt(s) => Some((i, s.value.clone())),
                _ => None,
            }) {
                Some((index, value)) => {
                    if let Some(var) = value.as_variable()
                        && var.starts_with("$view_")
                    {
                        let id =
                            view_id(var).ok_or_else(|| engine(format!("View {var} not found")))?;
                        steps.push(Step::PrepareView(id));
                    }
                    steps.push(Step::IdLookup(c.clone(), value));
                    // Upstream splices the static list at the index the
                    // statement had in the whole `where`.
                    if index < statics.len() {
                        statics.remove(index);
                    }
                }
                None => steps.push(Step::Scan(c.clone())),
            }
        }
    }
    referenced_views(&statics, &mut views);
    steps.extend(views.into_iter().map(Step::PrepareView));
    if !collected {
        if !statics.is_empty() || after.is_some() {
            steps.push(Step::IterFilter(std::mem::take(&mut statics), after));
        }
        steps.append(&mut relational);
        if let Some(limit) = q.limit
            && limit != 0.0
            && q.order.is_empty()
        {
            steps.push(Step::IterLimit(limit));
            limit_handled = true;
        }
        steps.push(Step::Collect);
    }
    if !q.order.is_empty() && !order_handled {
        let mut keys = Vec::with_capacity(q.order.len());
        for (i, o) in q.order.iter().enumerate() {
            let segs: Vec<String> = o.path.split('.').map(str::to_string).collect();
            match &o.sub {
                None => keys.push(SortKey {
                    subs: Vec::new(),
                    path: segs,
                    desc: o.desc,
                }),
                Some((sub, level)) => {
                    let mut sub_steps = compile_steps(sub)?;
                    sub_steps.shrink_to_fit();
                    steps.push(Step::Subquery {
                        alias: Alias::Order(i),
                        steps: sub_steps,
                        one: true,
                    });
                    // `_order_i.rest…`: descend `level + 1` sub-results,
                    // then read the path's last segment.
                    let mut subs = vec![Alias::Order(i)];
                    subs.extend(
                        segs.iter()
                            .skip(1)
                            .take(*level)
                            .map(|s| Alias::Include(s.clone())),
                    );
                    let last = if segs.len() > 1 {
                        segs.last().cloned().into_iter().collect()
                    } else {
                        vec![format!("_order_{i}")]
                    };
                    keys.push(SortKey {
                        subs,
                        path: last,
                        desc: o.desc,
                    });
                }
            }
        }
        steps.push(Step::Sort(keys));
    }
    if let Some(limit) = q.limit
        && !limit_handled
    {
        steps.push(Step::Limit(limit));
    }
    for (alias, sub, one) in &q.include {
        steps.push(Step::Subquery {
            alias: alias.clone(),
            steps: compile_steps(sub)?,
            one: *one,
        });
    }
    // Plans live as long as their subscriptions (one per distinct query,
    // thousands per process): no spare capacity from the pushes above.
    for step in &mut steps {
        if let Step::IterFilter(filters, _) = step {
            filters.shrink_to_fit();
        }
    }
    steps.shrink_to_fit();
    Ok(steps)
}
