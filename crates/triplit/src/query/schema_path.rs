//! Walking a dotted path through a schema, as upstream's
//! `createSchemaTraverser` does.
//!
//! At the top of a collection, a name is looked up in `relationships`
//! first, then in the record's properties. A relationship leads to the
//! top of its target collection; a `json` attribute swallows the rest of
//! the path; anything else ends the walk (`None` from there on).

use serde_json::Value;

use crate::schema::{DataType, Schema};
use crate::types::js::js_get;

/// What a path segment resolves to.
#[derive(Debug, Clone, Copy)]
pub enum Attr<'a> {
    /// An attribute of this type.
    Type(&'a DataType),
    /// A relationship `{query, cardinality}`.
    Relation(&'a Value),
}

impl<'a> Attr<'a> {
    /// The relationship's query object.
    pub fn relation_query(&self) -> Option<&'a serde_json::Map<String, Value>> {
        match self {
            Attr::Relation(r) => js_get(r, "query").and_then(Value::as_object),
            Attr::Type(_) => None,
        }
    }

    /// The relationship's cardinality (`one`/`many`, as given).
    pub fn cardinality(&self) -> Option<&'a Value> {
        match self {
            Attr::Relation(r) => js_get(r, "cardinality"),
            Attr::Type(_) => None,
        }
    }

    /// The attribute's data type, `None` for a relationship.
    pub fn data_type(&self) -> Option<&'a DataType> {
        match self {
            Attr::Type(t) => Some(t),
            Attr::Relation(_) => None,
        }
    }
}

fn is_relation(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.contains_key("query"))
}

/// The resolution after each segment of `path` from `collection`.
pub fn walk<'a>(schema: &'a Schema, collection: &str, path: &[&str]) -> Vec<Option<Attr<'a>>> {
    let mut out = Vec::with_capacity(path.len());
    let mut home: Option<&'a crate::schema::Collection> = schema.collection(collection);
    let mut current: Option<Attr<'a>> = home.map(|c| Attr::Type(&c.schema));
    let mut at_root = true;
    for seg in path {
        current = match current {
            None => None,
            Some(rel @ Attr::Relation(_)) => {
                // A fresh traverser on the related collection.
                let target = rel
                    .relation_query()
                    .and_then(|q| q.get("collectionName"))
                    .and_then(Value::as_str)
                    .and_then(|c| schema.collection(c));
                home = target;
                at_root = true;
                let top = target.map(|c| Attr::Type(&c.schema));
                step(top, home, &mut at_root, seg)
            }
            Some(t) => step(Some(t), home, &mut at_root, seg),
        };
        out.push(current);
    }
    out
}

fn step<'a>(
    current: Option<Attr<'a>>,
    home: Option<&'a crate::schema::Collection>,
    at_root: &mut bool,
    seg: &str,
) -> Option<Attr<'a>> {
    let current = current?;
    if *at_root && let Some(rel) = home.and_then(|c| c.relationships.get(seg)) {
        return if is_relation(rel) {
            Some(Attr::Relation(rel))
        } else {
            None
        };
    }
    match current.data_type()? {
        DataType::Record { .. } => {
            *at_root = false;
            current.data_type()?.property(seg).map(Attr::Type)
        }
        t @ DataType::Json(_) => {
            *at_root = false;
            Some(Attr::Type(t))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve<'a>(s: &'a Schema, c: &str, p: &[&str]) -> Option<Attr<'a>> {
        walk(s, c, p).last().copied().flatten()
    }

    fn schema() -> Schema {
        Schema::from_json(&json!({"collections": {
            "users": {"schema": {"type": "record", "properties": {
                "id": {"type": "string"}, "name": {"type": "string"},
                "meta": {"type": "record", "properties": {"x": {"type": "number"}}},
                "blob": {"type": "json"}}}},
            "posts": {"schema": {"type": "record", "properties": {
                "id": {"type": "string"}, "authorId": {"type": "string"}}},
                "relationships": {"author": {"query": {"collectionName": "users",
                    "where": [["id", "=", "$authorId"]]}, "cardinality": "one"}}}
        }}))
        .expect("valid schema")
    }

    #[test]
    fn walks_relations_records_and_json() {
        let s = schema();
        let w = walk(&s, "posts", &["author", "meta", "x"]);
        assert!(matches!(w[0], Some(Attr::Relation(_))));
        assert!(matches!(w[2], Some(Attr::Type(DataType::Number(_)))));
        assert!(matches!(
            resolve(&s, "users", &["blob", "a", "b"]),
            Some(Attr::Type(DataType::Json(_)))
        ));
        assert!(resolve(&s, "users", &["name", "x"]).is_none());
        assert!(resolve(&s, "users", &["nope"]).is_none());
        assert!(resolve(&s, "nobody", &["id"]).is_none());
    }
}
