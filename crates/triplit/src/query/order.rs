//! Ordering rows: upstream's `sortViewEntities` and `satisfiesAfter`.
//!
//! Keys compare with `compareValue`; an empty value (or a missing related
//! entity, where upstream crashes) is `null`, the smallest value; `DESC`
//! reverses; the sort is stable, so ties keep the candidates' order.

use std::cmp::Ordering;

use serde_json::Value;

use super::compare::compare_value;
use super::compile::{After, SortKey};
use super::row::{Row, Sub};

/// `satisfiesAfter`.
pub(super) fn after_pass(data: &Value, after: &After) -> bool {
    for (i, (cursor, (path, desc))) in after.cursor.iter().zip(&after.order).enumerate() {
        let v = super::filter::attribute(data, path)
            .map(|v| v.into_owned())
            .unwrap_or(Value::Null);
        let mut cmp = compare_value(&v, cursor);
        if *desc {
            cmp = cmp.reverse();
        }
        match cmp {
            std::cmp::Ordering::Less => return false,
            std::cmp::Ordering::Greater => return true,
            std::cmp::Ordering::Equal if i + 1 == after.cursor.len() => return after.inclusive,
            std::cmp::Ordering::Equal => {}
        }
    }
    true
}

fn sort_value(row: &Row, key: &SortKey) -> Value {
    let mut current = row;
    for alias in &key.subs {
        match current.sub(alias) {
            Some(Sub::One(Some(r))) => current = r,
            // A missing related entity sorts as null (upstream crashes).
            _ => return Value::Null,
        }
    }
    super::filter::value_at(&current.data, key.path.iter().map(String::as_str))
        .map(|v| v.into_owned())
        .unwrap_or(Value::Null)
}

fn compare_keys(keys: &[SortKey], a: &[Value], b: &[Value]) -> Ordering {
    for (i, k) in keys.iter().enumerate() {
        let mut o = compare_value(&a[i], &b[i]);
        if k.desc {
            o = o.reverse();
        }
        if o.is_ne() {
            return o;
        }
    }
    Ordering::Equal
}

/// `sortViewEntities`: stable, empty values as `null`, `DESC` reversed.
pub(super) fn sort(rows: &mut Vec<Row>, keys: &[SortKey]) {
    sort_first(rows, keys, usize::MAX);
}

/// [`sort`], keeping only the first `n` rows: what sorting the whole list
/// and truncating it gives, found by selection when `n` is small (ties
/// are broken by the position before sorting, which is what stability
/// means), so an unindexed `order` + `limit` does not sort every row.
pub(super) fn sort_first(rows: &mut Vec<Row>, keys: &[SortKey], n: usize) {
    let mut keyed: Vec<(Vec<Value>, usize, Row)> = rows
        .drain(..)
        .enumerate()
        .map(|(i, r)| (keys.iter().map(|k| sort_value(&r, k)).collect(), i, r))
        .collect();
    let by = |(a, ai, _): &(Vec<Value>, usize, Row), (b, bi, _): &(Vec<Value>, usize, Row)| {
        compare_keys(keys, a, b).then(ai.cmp(bi))
    };
    if n < keyed.len() / 2 {
        if n == 0 {
            return;
        }
        keyed.select_nth_unstable_by(n - 1, by);
        keyed.truncate(n);
        keyed.sort_unstable_by(by);
    } else {
        keyed.sort_by(|(a, ..), (b, ..)| compare_keys(keys, a, b));
        keyed.truncate(n);
    }
    rows.extend(keyed.into_iter().map(|(_, _, r)| r));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::rc::Rc;

    /// The index tests' scalars (ties and mixed types), arrays and objects.
    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            6 => super::super::index_props::arb_scalar(),
            1 => Just(json!([1])),
            1 => Just(json!({"k": 1})),
        ]
    }

    proptest! {
        /// Selecting the first `n` gives exactly the stable sort's first
        /// `n`, ties in their original order, for mixed-type keys.
        #[test]
        fn sort_first_is_the_stable_sorts_prefix(
            values in proptest::collection::vec((arb_value(), proptest::option::of(arb_value())), 0..40),
            desc in (any::<bool>(), any::<bool>()),
            n in 0usize..45,
        ) {
            let rows: Vec<Row> = values
                .iter()
                .enumerate()
                .map(|(i, (a, b))| {
                    let mut d = json!({"id": i.to_string(), "a": a});
                    if let Some(b) = b {
                        d["b"] = b.clone();
                    }
                    Row::new(Rc::from("c"), Rc::from(i.to_string().as_str()), d)
                })
                .collect();
            let keys = vec![
                SortKey { subs: vec![], path: vec!["a".into()], desc: desc.0 },
                SortKey { subs: vec![], path: vec!["b".into()], desc: desc.1 },
            ];
            let mut all = rows.clone();
            sort(&mut all, &keys);
            all.truncate(n);
            let mut first = rows;
            sort_first(&mut first, &keys, n);
            let ids = |rs: &[Row]| rs.iter().map(|r| r.id.to_string()).collect::<Vec<_>>();
            prop_assert_eq!(ids(&first), ids(&all));
        }
    }
}
