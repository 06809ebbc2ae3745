//! Upstream's `simplifyQuery`, which runs on every prepared query.
//!
//! It flattens a group into its parent when both have the same `mod`,
//! unwraps groups of one filter and drops empty ones, collapses `false`
//! inside an `and` (and `true` inside an `or`), turns an `exists` whose
//! subquery is `[false]` into `false`, and drops filters whose hash
//! repeats one before it. The last step is not only cosmetic: the hash
//! sees every `Set` as `{}`, so `x in [a]` and `x in [b]` side by side keep
//! only the first, exactly as upstream's engine (and so the client) does.

use super::ast::{Filter, Node};
use super::hash::hash_filter;

/// Simplifies a query in place (recursing into includes, relational
/// order subqueries and `exists` subqueries).
pub fn simplify(q: &mut Node) {
    if let Some(w) = q.where_.take() {
        let w = simplify_clauses(w, true);
        q.where_ = if w.is_empty() { None } else { Some(w) };
    }
    for (_, inc) in &mut q.include {
        simplify(&mut inc.query);
    }
    if let Some(order) = &mut q.order {
        if order.is_empty() {
            q.order = None;
        } else {
            for o in order.iter_mut() {
                if let Some(sub) = &mut o.sub {
                    simplify(sub);
                }
            }
        }
    }
}

fn simplify_clauses(filters: Vec<Filter>, and: bool) -> Vec<Filter> {
    let mut clauses = Vec::new();
    for f in filters {
        let Some(s) = simplify_clause(f) else {
            continue;
        };
        match s {
            Filter::Group(g) if g.and == and => clauses.extend(g.filters),
            other => clauses.push(other),
        }
    }
    let collapse = if and {
        Filter::Bool(false)
    } else {
        Filter::Bool(true)
    };
    if clauses.contains(&collapse) {
        clauses = vec![collapse];
    }
    let mut seen = Vec::new();
    let before = clauses.len();
    let mut deduped = Vec::new();
    for c in clauses {
        let (h, _) = hash_filter(&c);
        if seen.contains(&h) {
            continue;
        }
        seen.push(h);
        deduped.push(c);
    }
    if deduped.len() != before {
        return simplify_clauses(deduped, and);
    }
    deduped
}

fn simplify_clause(f: Filter) -> Option<Filter> {
    match f {
        Filter::Group(mut g) => {
            g.filters = simplify_clauses(std::mem::take(&mut g.filters), g.and);
            match g.filters.len() {
                0 => None,
                1 => g.filters.pop().and_then(simplify_clause),
                _ => Some(Filter::Group(g)),
            }
        }
        Filter::Exists(mut e) => {
            simplify(&mut e.query);
            if e.query.where_.as_deref() == Some(&[Filter::Bool(false)][..]) {
                return Some(Filter::Bool(false));
            }
            Some(Filter::Exists(e))
        }
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::{Exists, Stmt};
    use crate::query::operand::Operand;
    use serde_json::json;

    fn st(path: &str, v: serde_json::Value) -> Filter {
        Filter::Stmt(Stmt {
            path: path.into(),
            op: "=".into(),
            value: Operand::from_prepared(Some(v)),
        })
    }

    fn simplified(w: Vec<Filter>) -> Option<Vec<Filter>> {
        let mut q = Node::new("c");
        q.where_ = Some(w);
        simplify(&mut q);
        q.where_
    }

    #[test]
    fn flattens_unwraps_and_collapses() {
        let w = vec![
            Filter::group(
                true,
                vec![
                    st("a", json!(1)),
                    Filter::group(true, vec![st("b", json!(2))]),
                ],
            ),
            Filter::group(false, vec![st("c", json!(3))]),
            Filter::group(false, vec![]),
        ];
        assert_eq!(
            simplified(w),
            Some(vec![
                st("a", json!(1)),
                st("b", json!(2)),
                st("c", json!(3))
            ])
        );
        let w = vec![
            st("a", json!(1)),
            Filter::group(true, vec![Filter::Bool(false)]),
        ];
        assert_eq!(simplified(w), Some(vec![Filter::Bool(false)]));
        let w = vec![Filter::group(
            false,
            vec![st("a", json!(1)), Filter::Bool(true)],
        )];
        assert_eq!(simplified(w), Some(vec![Filter::Bool(true)]));
        assert_eq!(simplified(vec![]), None);
    }

    #[test]
    fn deduplicates_by_hash_and_denied_exists_is_false() {
        let w = vec![
            st("a", json!(1)),
            st("a", json!(1)),
            st("b", json!(["x"])),
            st("b", json!(["y"])),
        ];
        assert_eq!(
            simplified(w),
            Some(vec![st("a", json!(1)), st("b", json!(["x"]))])
        );
        let mut sub = Node::new("d");
        sub.where_ = Some(vec![Filter::group(
            false,
            vec![Filter::group(true, vec![Filter::Bool(false)])],
        )]);
        let w = vec![
            st("a", json!(1)),
            Filter::Exists(Box::new(Exists {
                query: sub,
                strict: true,
            })),
        ];
        assert_eq!(simplified(w), Some(vec![Filter::Bool(false)]));
    }
}
