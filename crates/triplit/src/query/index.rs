//! In-memory equality indexes, built during one execution.
//!
//! A nested loop (an `exists` evaluated per row, a witness, an include
//! that is not served from a view) runs the same subquery once per parent
//! row, typically with a `[attr, '=', '$1.x']` statement. Once a collection
//! has been read into memory, the first such scan builds a hash index of
//! `attr`, and later runs only visit the rows with an equal value, in
//! their storage order. Every filter still runs on those rows, so results
//! are exactly those of the scan; the index only skips rows that cannot
//! match. This is also where persistent attribute indexes would plug in.

use std::collections::HashMap;

use serde_json::Value;

use super::ast::Filter;
use super::filter::attribute;
use super::operand::Operand;
use super::row::Row;

/// A value as `=` compares it with a scalar: empty (`null`/missing),
/// booleans, numbers (by value, `-0` as `0`) and strings.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub enum Key {
    /// `null` or `undefined`.
    Empty,
    /// A boolean.
    Bool(bool),
    /// A number's bits.
    Number(u64),
    /// A string.
    String(String),
}

fn key_of(v: Option<&Value>) -> Option<Key> {
    Some(match v {
        None | Some(Value::Null) => Key::Empty,
        Some(Value::Bool(b)) => Key::Bool(*b),
        Some(Value::Number(n)) => Key::Number((n.as_f64()? + 0.0).to_bits()),
        Some(Value::String(s)) => Key::String(s.clone()),
        Some(Value::Array(_) | Value::Object(_)) => return None,
    })
}

/// The first top-level `=` statement with a scalar (or empty) value:
/// `(path, key)`. Only rows whose `path` has that key can pass.
pub fn probe(filters: &[Filter]) -> Option<(&str, Key)> {
    filters.iter().find_map(|f| match f {
        Filter::Stmt(s) if s.op == "=" => {
            let key = match &s.value {
                Operand::Undefined => Key::Empty,
                Operand::Json(v) => key_of(Some(v))?,
                Operand::Set(_) => return None,
            };
            Some((s.path.as_str(), key))
        }
        _ => None,
    })
}

/// Row positions by key, per `(collection, path)`.
#[derive(Debug, Default)]
pub struct Indexes {
    built: HashMap<(String, String), HashMap<Key, Vec<usize>>>,
}

impl Indexes {
    /// The positions in `rows` (a whole collection in storage order) whose
    /// `path` has `key`, in order.
    pub fn lookup(&mut self, collection: &str, rows: &[Row], path: &str, key: &Key) -> &[usize] {
        let index = self
            .built
            .entry((collection.to_string(), path.to_string()))
            .or_insert_with(|| {
                let mut m: HashMap<Key, Vec<usize>> = HashMap::new();
                for (i, r) in rows.iter().enumerate() {
                    if let Some(k) = key_of(attribute(&r.data, path).as_deref()) {
                        m.entry(k).or_default().push(i);
                    }
                }
                m
            });
        index.get(key).map(Vec::as_slice).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::Stmt;
    use serde_json::json;
    use std::rc::Rc;

    #[test]
    fn lookups_find_equal_scalars_and_empties_in_order() {
        let rows: Vec<Row> = [
            json!({"a": 1}),
            json!({"a": 1.0}),
            json!({}),
            json!({"a": null}),
            json!({"a": [1]}),
            json!({"a": "1"}),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, v)| Row::new(Rc::from("c"), Rc::from(i.to_string().as_str()), v))
        .collect();
        let mut ix = Indexes::default();
        assert_eq!(
            ix.lookup("c", &rows, "a", &Key::Number(1f64.to_bits())),
            [0, 1]
        );
        assert_eq!(ix.lookup("c", &rows, "a", &Key::Empty), [2, 3]);
        assert_eq!(ix.lookup("c", &rows, "a", &Key::String("1".into())), [5]);
        let f = vec![Filter::Stmt(Stmt {
            path: "a".into(),
            op: "=".into(),
            value: Operand::Undefined,
        })];
        assert_eq!(probe(&f), Some(("a", Key::Empty)));
        let f = vec![Filter::Stmt(Stmt {
            path: "a".into(),
            op: "=".into(),
            value: Operand::set_from(vec![]),
        })];
        assert_eq!(probe(&f), None);
    }
}
