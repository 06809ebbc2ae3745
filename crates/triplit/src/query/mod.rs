//! The Triplit query language: parsing a `CollectionQuery` and running it
//! over a collection's entities.
//!
//! Supported here: `where` statements over the entity's own attributes
//! (every operator, with upstream's null rules), boolean literals,
//! `and`/`or` groups, `order` (stable; ties keep id order), `after`
//! cursors, `limit` and `select`. Relations, `exists`, `include` and
//! variables are refused with a clear error until the full preparation
//! step lands.

mod compare;
mod filter;

use std::cmp::Ordering;

use serde_json::{Map, Value};

pub use compare::{compare_js_str, compare_tuple, compare_value};
pub use filter::{Filter, evaluate, get_path};

use crate::TriplitError;

/// One `order` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    /// Attribute path.
    pub path: Vec<String>,
    /// `DESC` when true.
    pub descending: bool,
}

/// A parsed `CollectionQuery`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The collection queried.
    pub collection: String,
    /// AND-ed filters.
    pub filters: Vec<Filter>,
    /// Sort keys.
    pub order: Vec<OrderBy>,
    /// Maximum number of rows.
    pub limit: Option<usize>,
    /// Cursor: values per order key, and whether the cursor row itself is included.
    pub after: Option<(Vec<Value>, bool)>,
    /// Projection applied by `/fetch`.
    pub select: Option<Vec<String>>,
}

fn bad(name: &'static str, base: &str, context: String) -> TriplitError {
    TriplitError::new(name, 400, base, Some(context))
}

impl Query {
    /// Parses the JSON of a `CollectionQuery`.
    pub fn parse(v: &Value) -> Result<Query, TriplitError> {
        let obj = v.as_object().ok_or_else(|| {
            bad(
                "TriplitError",
                "Invalid query",
                format!("a query must be an object, got {v}"),
            )
        })?;
        let collection = obj
            .get("collectionName")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                TriplitError::invalid_collection_name(
                    &obj.get("collectionName")
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "undefined".into()),
                    Some("Collection name must be defined".into()),
                )
            })?
            .to_string();
        if obj
            .get("include")
            .is_some_and(|i| !i.is_null() && i.as_object().is_none_or(|m| !m.is_empty()))
        {
            return Err(bad(
                "InvalidQueryInclusionError",
                "Invalid inclusion",
                "include is not supported by this Ferry build yet".into(),
            ));
        }
        let filters = Filter::parse_where(obj.get("where"))?;
        let order = match obj.get("order") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|o| {
                    let pair = o.as_array().filter(|p| p.len() == 2);
                    match pair.map(|p| (p[0].as_str(), p[1].as_str())) {
                        Some((Some(path), Some(dir))) if dir == "ASC" || dir == "DESC" => {
                            Ok(OrderBy {
                                path: path.split('.').map(str::to_string).collect(),
                                descending: dir == "DESC",
                            })
                        }
                        _ => Err(bad(
                            "InvalidOrderClauseError",
                            "Invalid order clause",
                            format!("{o}"),
                        )),
                    }
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(bad(
                    "InvalidOrderClauseError",
                    "Invalid order clause",
                    other.to_string(),
                ));
            }
        };
        let limit = match obj.get("limit") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f >= 0.0) => {
                Some(n.as_f64().unwrap_or(0.0).floor() as usize)
            }
            Some(other) => {
                return Err(bad(
                    "InvalidQueryLimitError",
                    "Invalid limit",
                    format!("limit must be a non-negative number, got {other}"),
                ));
            }
        };
        let after = match obj.get("after") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) if a.len() == 2 => {
                let cursor = a[0].as_array().cloned().ok_or_else(|| {
                    bad(
                        "InvalidQueryAfterError",
                        "Invalid after clause",
                        "the cursor must be an array".into(),
                    )
                })?;
                let inclusive = a[1].as_bool().ok_or_else(|| {
                    bad(
                        "InvalidQueryAfterError",
                        "Invalid after clause",
                        "inclusive must be a boolean".into(),
                    )
                })?;
                if order.is_empty() {
                    return Err(TriplitError::new(
                        "AfterClauseWithNoOrderError",
                        400,
                        "An after clause requires an order clause.",
                        None,
                    ));
                }
                if cursor.len() != order.len() {
                    return Err(bad(
                        "InvalidQueryAfterError",
                        "Invalid after clause",
                        "the cursor needs one value per order entry".into(),
                    ));
                }
                Some((cursor, inclusive))
            }
            Some(other) => {
                return Err(bad(
                    "InvalidQueryAfterError",
                    "Invalid after clause",
                    other.to_string(),
                ));
            }
        };
        let select = match obj.get("select") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|s| {
                        s.as_str().map(str::to_string).ok_or_else(|| {
                            bad(
                                "InvalidSelectClauseError",
                                "Invalid select clause",
                                s.to_string(),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(other) => {
                return Err(bad(
                    "InvalidSelectClauseError",
                    "Invalid select clause",
                    other.to_string(),
                ));
            }
        };
        Ok(Query {
            collection,
            filters,
            order,
            limit,
            after,
            select,
        })
    }

    /// Whether `entity` passes every filter.
    pub fn matches(&self, entity: &Map<String, Value>) -> Result<bool, TriplitError> {
        for f in &self.filters {
            if !f.matches(entity)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn compare_rows(&self, a: &Map<String, Value>, b: &Map<String, Value>) -> Ordering {
        for o in &self.order {
            let null = Value::Null;
            let av = get_path(a, &o.path).unwrap_or(&null);
            let bv = get_path(b, &o.path).unwrap_or(&null);
            let dir = compare_value(av, bv);
            let dir = if o.descending { dir.reverse() } else { dir };
            if dir != Ordering::Equal {
                return dir;
            }
        }
        Ordering::Equal
    }

    fn after_cursor(&self, row: &Map<String, Value>) -> bool {
        let Some((cursor, inclusive)) = &self.after else {
            return true;
        };
        for (o, c) in self.order.iter().zip(cursor) {
            let null = Value::Null;
            let v = get_path(row, &o.path).unwrap_or(&null);
            let dir = compare_value(v, c);
            let dir = if o.descending { dir.reverse() } else { dir };
            match dir {
                Ordering::Greater => return true,
                Ordering::Less => return false,
                Ordering::Equal => {}
            }
        }
        *inclusive
    }

    /// Filters, sorts, applies the cursor and the limit. `rows` must come
    /// in id storage order (ties keep it: the sort is stable).
    pub fn run(
        &self,
        rows: impl IntoIterator<Item = Map<String, Value>>,
    ) -> Result<Vec<Map<String, Value>>, TriplitError> {
        if self.limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for row in rows {
            if self.matches(&row)? {
                out.push(row);
            }
        }
        if !self.order.is_empty() {
            out.sort_by(|a, b| self.compare_rows(a, b));
        }
        if self.after.is_some() {
            out.retain(|r| self.after_cursor(r));
        }
        if let Some(limit) = self.limit {
            out.truncate(limit);
        }
        Ok(out)
    }
}

/// Projects `entity` onto `select` paths (`a.b` keeps the nested value).
pub fn project(entity: &Map<String, Value>, select: &[String]) -> Map<String, Value> {
    let mut out = Map::new();
    for path in select {
        let segs: Vec<String> = path.split('.').map(str::to_string).collect();
        let Some(v) = get_path(entity, &segs) else {
            continue;
        };
        let mut target = &mut out;
        for seg in &segs[..segs.len() - 1] {
            let entry = target
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            target = entry.as_object_mut().expect("made an object above");
        }
        target.insert(segs[segs.len() - 1].clone(), v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(v: Value) -> Vec<Map<String, Value>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect()
    }

    fn ids(r: &[Map<String, Value>]) -> Vec<&str> {
        r.iter().map(|e| e["id"].as_str().unwrap()).collect()
    }

    #[test]
    fn order_is_stable_and_limit_zero_is_empty() {
        let data = rows(json!([{"id":"a","s":2},{"id":"b","s":1},{"id":"c","s":2},{"id":"d"}]));
        let q = Query::parse(&json!({"collectionName":"t","order":[["s","DESC"]]})).unwrap();
        assert_eq!(ids(&q.run(data.clone()).unwrap()), ["a", "c", "b", "d"]);
        let q =
            Query::parse(&json!({"collectionName":"t","order":[["s","ASC"]],"limit":2})).unwrap();
        assert_eq!(ids(&q.run(data.clone()).unwrap()), ["d", "b"]);
        let q = Query::parse(&json!({"collectionName":"t","limit":0})).unwrap();
        assert!(q.run(data).unwrap().is_empty());
    }

    #[test]
    fn after_cursor_inclusive_and_exclusive() {
        let data = rows(json!([{"id":"a","s":1},{"id":"b","s":2},{"id":"c","s":3}]));
        let q =
            Query::parse(&json!({"collectionName":"t","order":[["s","ASC"]],"after":[[2],false]}))
                .unwrap();
        assert_eq!(ids(&q.run(data.clone()).unwrap()), ["c"]);
        let q =
            Query::parse(&json!({"collectionName":"t","order":[["s","ASC"]],"after":[[2],true]}))
                .unwrap();
        assert_eq!(ids(&q.run(data).unwrap()), ["b", "c"]);
    }

    #[test]
    fn invalid_queries_get_upstream_error_names() {
        let err = |v: Value| Query::parse(&v).unwrap_err().name;
        assert_eq!(err(json!({"where":[]})), "InvalidCollectionNameError");
        assert_eq!(
            err(json!({"collectionName":"t","limit":-1})),
            "InvalidQueryLimitError"
        );
        assert_eq!(
            err(json!({"collectionName":"t","after":[[1],true]})),
            "AfterClauseWithNoOrderError"
        );
        assert_eq!(
            err(json!({"collectionName":"t","order":[["a","UP"]]})),
            "InvalidOrderClauseError"
        );
    }

    #[test]
    fn projection_keeps_nested_paths() {
        let e = json!({"id":"a","meta":{"prio":1,"x":2},"t":"x"});
        let p = project(
            e.as_object().unwrap(),
            &["t".into(), "meta.prio".into(), "missing".into()],
        );
        assert_eq!(Value::Object(p), json!({"t":"x","meta":{"prio":1}}));
    }
}
