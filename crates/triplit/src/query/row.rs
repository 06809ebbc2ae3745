//! Rows as the engine holds them: a stored entity plus the results of the
//! subqueries run for it (includes, relational order, `exists` witnesses).
//!
//! A row on the variable stack is read the way upstream reads its
//! flattened view entity: a path starting with a subquery's alias goes
//! into that result, anything else into the entity.

use std::rc::Rc;

use serde_json::{Map, Value};

use super::filter::value_at;
use super::plan::Alias;

/// A subquery result stored on a row.
#[derive(Debug, Clone)]
pub enum Sub {
    /// Cardinality one: the first row, if any.
    One(Option<Row>),
    /// Cardinality many.
    Many(Vec<Row>),
}

/// An entity with its subquery results.
#[derive(Debug, Clone)]
pub struct Row {
    /// Its collection.
    pub collection: Rc<str>,
    /// Its id (from the storage key).
    pub id: Rc<str>,
    /// The stored entity (a JSON object).
    pub data: Rc<Value>,
    /// Subquery results, in the order they were computed.
    pub subs: Rc<Vec<(Alias, Sub)>>,
}

impl Row {
    /// A row without subquery results.
    pub fn new(collection: Rc<str>, id: Rc<str>, data: Value) -> Row {
        Row {
            collection,
            id,
            data: Rc::new(data),
            subs: Rc::new(Vec::new()),
        }
    }

    /// Stores (or replaces) a subquery result.
    pub fn set_sub(&mut self, alias: Alias, sub: Sub) {
        let subs = Rc::make_mut(&mut self.subs);
        match subs.iter_mut().find(|(a, _)| *a == alias) {
            Some(slot) => slot.1 = sub,
            None => subs.push((alias, sub)),
        }
    }

    /// A stored subquery result.
    pub fn sub(&self, alias: &Alias) -> Option<&Sub> {
        self.subs.iter().find(|(a, _)| a == alias).map(|(_, s)| s)
    }

    fn sub_named(&self, name: &str) -> Option<&Sub> {
        // The last one wins, as in an object spread.
        self.subs
            .iter()
            .rev()
            .find(|(a, _)| a.name() == name)
            .map(|(_, s)| s)
    }

    /// The entity as JSON.
    pub fn entity(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        match self.data.as_ref() {
            Value::Object(m) => m,
            _ => EMPTY.get_or_init(Map::new),
        }
    }

    /// `flattenViewEntity`: the entity with its subquery results merged in.
    pub fn flattened(&self) -> Value {
        if self.subs.is_empty() {
            return self.data.as_ref().clone();
        }
        let mut m = self.entity().clone();
        for (alias, sub) in self.subs.iter() {
            m.insert(alias.name(), sub_value(sub));
        }
        Value::Object(m)
    }

    /// `ValuePointer.Get(flattened row, path)`; `None` is `undefined`.
    pub fn lookup(&self, path: &[String]) -> Option<Value> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self.flattened());
        };
        match self.sub_named(first) {
            None => value_at(&self.data, path.iter().map(String::as_str)).map(|v| v.into_owned()),
            Some(Sub::One(Some(r))) => r.lookup(rest),
            Some(Sub::One(None)) => rest.is_empty().then_some(Value::Null),
            Some(Sub::Many(rows)) => {
                let v = Value::Array(rows.iter().map(Row::flattened).collect());
                value_at(&v, rest.iter().map(String::as_str)).map(|v| v.into_owned())
            }
        }
    }
}

fn sub_value(sub: &Sub) -> Value {
    match sub {
        Sub::One(Some(r)) => r.flattened(),
        Sub::One(None) => Value::Null,
        Sub::Many(rows) => Value::Array(rows.iter().map(Row::flattened).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookups_go_through_subquery_results() {
        let c: Rc<str> = Rc::from("c");
        let mut r = Row::new(c.clone(), Rc::from("a"), json!({"id": "a", "x": {"y": 1}}));
        let other = Row::new(c.clone(), Rc::from("b"), json!({"id": "b", "n": 2}));
        r.set_sub(Alias::Include("rel".into()), Sub::One(Some(other.clone())));
        r.set_sub(Alias::Include("many".into()), Sub::Many(vec![other]));
        r.set_sub(Alias::Order(0), Sub::One(None));
        let p = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(r.lookup(&p("x.y")), Some(json!(1)));
        assert_eq!(r.lookup(&p("rel.n")), Some(json!(2)));
        assert_eq!(r.lookup(&p("many.0.id")), Some(json!("b")));
        assert_eq!(r.lookup(&p("_order_0")), Some(json!(null)));
        assert_eq!(r.lookup(&p("_order_0.x")), None);
        assert_eq!(r.flattened()["rel"]["id"], json!("b"));
    }
}
