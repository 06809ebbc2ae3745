//! Preparing a `CollectionQuery` (upstream's `prepareQuery`): validation
//! against the schema, includes, order, limit and the `after` cursor.
//! Filters are prepared in [`prepare_where`](super::prepare_where).
//!
//! Validation runs in upstream's order (collection name, select, include,
//! where, order, limit, after) so the first error reported is upstream's.

use serde_json::{Map, Value};

use super::ast::{Include, Node, OrderBy};
use super::errors::{
    included_non_relation, invalid_after, invalid_cardinality, invalid_collection,
    invalid_inclusion, invalid_limit, invalid_order, invalid_select, relation_does_not_exist,
};
use super::schema_path::{Attr, walk};
use crate::TriplitError;
use crate::permissions::{Operation, Role};
use crate::schema::{DataType, Schema};
use crate::types::js::{js_entries, js_get, js_string, js_truthy};

/// State shared by one preparation.
pub(super) struct Prep<'a> {
    /// The schema, `None` in schemaless mode.
    pub schema: Option<&'a Schema>,
    /// The session's roles.
    pub roles: &'a [Role],
    /// Collection names of the queries being prepared, innermost last
    /// (upstream's `queryStack`).
    pub stack: Vec<String>,
}

/// Per-subquery options (upstream's `PrepareQueryRecursiveOptions`).
#[derive(Debug, Clone)]
pub(super) struct Opts {
    /// Which permission to apply (`None`: none, e.g. the service token).
    pub apply: Option<Operation>,
    /// Inside a permission filter (everything made here is "strict").
    pub expanding: bool,
    /// Collections whose permissions are being expanded.
    pub perm_stack: Vec<String>,
}

/// Static variables: `$global`, `$session`, `$query`, `$role`, `$prev`.
pub(super) type Vars = Map<String, Value>;

impl<'a> Prep<'a> {
    /// The schema to validate paths of `collection` against: none for the
    /// system collection `_metadata`, which is schemaless (its `_schema`
    /// entity is what `syncSchema` clients query by `id`; upstream rejects
    /// that filter when the server has a schema).
    pub fn paths_schema(&self, collection: &str) -> Option<&'a Schema> {
        self.schema.filter(|_| collection != "_metadata")
    }
}

impl Prep<'_> {
    /// `prepareQueryRecursive`.
    pub fn query(&mut self, q: &Value, vars: &Vars, opts: &Opts) -> Result<Node, TriplitError> {
        let name = js_get(q, "collectionName");
        self.stack
            .push(name.and_then(Value::as_str).unwrap_or_default().to_string());
        let out = self.query_inner(q, vars, opts);
        self.stack.pop();
        out
    }

    fn query_inner(&mut self, q: &Value, vars: &Vars, opts: &Opts) -> Result<Node, TriplitError> {
        let collection = self.collection_name(q)?;
        let mut node = Node::new(collection.clone());
        node.select = self.select(q, &collection)?;
        node.include = self.include(q, &collection, vars, opts)?;
        node.where_ = self.filters(q, &collection, vars, opts)?;
        node.order = self.order(q, &collection, vars, opts)?;
        node.limit = limit(q)?;
        node.after = self.after(q, &collection)?;
        Ok(node)
    }

    fn collection_name(&self, q: &Value) -> Result<String, TriplitError> {
        let name = js_get(q, "collectionName");
        if !name.is_some_and(js_truthy) {
            return Err(invalid_collection(name, "Collection name must be provided"));
        }
        let Some(Value::String(name)) = name else {
            return Err(invalid_collection(name, "Collection name must be a string"));
        };
        if let Some(schema) = self.schema
            && schema.collection(name).is_none()
            && name != "_metadata"
        {
            return Err(invalid_collection(
                Some(&Value::String(name.clone())),
                &format!("Collection '{name}' does not exist in the schema"),
            ));
        }
        Ok(name.clone())
    }

    fn select(&self, q: &Value, collection: &str) -> Result<Option<Vec<String>>, TriplitError> {
        let Some(select) = js_get(q, "select").filter(|s| js_truthy(s)) else {
            return Ok(None);
        };
        let items: Vec<Value> = match select {
            Value::Array(a) => a.clone(),
            Value::String(s) => s.chars().map(|c| Value::String(c.to_string())).collect(),
            other => {
                return Err(invalid_select(format!(
                    "Select field '{}' is not a string",
                    js_string(Some(other))
                )));
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let Value::String(path) = item else {
                return Err(invalid_select(format!(
                    "Select field '{}' is not a string",
                    js_string(Some(item))
                )));
            };
            if let Some(schema) = self.paths_schema(collection) {
                let invalid =
                    validate_identifier(schema, collection, path, |attr, _, _| match attr {
                        None => Some("Path not found"),
                        Some(Attr::Relation(_)) => {
                            Some("Cannot select into relationships, please use 'include' instead")
                        }
                        Some(Attr::Type(_)) => None,
                    });
                if let Some((at, reason)) = invalid {
                    return Err(invalid_select(format!(
                        "Select field '{path}' is not valid: {reason} at path '{at}'"
                    )));
                }
            }
            out.push(path.clone());
        }
        Ok(Some(out))
    }

    fn include(
        &mut self,
        q: &Value,
        collection: &str,
        vars: &Vars,
        opts: &Opts,
    ) -> Result<Vec<(String, Include)>, TriplitError> {
        let Some(include) = js_get(q, "include").filter(|i| js_truthy(i)) else {
            return Ok(Vec::new());
        };
        if let Value::String(s) = include {
            let first = s.chars().next().map(|c| Value::String(c.to_string()));
            return Err(invalid_inclusion(&first.unwrap_or(Value::Null)));
        }
        let mut out = Vec::new();
        for (alias, relation) in js_entries(include) {
            let mut relation = relation.clone();
            if let Some(schema) = self.schema {
                let (name, ext) = match &relation {
                    Value::Bool(true) | Value::Null => (Some(alias.clone()), None),
                    Value::Object(m) if m.contains_key("_extends") => {
                        let mut ext = m.clone();
                        let name = ext.remove("_extends");
                        (
                            name.filter(js_truthy).map(|n| js_string(Some(&n))),
                            Some(ext),
                        )
                    }
                    _ => (None, None),
                };
                if let Some(name) = name {
                    let segs: Vec<&str> = name.split('.').collect();
                    match walk(schema, collection, &segs).last().copied().flatten() {
                        Some(rel @ Attr::Relation(_)) => {
                            let base = rel.relation_query().cloned().unwrap_or_default();
                            let merged = merge_queries(&base, ext.as_ref());
                            let mut sub = Map::new();
                            sub.insert("subquery".into(), Value::Object(merged));
                            sub.insert(
                                "cardinality".into(),
                                rel.cardinality().cloned().unwrap_or(Value::Null),
                            );
                            relation = Value::Object(sub);
                        }
                        None => return Err(relation_does_not_exist(&name, &alias, collection)),
                        Some(Attr::Type(_)) => {
                            return Err(included_non_relation(&name, &alias, collection));
                        }
                    }
                }
            }
            let Value::Object(spec) = &relation else {
                return Err(invalid_inclusion(&relation));
            };
            let Some(subquery) = spec.get("subquery") else {
                return Err(invalid_inclusion(&relation));
            };
            let one = match spec.get("cardinality") {
                Some(Value::String(c)) if c == "one" => true,
                Some(Value::String(c)) if c == "many" => false,
                other => return Err(invalid_cardinality(other)),
            };
            let query = self.query(subquery, vars, opts)?;
            out.push((alias, Include { query, one }));
        }
        Ok(out)
    }

    fn order(
        &mut self,
        q: &Value,
        collection: &str,
        vars: &Vars,
        opts: &Opts,
    ) -> Result<Option<Vec<OrderBy>>, TriplitError> {
        let Some(order) = js_get(q, "order").filter(|o| js_truthy(o)) else {
            return Ok(None);
        };
        let Value::Array(items) = order else {
            return Err(invalid_order(format!(
                "Invalid order clause '{}'",
                js_string(Some(order))
            )));
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let (field, direction) = match item {
                Value::Array(pair) => (pair.first(), pair.get(1)),
                _ => (None, None),
            };
            let desc = match direction {
                Some(Value::String(d)) if d == "ASC" => false,
                Some(Value::String(d)) if d == "DESC" => true,
                other => {
                    return Err(invalid_order(format!(
                        "Invalid order direction '{}'",
                        js_string(other)
                    )));
                }
            };
            let Some(Value::String(field)) = field else {
                return Err(invalid_order(format!(
                    "Order by field '{}' is not valid",
                    js_string(field)
                )));
            };
            let mut sub = None;
            if let Some(schema) = self.paths_schema(collection) {
                let invalid = validate_identifier(schema, collection, field, |attr, i, len| {
                    let Some(attr) = attr else {
                        return Some("Path not found");
                    };
                    let leaf = i == len - 1;
                    match attr {
                        Attr::Relation(_) if leaf => Some("Order by field is not sortable"),
                        Attr::Type(DataType::Set { .. } | DataType::Record { .. }) if leaf => {
                            Some("Order by field is not sortable")
                        }
                        Attr::Relation(_)
                            if attr.cardinality().and_then(Value::as_str) != Some("one") =>
                        {
                            Some("Order by field is a query with cardinality not equal to one")
                        }
                        _ => None,
                    }
                });
                if let Some((at, reason)) = invalid {
                    return Err(invalid_order(format!(
                        "Order by field '{field}' is not valid: {reason} at path '{at}'"
                    )));
                }
                sub = self.order_subquery(schema, collection, field, vars, opts)?;
            }
            out.push(OrderBy {
                path: field.clone(),
                desc,
                sub,
            });
        }
        Ok(Some(out))
    }

    /// The cardinality-one subquery behind a relational order path. Every
    /// relation after the first becomes an include of the first subquery
    /// (not nested), as upstream builds it.
    fn order_subquery(
        &mut self,
        schema: &Schema,
        collection: &str,
        field: &str,
        vars: &Vars,
        opts: &Opts,
    ) -> Result<Option<Box<Node>>, TriplitError> {
        let segs: Vec<&str> = field.split('.').collect();
        let mut base: Option<Map<String, Value>> = None;
        for (i, attr) in walk(schema, collection, &segs).into_iter().enumerate() {
            let Some(rel @ Attr::Relation(_)) = attr else {
                break;
            };
            let sub = rel.relation_query().cloned().unwrap_or_default();
            match &mut base {
                None => base = Some(sub),
                Some(b) => {
                    let mut inc = match b.remove("include") {
                        Some(Value::Object(m)) => m,
                        _ => Map::new(),
                    };
                    let mut spec = Map::new();
                    spec.insert("subquery".into(), Value::Object(sub));
                    spec.insert(
                        "cardinality".into(),
                        rel.cardinality().cloned().unwrap_or(Value::Null),
                    );
                    inc.insert(segs[i].to_string(), Value::Object(spec));
                    b.insert("include".into(), Value::Object(inc));
                }
            }
        }
        match base {
            None => Ok(None),
            Some(b) => Ok(Some(Box::new(self.query(&Value::Object(b), vars, opts)?))),
        }
    }

    fn after(
        &self,
        q: &Value,
        collection: &str,
    ) -> Result<Option<(Vec<Value>, bool)>, TriplitError> {
        let Some(after) = js_get(q, "after").filter(|a| js_truthy(a)) else {
            return Ok(None);
        };
        let Value::Array(after) = after else {
            return Err(invalid_after("After clause must be an array"));
        };
        if after.len() < 2 {
            return Err(invalid_after(
                "After clause must contain a cursor and inclusive flag",
            ));
        }
        if after.len() > 2 {
            return Err(invalid_after(
                "After clause has too many components - it should contain a cursor and inclusive flag",
            ));
        }
        let Value::Array(cursor) = &after[0] else {
            return Err(invalid_after("After clause cursor must be an array"));
        };
        let order = match js_get(q, "order").filter(|o| js_truthy(o)) {
            Some(Value::Array(o)) => o,
            Some(_) => {
                return Err(invalid_after(
                    "After clause cursor must match the elements in the order by clause",
                ));
            }
            None => {
                return Err(invalid_after(
                    "After clause requires an order by clause to be provided",
                ));
            }
        };
        if cursor.len() != order.len() {
            return Err(invalid_after(
                "After clause cursor must match the elements in the order by clause",
            ));
        }
        let Value::Bool(inclusive) = after[1] else {
            return Err(invalid_after(
                "After clause inclusive flag must be a boolean",
            ));
        };
        let mut out = Vec::with_capacity(cursor.len());
        for (i, value) in cursor.iter().enumerate() {
            let mut value = value.clone();
            if let Some(schema) = self.schema {
                let path = order[i]
                    .get(0)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let segs: Vec<&str> = path.split('.').collect();
                for (j, attr) in walk(schema, collection, &segs).into_iter().enumerate() {
                    let Some(attr) = attr else {
                        return Err(invalid_after(&format!(
                            "Attribute {path} not found in schema"
                        )));
                    };
                    let Attr::Type(t) = attr else {
                        return Err(invalid_after(&format!(
                            "Attribute {path} is not allowed in after clause because it is relational"
                        )));
                    };
                    if j + 1 == segs.len() {
                        if matches!(t, DataType::Set { .. } | DataType::Record { .. }) {
                            return Err(invalid_after(&format!(
                                "Attribute {path} is not allowed in after clause because the type is not sortable"
                            )));
                        }
                        value = match crate::types::encode::encode(t, &value) {
                            Ok(v) => v.unwrap_or(Value::Null),
                            Err(e) if e.status == 500 => return Err(e),
                            Err(e) => {
                                return Err(invalid_after(&format!(
                                    "Error converting cursor value for attribute {path}: {}",
                                    e.message()
                                )));
                            }
                        };
                    }
                }
            }
            out.push(value);
        }
        Ok(Some((out, inclusive)))
    }
}

/// `prepareQueryLimit`: a falsy limit is none, except `0`, which is kept.
fn limit(q: &Value) -> Result<Option<f64>, TriplitError> {
    match js_get(q, "limit") {
        Some(Value::Number(n)) => {
            let n = n.as_f64().unwrap_or(0.0);
            if n == 0.0 {
                Ok(Some(0.0))
            } else if n < 0.0 {
                Err(invalid_limit("Limit must be a positive number"))
            } else {
                Ok(Some(n))
            }
        }
        Some(v) if js_truthy(v) => Err(invalid_limit("Limit must be a number")),
        _ => Ok(None),
    }
}

/// `mergeQueries`: the extension's keys override the relation's, and
/// `where`/`select` concatenate.
pub(super) fn merge_queries(
    a: &Map<String, Value>,
    b: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let Some(b) = b else {
        return a.clone();
    };
    let concat = |key: &str| -> Option<Value> {
        let (x, y) = (a.get(key), b.get(key));
        if !x.is_some_and(js_truthy) && !y.is_some_and(js_truthy) {
            return None;
        }
        let items = |v: Option<&Value>| match v {
            Some(Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        };
        Some(Value::Array([items(x), items(y)].concat()))
    };
    let (where_, select) = (concat("where"), concat("select"));
    let mut out = a.clone();
    for (k, v) in b {
        out.insert(k.clone(), v.clone());
    }
    for (key, v) in [("where", where_), ("select", select)] {
        match v {
            Some(v) => out.insert(key.into(), v),
            None => out.remove(key),
        };
    }
    out
}

/// `validateIdentifier`: the first segment the validator rejects, as
/// `(path up to it, reason)`.
fn validate_identifier(
    schema: &Schema,
    collection: &str,
    identifier: &str,
    validator: impl Fn(Option<Attr<'_>>, usize, usize) -> Option<&'static str>,
) -> Option<(String, &'static str)> {
    let segs: Vec<&str> = identifier.split('.').collect();
    for (i, attr) in walk(schema, collection, &segs).into_iter().enumerate() {
        if let Some(reason) = validator(attr, i, segs.len()) {
            return Some((segs[..=i].join("."), reason));
        }
    }
    None
}
