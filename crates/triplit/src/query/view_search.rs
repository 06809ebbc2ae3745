//! Resolving a subquery from a cached view (upstream's
//! `VariableAwareCache.resolveQueryFromView`).
//!
//! The view is sorted by the variable statements' paths; each bound
//! statement narrows it with two binary searches for the run of entries
//! equal to the value. Upstream uses that run for `=`, `<`, `<=`, `>` and
//! `>=` alike, and for `!=` keeps everything up to the run's first entry
//! and from its last entry on. The attribute is read as `data[path]`
//! (the whole path as one key). All of this is reproduced as is, because
//! the client resolves the same subqueries the same way.

use std::cmp::Ordering;

use serde_json::Value;

use super::compare::safe_compare;
use super::operand::Operand;
use super::row::Row;
use crate::TriplitError;

#[derive(Clone, Copy, PartialEq)]
enum End {
    Start,
    End,
}

fn binary_search(rows: &[Row], path: &str, target: &Operand, end: End) -> isize {
    let (mut lo, mut hi) = (0isize, rows.len() as isize - 1);
    let mut result = -1;
    while lo <= hi {
        let mid = (lo + hi) / 2;
        let v: Option<&Value> = rows[mid as usize].entity().get(path);
        match safe_compare(v, target) {
            Ordering::Equal => {
                result = mid;
                if end == End::Start {
                    hi = mid - 1;
                } else {
                    lo = mid + 1;
                }
            }
            Ordering::Less => lo = mid + 1,
            Ordering::Greater => hi = mid - 1,
        }
    }
    result
}

/// JavaScript's `Array.prototype.slice(start, end)`.
fn slice(rows: &[Row], start: isize, end: Option<isize>) -> Vec<Row> {
    let len = rows.len() as isize;
    let norm = |i: isize| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let (s, e) = (norm(start), end.map_or(len, norm));
    if s >= e {
        return Vec::new();
    }
    rows[s as usize..e as usize].to_vec()
}

fn cache_error(op: &str) -> TriplitError {
    TriplitError::new(
        "QueryCacheError",
        400,
        "Triplit Error",
        Some(format!(
            "Queries with the operator \"{op}\" in a where clause can't be stored in the query cache. Currently, supported operators are: =,!=,<,<=,>,>="
        )),
    )
}

/// Narrows `rows` by one bound statement.
pub fn resolve_from_view(
    rows: Vec<Row>,
    path: &str,
    op: &str,
    value: &Operand,
) -> Result<Vec<Row>, TriplitError> {
    let start = binary_search(&rows, path, value, End::Start);
    let end = binary_search(&rows, path, value, End::End);
    match op {
        "=" | "<" | "<=" | ">" | ">=" => Ok(slice(&rows, start, Some(end + 1))),
        "!=" => {
            let mut out = slice(&rows, 0, Some(start + 1));
            out.extend(slice(&rows, end, None));
            Ok(out)
        }
        _ => Err(cache_error(op)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::rc::Rc;

    fn rows(vals: &[Value]) -> Vec<Row> {
        vals.iter()
            .enumerate()
            .map(|(i, v)| {
                let mut m = serde_json::Map::new();
                m.insert("id".into(), json!(i.to_string()));
                if !v.is_null() {
                    m.insert("k".into(), v.clone());
                }
                Row::new(
                    Rc::from("c"),
                    Rc::from(i.to_string().as_str()),
                    Value::Object(m),
                )
            })
            .collect()
    }

    fn ids(r: &[Row]) -> Vec<String> {
        r.iter().map(|r| r.id.to_string()).collect()
    }

    #[test]
    fn every_comparison_matches_the_equal_run() {
        let r = rows(&[json!(1), json!(2), json!(2), json!(3)]);
        for op in ["=", "<", ">", "<=", ">="] {
            let got = resolve_from_view(r.clone(), "k", op, &Operand::Json(json!(2))).unwrap();
            assert_eq!(ids(&got), ["1", "2"], "{op}");
        }
        let none = resolve_from_view(r.clone(), "k", ">", &Operand::Json(json!(9))).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn not_equal_keeps_the_run_ends_and_in_is_refused() {
        let r = rows(&[json!(1), json!(2), json!(2), json!(2), json!(3)]);
        let got = resolve_from_view(r.clone(), "k", "!=", &Operand::Json(json!(2))).unwrap();
        assert_eq!(ids(&got), ["0", "1", "3", "4"]);
        let got = resolve_from_view(r.clone(), "k", "!=", &Operand::Json(json!(7))).unwrap();
        assert_eq!(ids(&got), ["4"]);
        let e = resolve_from_view(r, "k", "in", &Operand::Json(json!(2))).unwrap_err();
        assert_eq!(e.name, "QueryCacheError");
    }

    #[test]
    fn undefined_only_matches_missing_values() {
        let r = rows(&[json!(null), json!(1)]);
        let got = resolve_from_view(r, "k", "=", &Operand::Undefined).unwrap();
        assert_eq!(ids(&got), ["0"]);
    }
}
