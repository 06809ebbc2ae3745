//! The query planner: upstream's `extractViews` and `compileQueryToSteps`.
//!
//! Upstream's results depend on its plan, not only on the filters, so the
//! plan is reproduced step for step (the client runs the same planner over
//! its cache, and the server must ship what that planner will match):
//!
//! - **Inversion.** An `exists` with no `$2`+ reference and at most one
//!   top-level `$1` statement `[f, op, '$1.p']` becomes the statement
//!   `[p, 'in', '$view_N.f']` over a view (the subquery without that
//!   statement) computed once. The operator is ignored, and an `exists`
//!   with no `$1` statement disappears (it always passes).
//! - **Variable-aware cache.** Otherwise, and for includes and relational
//!   order subqueries, a subquery with a variable statement is resolved
//!   from a view sorted by the variable statements' paths with a binary
//!   search, which matches equal values whatever the operator.
//! - **Candidates.** The first top-level `id =`/`id in` statement becomes
//!   point lookups in the order of its values (an inverted `id in $view`
//!   follows the view's order); otherwise the collection is scanned in id
//!   order. This is the seam where attribute indexes can plug in later.
//!
//! Permission filters (`strict`) are never rewritten: they are evaluated
//! per row, so they can never be dropped or weakened by the rewrites.

use serde_json::Value;

use super::ast::{Filter, Node, Stmt, flat_exists};
use super::compile::{Plan, compile_steps};
use super::errors::engine;
use super::operand::Operand;
use super::variables::{Scope, components};
use crate::TriplitError;

/// The name a subquery's result is stored under on its parent row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alias {
    /// A user include.
    Include(String),
    /// The related entity of the `i`-th order entry (`_order_i`).
    Order(usize),
    /// The witness of the `i`-th `exists` of the row's query (`_exists-i`).
    Witness(usize),
}

impl Alias {
    /// The key upstream flattens the result under.
    pub fn name(&self) -> String {
        match self {
            Alias::Include(n) => n.clone(),
            Alias::Order(i) => format!("_order_{i}"),
            Alias::Witness(i) => format!("_exists-{i}"),
        }
    }
}

/// Where a query's candidates come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A stored collection.
    Collection(String),
    /// A prepared view.
    View(usize),
}

/// A filter being planned: like [`Filter`], with subqueries in planning
/// form (a rewritten one reads a view).
#[derive(Debug, Clone)]
pub enum PlanFilter {
    /// `true`/`false`.
    Bool(bool),
    /// A statement.
    Stmt(Stmt),
    /// `and` (true) / `or` (false).
    Group(bool, Vec<PlanFilter>),
    /// A subquery that must return a row.
    Exists(Box<PlanQuery>),
}

impl PlanFilter {
    fn from_filter(f: &Filter, strict: bool) -> PlanFilter {
        match f {
            Filter::Bool(b) => PlanFilter::Bool(*b),
            Filter::Stmt(s) => PlanFilter::Stmt(s.clone()),
            Filter::Group(g) => PlanFilter::Group(
                g.and,
                g.filters
                    .iter()
                    .map(|f| PlanFilter::from_filter(f, strict))
                    .collect(),
            ),
            Filter::Exists(e) => PlanFilter::Exists(Box::new(PlanQuery::from_node(
                &e.query,
                false,
                strict || e.strict,
                false,
            ))),
        }
    }

    /// `isStaticFilter`.
    pub fn is_static(&self) -> bool {
        match self {
            PlanFilter::Bool(_) | PlanFilter::Stmt(_) => true,
            PlanFilter::Group(_, fs) => fs.iter().all(PlanFilter::is_static),
            PlanFilter::Exists(_) => false,
        }
    }

    /// Whether a permission subquery is inside.
    pub fn has_strict(&self) -> bool {
        match self {
            PlanFilter::Bool(_) | PlanFilter::Stmt(_) => false,
            PlanFilter::Group(_, fs) => fs.iter().any(PlanFilter::has_strict),
            PlanFilter::Exists(q) => q.strict,
        }
    }

    /// Whether a rewritable (non-permission) subquery is inside.
    pub fn has_loose(&self) -> bool {
        match self {
            PlanFilter::Bool(_) | PlanFilter::Stmt(_) => false,
            PlanFilter::Group(_, fs) => fs.iter().any(PlanFilter::has_loose),
            PlanFilter::Exists(q) => !q.strict,
        }
    }

    /// The static filter, `None` when a subquery is inside.
    pub fn to_static(&self) -> Option<Filter> {
        Some(match self {
            PlanFilter::Bool(b) => Filter::Bool(*b),
            PlanFilter::Stmt(s) => Filter::Stmt(s.clone()),
            PlanFilter::Group(and, fs) => Filter::group(
                *and,
                fs.iter()
                    .map(PlanFilter::to_static)
                    .collect::<Option<Vec<_>>>()?,
            ),
            PlanFilter::Exists(_) => return None,
        })
    }
}

/// A query being planned.
#[derive(Debug, Clone)]
pub struct PlanQuery {
    pub(super) source: Source,
    pub(super) where_: Vec<PlanFilter>,
    pub(super) order: Vec<PlanOrder>,
    pub(super) limit: Option<f64>,
    pub(super) after: Option<(Vec<Value>, bool)>,
    pub(super) include: Vec<(Alias, PlanQuery, bool)>,
    /// A permission subquery: never rewritten.
    pub(super) strict: bool,
    /// Whether upstream would see includes on it (user includes, or the
    /// nested witnesses of an `_exists` include).
    has_includes: bool,
    /// For a permission `exists` Ferry evaluates next to upstream's
    /// inversion `[p, 'in', '$view_N.f']`: `(N, f)`. When every value of
    /// `f` in the view is a scalar, passing the statement already proves
    /// the `exists`, so it is not run again.
    pub(super) implied_by: Option<(usize, String)>,
}

/// An order entry being planned.
#[derive(Debug, Clone)]
pub struct PlanOrder {
    pub(super) path: String,
    pub(super) desc: bool,
    /// The related-entity subquery and its include depth.
    pub(super) sub: Option<(Box<PlanQuery>, usize)>,
}

/// Compiles a prepared query; `closure` adds the `exists` witnesses;
/// `strict` compiles it as a permission subquery (no rewrites).
pub fn compile(node: &Node, closure: bool, strict: bool) -> Result<Plan, TriplitError> {
    let mut root = PlanQuery::from_node(node, closure, strict, false);
    let mut views: Vec<Option<PlanQuery>> = Vec::new();
    extract_views(&mut root, &mut views);
    let mut compiled = Vec::with_capacity(views.len());
    for v in &views {
        match v {
            Some(v) => compiled.push(compile_steps(v)?),
            None => return Err(engine("a view was not extracted")),
        }
    }
    Ok(Plan {
        steps: compile_steps(&root)?,
        views: compiled,
    })
}

/// How deep relational order includes nest (`getLevelOfNestedInclude`).
fn include_level(n: &Node) -> usize {
    n.include
        .iter()
        .map(|(_, i)| include_level(&i.query) + 1)
        .max()
        .unwrap_or(0)
}

impl PlanQuery {
    fn from_node(n: &Node, closure: bool, strict: bool, witness: bool) -> PlanQuery {
        let exists = flat_exists(n.filters());
        let mut include: Vec<(Alias, PlanQuery, bool)> = n
            .include
            .iter()
            .map(|(a, i)| {
                let q = PlanQuery::from_node(&i.query, closure, strict, false);
                (Alias::Include(a.clone()), q, i.one)
            })
            .collect();
        let has_includes = !include.is_empty() || (witness && !exists.is_empty());
        if closure {
            for (i, e) in exists.iter().enumerate() {
                let q = PlanQuery::from_node(&e.query, closure, strict || e.strict, true);
                include.push((Alias::Witness(i), q, true));
            }
        }
        let order = n
            .order
            .iter()
            .flatten()
            .map(|o| PlanOrder {
                path: o.path.clone(),
                desc: o.desc,
                sub: o.sub.as_ref().map(|s| {
                    let q = PlanQuery::from_node(s, closure, strict, false);
                    (Box::new(q), include_level(s))
                }),
            })
            .collect();
        PlanQuery {
            source: Source::Collection(n.collection.clone()),
            where_: n
                .filters()
                .iter()
                .map(|f| PlanFilter::from_filter(f, strict))
                .collect(),
            order,
            limit: n.limit,
            after: n.after.clone(),
            include,
            strict,
            has_includes,
            implied_by: None,
        }
    }
}

fn is_indexable(f: &PlanFilter) -> bool {
    matches!(f, PlanFilter::Stmt(s) if s.value.as_variable().is_some()
        && matches!(s.op.as_str(), "=" | "<" | "<=" | ">" | ">=" | "!="))
}

fn can_cache(q: &PlanQuery) -> bool {
    q.where_.is_empty() || q.where_.iter().any(is_indexable)
}

/// The `N` of a statement whose value is a `$N.…` variable.
pub(super) fn relative_scope(s: &Stmt) -> Option<i64> {
    match components(s.value.as_variable()?).scope {
        Some(Scope::Relative(n)) => Some(n),
        _ => None,
    }
}

fn has_higher_level_refs(filters: &[PlanFilter]) -> bool {
    filters.iter().any(|f| match f {
        PlanFilter::Stmt(s) => relative_scope(s).is_some_and(|n| n > 1),
        PlanFilter::Group(_, fs) => has_higher_level_refs(fs),
        PlanFilter::Exists(q) => has_higher_level_refs(&q.where_),
        PlanFilter::Bool(_) => false,
    })
}

fn alloc(views: &mut Vec<Option<PlanQuery>>) -> usize {
    views.push(None);
    views.len() - 1
}

fn extract_views(q: &mut PlanQuery, views: &mut Vec<Option<PlanQuery>>) {
    if q.strict {
        return;
    }
    let w = std::mem::take(&mut q.where_);
    q.where_ = where_to_views(w, views, true);
    for (_, sub, _) in &mut q.include {
        subquery_to_view(sub, views);
    }
    for o in &mut q.order {
        if let Some((sub, _)) = &mut o.sub {
            subquery_to_view(sub, views);
        }
    }
}

/// `queryToViews`: (view, variable statements, unused filters).
fn query_to_views(q: &PlanQuery) -> (PlanQuery, Vec<PlanFilter>, Vec<PlanFilter>) {
    let (mut vars, mut statics, mut unused) = (Vec::new(), Vec::new(), Vec::new());
    for f in &q.where_ {
        if is_indexable(f) {
            vars.push(f.clone());
        } else if f.is_static() {
            statics.push(f.clone());
        } else {
            unused.push(f.clone());
        }
    }
    let mut order: Vec<PlanOrder> = vars
        .iter()
        .filter_map(|f| match f {
            PlanFilter::Stmt(s) => Some(PlanOrder {
                path: s.path.clone(),
                desc: false,
                sub: None,
            }),
            _ => None,
        })
        .collect();
    order.extend(q.order.iter().cloned());
    let view = PlanQuery {
        source: q.source.clone(),
        where_: statics,
        order,
        limit: if vars.is_empty() { q.limit } else { None },
        after: None,
        include: Vec::new(),
        strict: false,
        has_includes: false,
        implied_by: None,
    };
    (view, vars, unused)
}

fn subquery_to_view(sub: &mut PlanQuery, views: &mut Vec<Option<PlanQuery>>) {
    if sub.strict {
        return;
    }
    if can_cache(sub) && !sub.has_includes {
        let id = alloc(views);
        let (mut view, vars, unused) = query_to_views(sub);
        extract_views(&mut view, views);
        views[id] = Some(view);
        sub.source = Source::View(id);
        // Upstream drops the other filters here; permission ones are kept
        // and checked per row.
        let kept = unused
            .into_iter()
            .filter(|f| f.has_strict() && !f.has_loose());
        sub.where_ = vars.into_iter().chain(kept).collect();
        for (_, inc, _) in &mut sub.include {
            subquery_to_view(inc, views);
        }
    } else {
        extract_views(sub, views);
    }
}

/// Whether a variable in `filters` reaches above the query they filter
/// (`$N` beyond the subquery depth).
fn refs_outside(filters: &[PlanFilter], depth: i64) -> bool {
    filters.iter().any(|f| match f {
        PlanFilter::Stmt(s) => relative_scope(s).is_some_and(|n| n > depth),
        PlanFilter::Group(_, fs) => refs_outside(fs, depth),
        PlanFilter::Exists(q) => refs_outside(&q.where_, depth + 1),
        PlanFilter::Bool(_) => false,
    })
}

/// For a permission `exists` of the shape upstream inverts with its
/// meaning intact (one `[f, '=', '$1.p']` statement, the rest not
/// depending on the row), the statement `[p, 'in', '$view_N.f']` that
/// upstream evaluates instead. Ferry evaluates it *and* keeps the
/// `exists`, so the rows (and, through an `id` statement, their order)
/// are upstream's, but never more than the permission allows.
fn strict_inversion(
    sub: &PlanQuery,
    views: &mut Vec<Option<PlanQuery>>,
) -> Option<(PlanFilter, (usize, String))> {
    let vars: Vec<usize> = sub
        .where_
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f, PlanFilter::Stmt(s) if relative_scope(s) == Some(1)))
        .map(|(i, _)| i)
        .collect();
    let [i] = vars[..] else { return None };
    let PlanFilter::Stmt(var) = &sub.where_[i] else {
        return None;
    };
    if var.op != "=" {
        return None;
    }
    let mut view = sub.clone();
    view.where_.remove(i);
    if refs_outside(&view.where_, 0) {
        return None;
    }
    let id = alloc(views);
    views[id] = Some(view);
    let parent = components(var.value.as_variable().unwrap_or_default())
        .path
        .join(".");
    let stmt = PlanFilter::Stmt(Stmt {
        path: parent,
        op: "in".into(),
        value: Operand::Json(Value::String(format!("$view_{id}.{}", var.path))),
    });
    Some((stmt, (id, var.path.clone())))
}

fn where_to_views(
    filters: Vec<PlanFilter>,
    views: &mut Vec<Option<PlanQuery>>,
    and: bool,
) -> Vec<PlanFilter> {
    let mut out = Vec::new();
    for f in filters {
        match f {
            PlanFilter::Exists(mut sub) if sub.strict => match strict_inversion(&sub, views) {
                Some((stmt, implied)) => {
                    sub.implied_by = Some(implied);
                    if and {
                        out.push(stmt);
                        out.push(PlanFilter::Exists(sub));
                    } else {
                        out.push(PlanFilter::Group(true, vec![stmt, PlanFilter::Exists(sub)]));
                    }
                }
                None => out.push(PlanFilter::Exists(sub)),
            },
            PlanFilter::Exists(mut sub) if !sub.strict => {
                let var_idx: Vec<usize> = sub
                    .where_
                    .iter()
                    .enumerate()
                    .filter(
                        |(_, f)| matches!(f, PlanFilter::Stmt(s) if relative_scope(s) == Some(1)),
                    )
                    .map(|(i, _)| i)
                    .collect();
                if !has_higher_level_refs(&sub.where_) && var_idx.len() < 2 {
                    // Inversion.
                    let id = alloc(views);
                    let var_filter = var_idx.first().map(|&i| sub.where_.remove(i));
                    extract_views(&mut sub, views);
                    views[id] = Some(*sub);
                    if let Some(PlanFilter::Stmt(s)) = var_filter {
                        let var = s.value.as_variable().unwrap_or_default();
                        out.push(PlanFilter::Stmt(Stmt {
                            path: components(var).path.join("."),
                            op: "in".into(),
                            value: Operand::Json(Value::String(format!("$view_{id}.{}", s.path))),
                        }));
                    }
                } else if can_cache(&sub) {
                    // Variable-aware cache.
                    let id = alloc(views);
                    let (mut view, vars, unused) = query_to_views(&sub);
                    extract_views(&mut view, views);
                    let remaining = where_to_views(unused, views, true);
                    views[id] = Some(view);
                    sub.source = Source::View(id);
                    sub.where_ = vars.into_iter().chain(remaining).collect();
                    out.push(PlanFilter::Exists(sub));
                } else {
                    // A nested loop, compiled without further rewrites.
                    out.push(PlanFilter::Exists(sub));
                }
            }
            PlanFilter::Group(g, fs) => {
                out.push(PlanFilter::Group(g, where_to_views(fs, views, g)))
            }
            other => out.push(other),
        }
    }
    out
}
