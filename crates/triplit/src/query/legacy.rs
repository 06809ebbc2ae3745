//! The first, simple query type: `where` statements over an entity's own
//! attributes, `order`, `after`, `limit` and `select`, without relations,
//! includes, variables or permissions.
//!
//! Kept for code written against it; new code uses [`super::prepare`] and
//! [`super::execute`], which implement the whole language.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::compare::compare_value;
use super::filter::evaluate;
use super::operand::Operand;
use crate::TriplitError;

fn invalid_where(context: String) -> TriplitError {
    TriplitError::new(
        "InvalidWhereClauseError",
        400,
        "Invalid where clause",
        Some(context),
    )
}

/// A parsed `where` filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `true` / `false`.
    Bool(bool),
    /// `[path, op, value]`.
    Statement {
        /// The attribute path, split on `.`.
        path: Vec<String>,
        /// The operator.
        op: String,
        /// The compared value.
        value: Value,
    },
    /// `{mod: "and", filters}`.
    And(Vec<Filter>),
    /// `{mod: "or", filters}`.
    Or(Vec<Filter>),
}

fn invalid_where(context: String) -> TriplitError {
    TriplitError::new(
        "InvalidWhereClauseError",
        400,
        "Invalid where clause",
        Some(context),
    )
}

impl Filter {
    /// Parses one JSON filter.
    pub fn parse(v: &Value) -> Result<Filter, TriplitError> {
        match v {
            Value::Bool(b) => Ok(Filter::Bool(*b)),
            Value::Array(parts) if parts.len() == 3 => {
                let path = parts[0]
                    .as_str()
                    .ok_or_else(|| invalid_where(format!("filter path must be a string: {v}")))?;
                let op = parts[1].as_str().ok_or_else(|| {
                    invalid_where(format!("filter operator must be a string: {v}"))
                })?;
                Ok(Filter::Statement {
                    path: path.split('.').map(str::to_string).collect(),
                    op: op.to_string(),
                    value: parts[2].clone(),
                })
            }
            Value::Object(m) if m.contains_key("mod") => {
                let filters = m
                    .get("filters")
                    .and_then(Value::as_array)
                    .ok_or_else(|| invalid_where(format!("filter group needs filters: {v}")))?
                    .iter()
                    .map(Filter::parse)
                    .collect::<Result<Vec<_>, _>>()?;
                match m.get("mod").and_then(Value::as_str) {
                    Some("and") => Ok(Filter::And(filters)),
                    Some("or") => Ok(Filter::Or(filters)),
                    _ => Err(invalid_where(format!("unknown filter group: {v}"))),
                }
            }
            Value::Object(m) if m.contains_key("exists") => Err(TriplitError::new(
                "InvalidFilterError",
                400,
                "The legacy query type does not evaluate subquery filters; use query::prepare.",
                Some(v.to_string()),
            )),
            _ => Err(invalid_where(format!("unrecognised filter: {v}"))),
        }
    }

    /// Parses a `where` list (AND-ed).
    pub fn parse_where(v: Option<&Value>) -> Result<Vec<Filter>, TriplitError> {
        match v {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(Filter::parse).collect(),
            Some(other) => Err(invalid_where(format!("where must be an array: {other}"))),
        }
    }

    /// Whether `entity` satisfies the filter.
    pub fn matches(&self, entity: &Map<String, Value>) -> Result<bool, TriplitError> {
        match self {
            Filter::Bool(b) => Ok(*b),
            Filter::And(fs) => {
                for f in fs {
                    if !f.matches(entity)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Filter::Or(fs) => {
                for f in fs {
                    if f.matches(entity)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Filter::Statement { path, op, value } => evaluate(
                get_path(entity, path),
                op,
                &Operand::from_prepared(Some(value.clone())),
            ),
        }
    }
}

/// The value at `path` (`a.b.0`), `None` when missing.
pub fn get_path<'a>(entity: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = entity.get(first)?;
    for seg in rest {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

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

