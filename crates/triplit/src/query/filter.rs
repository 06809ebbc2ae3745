//! Evaluating `where` filters against an entity.
//!
//! This covers statements over the entity's own attributes, boolean
//! literals and `and`/`or` groups with upstream's null/undefined rules.
//! Relations, `exists` and variables are resolved before evaluation (the
//! full preparation step arrives with the query issue).

use serde_json::{Map, Value};

use super::compare::compare_value;
use crate::TriplitError;
use crate::jsnum::js_parse_float;

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
                "Subquery filters are not supported by this Ferry build yet.",
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
            Filter::Statement { path, op, value } => evaluate(get_path(entity, path), op, value),
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

fn empty(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null))
}

fn infer_set_value(key: &str, filter: &Value) -> Value {
    match filter {
        Value::Bool(_) => Value::Bool(key == "true"),
        Value::Number(_) => serde_json::Number::from_f64(js_parse_float(key))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        _ => Value::String(key.to_string()),
    }
}

fn strict_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(_) | Value::Object(_), _) => false,
        _ => a == b,
    }
}

/// Upstream's `evaluateFilterStatement`.
pub fn evaluate(value: Option<&Value>, op: &str, filter: &Value) -> Result<bool, TriplitError> {
    let filter_empty = filter.is_null();
    if let Some(set_op) = op.strip_prefix("SET_") {
        let items: Vec<&String> = match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(m)) => m
                .iter()
                .filter(|(_, live)| !matches!(live, Value::Bool(false) | Value::Null))
                .map(|(k, _)| k)
                .collect(),
            Some(other) => {
                return Err(TriplitError::new(
                    "InvalidFilterError",
                    400,
                    format!("The operator requires a set value, but got {other}"),
                    None,
                ));
            }
        };
        return Ok(match set_op {
            "has" => items
                .iter()
                .any(|k| strict_eq(&infer_set_value(k, filter), filter)),
            "!has" => !items
                .iter()
                .any(|k| strict_eq(&infer_set_value(k, filter), filter)),
            "isDefined" => truthy(filter) != empty(value),
            _ => {
                let mut any = false;
                for k in items {
                    if evaluate(Some(&infer_set_value(k, filter)), set_op, filter)? {
                        any = true;
                        break;
                    }
                }
                any
            }
        });
    }
    let v_empty = empty(value);
    let null = Value::Null;
    let v = value.unwrap_or(&null);
    Ok(match op {
        "=" => (v_empty && filter_empty) || compare_value(v, filter).is_eq(),
        "!=" => {
            if v_empty && filter_empty {
                false
            } else {
                !compare_value(v, filter).is_eq()
            }
        }
        ">" => !v_empty && (filter_empty || compare_value(v, filter).is_gt()),
        ">=" => match (v_empty, filter_empty) {
            (true, true) => true,
            (true, false) => false,
            (false, true) => true,
            (false, false) => compare_value(v, filter).is_ge(),
        },
        "<" => !filter_empty && (v_empty || compare_value(v, filter).is_lt()),
        "<=" => match (v_empty, filter_empty) {
            (true, true) => true,
            (_, true) => false,
            (true, false) => true,
            (false, false) => compare_value(v, filter).is_le(),
        },
        "like" => !filter_empty && !v_empty && like(v, filter),
        "nlike" => filter_empty || v_empty || !like(v, filter),
        "in" => !v_empty && !filter_empty && member(v, filter),
        "nin" => v_empty || filter_empty || !member(v, filter),
        "isDefined" => {
            if truthy(filter) {
                !v_empty
            } else {
                v_empty
            }
        }
        _ => {
            return Err(TriplitError::new(
                "InvalidFilterError",
                400,
                format!("The operator {op} is not recognized."),
                None,
            ));
        }
    })
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

fn member(v: &Value, filter: &Value) -> bool {
    match filter {
        Value::Array(items) => items.iter().any(|i| strict_eq(i, v)),
        Value::Object(m) => match v {
            Value::String(s) => m.get(s).is_some_and(truthy),
            Value::Number(n) => m
                .get(&crate::jsnum::js_number_to_string(
                    n.as_f64().unwrap_or(f64::NAN),
                ))
                .is_some_and(truthy),
            Value::Bool(b) => m.get(if *b { "true" } else { "false" }).is_some_and(truthy),
            _ => false,
        },
        _ => false,
    }
}

/// Upstream's `ilike`: an anchored, case-insensitive pattern where `%` is
/// any run and `_` one character, neither matching a line terminator.
fn like(v: &Value, pattern: &Value) -> bool {
    let (Some(text), Some(pattern)) = (js_to_string(v), js_to_string(pattern)) else {
        return false;
    };
    let text: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let pattern: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    glob(&text, &pattern)
}

fn js_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(crate::jsnum::js_number_to_string(n.as_f64()?)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

fn glob(text: &[char], pattern: &[char]) -> bool {
    // Dynamic programming over (text position, pattern position).
    let (n, m) = (text.len(), pattern.len());
    let mut dp = vec![false; n + 1];
    dp[0] = true;
    for &p in pattern.iter().take(m) {
        let mut next = vec![false; n + 1];
        match p {
            '%' => {
                // `.*` where `.` is any character but a line terminator.
                let mut reachable = false;
                for i in 0..=n {
                    reachable = dp[i] || (reachable && i > 0 && !is_line_terminator(text[i - 1]));
                    next[i] = reachable;
                }
            }
            '_' => {
                for i in 1..=n {
                    next[i] = dp[i - 1] && !is_line_terminator(text[i - 1]);
                }
            }
            c => {
                for i in 1..=n {
                    next[i] = dp[i - 1] && text[i - 1] == c;
                }
            }
        }
        dp = next;
    }
    dp[n]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(v: Value, op: &str, f: Value) -> bool {
        let v = if v == json!("__missing__") {
            None
        } else {
            Some(v)
        };
        evaluate(v.as_ref(), op, &f).unwrap()
    }

    #[test]
    fn null_rules() {
        assert!(eval(json!(null), "=", json!(null)));
        assert!(eval(json!("__missing__"), "=", json!(null)));
        assert!(!eval(json!(null), "!=", json!(null)));
        assert!(!eval(json!(null), ">", json!(1)));
        assert!(eval(json!(null), "<", json!(1)));
        assert!(eval(json!(1), ">", json!(null)));
        assert!(!eval(json!(1), "<", json!(null)));
        assert!(eval(json!(null), ">=", json!(null)));
        assert!(!eval(json!(null), "in", json!(["a"])));
        assert!(eval(json!(null), "nin", json!(["a"])));
    }

    #[test]
    fn like_is_anchored_case_insensitive_and_stops_at_newlines() {
        assert!(eval(json!("Hello World"), "like", json!("hello%")));
        assert!(!eval(json!("Hello World"), "like", json!("hello")));
        assert!(eval(json!("cat"), "like", json!("c_t")));
        assert!(!eval(json!("a\nx"), "like", json!("%x%")));
        assert!(eval(json!("a.b"), "like", json!("a.b")));
        assert!(!eval(json!("axb"), "like", json!("a.b")));
        assert!(eval(json!("x"), "nlike", json!(null)));
    }

    #[test]
    fn set_operators() {
        let tags = json!({"a": true, "b": false, "3": true});
        assert!(eval(tags.clone(), "SET_has", json!("a")));
        assert!(!eval(tags.clone(), "SET_has", json!("b")));
        assert!(eval(tags.clone(), "SET_has", json!(3)));
        assert!(eval(tags.clone(), "SET_!has", json!("b")));
        assert!(eval(json!({}), "SET_!has", json!("b")));
        assert!(eval(tags.clone(), "SET_isDefined", json!(true)));
        assert!(eval(json!({"x": false}), "SET_isDefined", json!(true)));
        assert!(eval(json!(null), "SET_isDefined", json!(false)));
        assert!(eval(tags.clone(), "SET_<", json!("b")));
        assert!(!eval(tags, "SET_>", json!("a")));
    }

    #[test]
    fn in_and_equality_across_numbers() {
        assert!(eval(json!(1.0), "=", json!(1)));
        assert!(eval(json!(2), "in", json!([1, 2])));
        assert!(eval(json!("a"), "in", json!({"a": true})));
        assert!(!eval(json!("a"), "nin", json!(["a"])));
    }
}
