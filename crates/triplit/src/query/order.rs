//! Ordering rows: upstream's `sortViewEntities` and `satisfiesAfter`.
//!
//! Keys compare with `compareValue`; an empty value (or a missing related
//! entity, where upstream crashes) is `null`, the smallest value; `DESC`
//! reverses; the sort is stable, so ties keep the candidates' order.

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

/// `sortViewEntities`: stable, empty values as `null`, `DESC` reversed.
pub(super) fn sort(rows: &mut Vec<Row>, keys: &[SortKey]) {
    let mut keyed: Vec<(Vec<Value>, Row)> = rows
        .drain(..)
        .map(|r| (keys.iter().map(|k| sort_value(&r, k)).collect(), r))
        .collect();
    keyed.sort_by(|(a, _), (b, _)| {
        for (i, k) in keys.iter().enumerate() {
            let mut o = compare_value(&a[i], &b[i]);
            if k.desc {
                o = o.reverse();
            }
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    rows.extend(keyed.into_iter().map(|(_, r)| r));
}
