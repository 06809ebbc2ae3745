//! Query variables: `$scope.path` strings and their scoping rules.
//!
//! Static scopes (`$global`, `$session` with its alias `$token`, `$role`,
//! `$query`, `$prev`) are substituted while preparing. A numeric scope
//! `$N.path` refers to the entity stack at run time: `$1` is the parent
//! of the subquery, `$2` its parent, and so on. A variable with no
//! recognised scope (`$x`, `$x.y`) is "unscoped"; preparation reads it as
//! `$1.x` in queries and relations and as `$0.x` in permissions.

use serde_json::Value;

use crate::jsnum::is_js_whitespace;

/// The scope of a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `$global`.
    Global,
    /// `$session` or `$token`.
    Session,
    /// `$role`.
    Role,
    /// `$query`.
    Query,
    /// `$prev`.
    Prev,
    /// `$N`: the entity `N` levels up the stack.
    Relative(i64),
}

impl Scope {
    /// The key static variables are stored under.
    pub fn key(self) -> Option<&'static str> {
        Some(match self {
            Scope::Global => "$global",
            Scope::Session => "$session",
            Scope::Role => "$role",
            Scope::Query => "$query",
            Scope::Prev => "$prev",
            Scope::Relative(_) => return None,
        })
    }
}

/// A variable split into its scope (`None` when unscoped) and path.
#[derive(Debug, Clone, PartialEq)]
pub struct Components {
    /// The scope, `None` for an unscoped variable.
    pub scope: Option<Scope>,
    /// The path after the scope.
    pub path: Vec<String>,
}

impl Components {
    /// Back to a variable string (`$1.a.b`).
    pub fn to_var(&self) -> String {
        let head = match self.scope {
            Some(Scope::Relative(n)) => n.to_string(),
            Some(s) => s.key().unwrap_or("$").trim_start_matches('$').to_string(),
            None => String::new(),
        };
        let mut out = format!("${head}");
        for p in &self.path {
            out.push('.');
            out.push_str(p);
        }
        out
    }
}

/// `parseInt(s, 10)` for the small integers a scope holds.
fn js_parse_int(s: &str) -> Option<i64> {
    let t = s.trim_start_matches(is_js_whitespace);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits.bytes().take_while(u8::is_ascii_digit).count();
    if end == 0 {
        return None;
    }
    let n = digits[..end].bytes().fold(0i64, |acc, d| {
        acc.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    Some(if neg { -n } else { n })
}

fn parse_scope(s: &str) -> Option<Scope> {
    Some(match s {
        "$global" => Scope::Global,
        "$session" | "$token" => Scope::Session,
        "$role" => Scope::Role,
        "$query" => Scope::Query,
        "$prev" => Scope::Prev,
        _ => Scope::Relative(js_parse_int(s.get(1..).unwrap_or(""))?),
    })
}

/// Upstream's `getVariableComponents`.
pub fn components(var: &str) -> Components {
    let mut parts: Vec<String> = var.split('.').map(str::to_string).collect();
    if parts.len() > 1
        && let Some(scope) = parse_scope(&parts[0])
    {
        parts.remove(0);
        return Components {
            scope: Some(scope),
            path: parts,
        };
    }
    // Unscoped: the first component loses its `$`.
    if let Some(first) = parts.first_mut() {
        *first = first.chars().skip(1).collect();
    }
    Components {
        scope: None,
        path: parts,
    }
}

/// Whether `v` names a variable (a string starting with `$`).
pub fn is_variable(v: &Value) -> bool {
    matches!(v, Value::String(s) if s.starts_with('$'))
}

/// `safeIncrementSubqueryVar`: a relative variable moves `step` levels
/// further up; anything else is unchanged.
pub fn increment(var: &str, step: i64) -> String {
    let c = components(var);
    match c.scope {
        Some(Scope::Relative(n)) => Components {
            scope: Some(Scope::Relative(n.saturating_add(step))),
            path: c.path,
        }
        .to_var(),
        _ => var.to_string(),
    }
}

/// `safeIncrementQueryWhere` over raw `where` JSON. A relationship-exists
/// filter is pushed twice (incremented, then as given), like upstream.
pub fn increment_where(filters: &[Value], step: i64) -> Vec<Value> {
    let mut out = Vec::new();
    for f in filters {
        match f {
            Value::Array(parts) if is_statement(parts) => {
                let mut parts = parts.clone();
                if let Value::String(s) = &parts[2]
                    && s.starts_with('$')
                {
                    parts[2] = Value::String(increment(s, step));
                }
                out.push(Value::Array(parts));
            }
            Value::Object(m) if m.contains_key("mod") => {
                let mut m = m.clone();
                if let Some(Value::Array(inner)) = m.get("filters") {
                    let inner = increment_where(inner, step);
                    m.insert("filters".into(), Value::Array(inner));
                }
                out.push(Value::Object(m));
            }
            Value::Object(m)
                if m.get("exists")
                    .is_some_and(|e| e.get("collectionName").is_some()) =>
            {
                let mut m = m.clone();
                if let Some(Value::Object(q)) = m.get("exists") {
                    m.insert("exists".into(), Value::Object(increment_query(q, step)));
                }
                out.push(Value::Object(m));
            }
            Value::Object(m) if m.get("exists").is_some_and(|e| e.get("_extends").is_some()) => {
                let mut m = m.clone();
                if let Some(Value::Object(q)) = m.get("exists") {
                    let mut q = q.clone();
                    let inner = q
                        .get("where")
                        .and_then(Value::as_array)
                        .map(|w| increment_where(w, step));
                    match inner {
                        Some(w) => q.insert("where".into(), Value::Array(w)),
                        None => q.remove("where"),
                    };
                    m.insert("exists".into(), Value::Object(q));
                }
                out.push(Value::Object(m));
                out.push(f.clone());
            }
            other => out.push(other.clone()),
        }
    }
    out
}

/// `safeIncrementQueryVars` over a raw query object.
pub fn increment_query(
    q: &serde_json::Map<String, Value>,
    step: i64,
) -> serde_json::Map<String, Value> {
    let mut q = q.clone();
    if let Some(Value::Array(w)) = q.get("where") {
        let w = increment_where(w, step);
        q.insert("where".into(), Value::Array(w));
    }
    q
}

/// `isFilterStatement` on raw JSON.
pub fn is_statement(parts: &[Value]) -> bool {
    parts.len() == 3 && parts[0].is_string() && parts[1].is_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn components_follow_upstream() {
        let c = components("$token.sub");
        assert_eq!(
            (c.scope, c.path),
            (Some(Scope::Session), vec!["sub".to_string()])
        );
        let c = components("$x");
        assert_eq!((c.scope, c.path), (None, vec!["x".to_string()]));
        let c = components("$x.y");
        assert_eq!(
            (c.scope, c.path),
            (None, vec!["x".to_string(), "y".to_string()])
        );
        let c = components("$2.a.b");
        assert_eq!(c.scope, Some(Scope::Relative(2)));
        assert_eq!(c.to_var(), "$2.a.b");
        assert_eq!(components("$1abc.z").scope, Some(Scope::Relative(1)));
        assert_eq!(components("$1").scope, None);
    }

    #[test]
    fn increments_only_relative_variables() {
        assert_eq!(increment("$1.id", 1), "$2.id");
        assert_eq!(increment("$id", 1), "$id");
        assert_eq!(increment("$session.x", 3), "$session.x");
        let w = increment_where(
            &[
                json!(["a", "=", "$1.x"]),
                json!({"mod":"or","filters":[["b","=","$2.y"]]}),
                json!(true),
            ],
            1,
        );
        assert_eq!(
            w,
            vec![
                json!(["a", "=", "$2.x"]),
                json!({"mod":"or","filters":[["b","=","$3.y"]]}),
                json!(true)
            ]
        );
    }
}
