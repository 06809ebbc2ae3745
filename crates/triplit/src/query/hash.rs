//! Upstream's `hashPreparedQuery`: a 32-bit FNV-1a hash of a prepared
//! query that ignores the order of `where` filters, `select` paths and
//! `include` keys.
//!
//! Simplification deduplicates filters by this hash, so its blind spots
//! are behaviour: every `Set` value hashes as `{}`, so two `in` filters on
//! the same path with different lists are "the same" and only the first
//! is kept. The sync engine can also use it as a stable query identity.

use super::ast::{Filter, Node, OrderBy};
use super::compare::compare_js_str;
use super::operand::json_hash_encoding;
use crate::jsnum::js_number_to_string;

/// FNV-1a over the UTF-16 code units of `s` (`fnv1aHash`).
pub fn fnv1a(s: &str) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for unit in s.encode_utf16() {
        h ^= u32::from(unit);
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// `combineHashes`.
pub fn combine(a: u32, b: u32) -> u32 {
    (a ^ b).wrapping_mul(16_777_619)
}

/// `hashPreparedQuery`.
pub fn hash_node(q: &Node) -> u32 {
    let mut h = fnv1a("C");
    h = combine(h, fnv1a(&q.collection));
    if let Some(w) = &q.where_ {
        h = combine(h, hash_filters(w));
    }
    if let Some(order) = &q.order {
        let mut oh = fnv1a("O");
        for o in order {
            oh = combine(oh, hash_order(o));
        }
        h = combine(h, oh);
    }
    if let Some(limit) = q.limit {
        h = combine(h, combine(fnv1a("L"), fnv1a(&js_number_to_string(limit))));
    }
    if let Some((cursor, inclusive)) = &q.after {
        let mut ah = fnv1a("A");
        for c in cursor {
            ah = combine(ah, fnv1a(&json_hash_encoding(c)));
        }
        ah = combine(ah, fnv1a(if *inclusive { "true" } else { "false" }));
        h = combine(h, ah);
    }
    if !q.include.is_empty() {
        let mut entries: Vec<_> = q.include.iter().collect();
        entries.sort_by(|a, b| compare_js_str(&a.0, &b.0));
        let mut ih = fnv1a("I");
        for (key, inc) in entries {
            ih = combine(ih, fnv1a(key));
            ih = combine(ih, fnv1a(if inc.one { "one" } else { "many" }));
            ih = combine(ih, hash_node(&inc.query));
        }
        h = combine(h, ih);
    }
    if let Some(select) = &q.select {
        let mut sorted: Vec<&String> = select.iter().collect();
        sorted.sort_by(|a, b| compare_js_str(a, b));
        let mut sh = fnv1a("P");
        for s in sorted {
            sh = combine(sh, fnv1a(s));
        }
        h = combine(h, sh);
    }
    h
}

fn hash_order(o: &OrderBy) -> u32 {
    let mut oh = fnv1a("o");
    oh = combine(oh, fnv1a(&o.path));
    oh = combine(oh, fnv1a(if o.desc { "DESC" } else { "ASC" }));
    if let Some(sub) = &o.sub {
        oh = combine(oh, hash_node(sub));
    }
    oh
}

/// `hashFilter`: the hash and the sort key `hashFilters` orders by.
pub fn hash_filter(f: &Filter) -> (u32, String) {
    match f {
        Filter::Bool(b) => {
            let s = if *b { "true" } else { "false" };
            (combine(fnv1a("B"), fnv1a(s)), format!("B|{s}"))
        }
        Filter::Stmt(s) => {
            let enc = s.value.hash_encoding();
            let mut h = fnv1a("S");
            h = combine(h, fnv1a(&s.path));
            h = combine(h, fnv1a(&s.op));
            h = combine(h, fnv1a(&enc));
            (h, format!("S|{}|{}|{enc}", s.path, s.op))
        }
        Filter::Group(g) => {
            let m = if g.and { "and" } else { "or" };
            let inner = hash_filters(&g.filters);
            let h = combine(combine(fnv1a("G"), fnv1a(m)), inner);
            (h, format!("G|{m}|{inner}"))
        }
        Filter::Exists(e) => {
            let h = combine(fnv1a("Q"), hash_node(&e.query));
            (h, format!("Q|{h}"))
        }
    }
}

/// `hashFilters`: order-independent.
pub fn hash_filters(filters: &[Filter]) -> u32 {
    let mut hashes: Vec<(u32, String)> = filters.iter().map(hash_filter).collect();
    hashes.sort_by(|a, b| compare_js_str(&a.1, &b.1));
    hashes
        .into_iter()
        .fold(fnv1a("F"), |h, (fh, _)| combine(h, fh))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::Stmt;
    use crate::query::operand::Operand;
    use serde_json::json;

    #[test]
    fn fnv_matches_upstream() {
        // fnv1aHash('') is the offset basis; 'a' is the published FNV-1a value.
        assert_eq!(fnv1a(""), 2_166_136_261);
        assert_eq!(fnv1a("a"), 0xe40c_292c);
    }

    #[test]
    fn sets_collide_and_order_does_not_matter() {
        let st = |v| {
            Filter::Stmt(Stmt {
                path: "x".into(),
                op: "in".into(),
                value: Operand::from_prepared(Some(v)),
            })
        };
        assert_eq!(
            hash_filter(&st(json!(["a"]))).0,
            hash_filter(&st(json!(["b"]))).0
        );
        let a = vec![st(json!(1)), Filter::Bool(true)];
        let b = vec![Filter::Bool(true), st(json!(1))];
        assert_eq!(hash_filters(&a), hash_filters(&b));
        assert_ne!(
            hash_filters(&a),
            hash_filters(&[st(json!(2)), Filter::Bool(true)])
        );
    }
}
