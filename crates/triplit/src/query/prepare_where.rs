//! Preparing `where` filters (upstream's `prepareQueryFilters` and
//! `transformAndValidateFilter`), read and write permissions included.
//!
//! - A path through a relation (`author.name`) becomes an `exists` over
//!   the relation's query with the rest of the path as its filter.
//! - `{exists: {_extends: 'a.b', where}}` walks the relations the same way.
//! - A relational variable value (`$1.author.name`) becomes an `exists`
//!   over that relation with the operator mirrored (`flipOperator`).
//! - Static variables are substituted (a missing one is `undefined`), an
//!   unscoped `$x` is `$1.x`, set paths get the `SET_` operator prefix and
//!   arrays become sets.
//! - With a permission to apply, each role's filters (unscoped variables
//!   read as `$0.x`, `$role` bound) are ORed and appended; no matching
//!   role appends `false`, except for `postUpdate`.

use serde_json::{Map, Value};

use super::ast::{Exists, Filter, Stmt};
use super::errors::{engine, invalid_filter, invalid_where};
use super::filter::value_at;
use super::operand::Operand;
use super::prepare::{Opts, Prep, Vars};
use super::schema_path::{Attr, walk};
use super::variables::{Scope, components, increment, increment_query, is_statement, is_variable};
use crate::TriplitError;
use crate::permissions::Operation;
use crate::schema::DataType;
use crate::types::js::{js_get, js_truthy};
use crate::types::supported_operators;

impl Prep<'_> {
    /// `prepareQueryFilters`: the `where` of `q` plus its permission clause.
    pub fn filters(
        &mut self,
        q: &Value,
        collection: &str,
        vars: &Vars,
        opts: &Opts,
    ) -> Result<Option<Vec<Filter>>, TriplitError> {
        let input = match js_get(q, "where") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(w)) => w.clone(),
            Some(other) => return Err(invalid_where(other, "Where clause must be an array")),
        };
        let mut out = self.transform_all(&input, collection, vars, opts)?;
        if let Some(op) = opts.apply
            && (!opts.expanding || !opts.perm_stack.iter().any(|c| c == collection))
            && let Some(clause) = self.permission_clause(op, collection, vars, opts)?
        {
            out.push(clause);
        }
        Ok(if out.is_empty() { None } else { Some(out) })
    }

    /// The permission clause of `collection` for `op`, `None` when the
    /// collection has no (truthy) `permissions`.
    pub fn permission_clause(
        &mut self,
        op: Operation,
        collection: &str,
        vars: &Vars,
        opts: &Opts,
    ) -> Result<Option<Filter>, TriplitError> {
        let Some(perms) = self
            .schema
            .and_then(|s| s.collection(collection))
            .and_then(|c| c.permissions.as_ref())
            .filter(|p| js_truthy(p))
        else {
            return Ok(None);
        };
        let perms = perms.clone();
        let mut groups: Vec<Filter> = Vec::new();
        let mut matched = false;
        let roles = self.roles.to_vec();
        for role in &roles {
            let filter = js_get(&perms, &role.key)
                .and_then(|p| js_get(p, op.key()))
                .and_then(|p| js_get(p, "filter"))
                .filter(|f| js_truthy(f));
            let Some(filter) = filter else { continue };
            let Value::Array(filter) = filter else {
                return Err(invalid_filter(
                    "Invalid permission filter format, expected array",
                ));
            };
            matched = true;
            if filter.is_empty() {
                groups.push(Filter::group(true, vec![Filter::Bool(false)]));
                continue;
            }
            let mut next = opts.clone();
            if op.is_write() {
                next.apply = Some(Operation::Read);
            }
            next.expanding = true;
            next.perm_stack.push(collection.to_string());
            let mut role_vars = vars.clone();
            role_vars.insert("$role".into(), Value::Object(role.vars.clone()));
            let prefixed = prefix_permission_variables(filter);
            let prepared = self.transform_all(&prefixed, collection, &role_vars, &next)?;
            groups.push(Filter::group(true, prepared));
        }
        if !matched && op != Operation::PostUpdate {
            groups = vec![Filter::group(true, vec![Filter::Bool(false)])];
        }
        Ok(Some(Filter::group(false, groups)))
    }

    fn transform_all(
        &mut self,
        filters: &[Value],
        collection: &str,
        vars: &Vars,
        opts: &Opts,
    ) -> Result<Vec<Filter>, TriplitError> {
        filters
            .iter()
            .map(|f| self.transform(f, collection, vars, opts))
            .collect()
    }

    /// `transformAndValidateFilter`.
    fn transform(
        &mut self,
        f: &Value,
        collection: &str,
        vars: &Vars,
        opts: &Opts,
    ) -> Result<Filter, TriplitError> {
        match f {
            Value::Bool(b) => Ok(Filter::Bool(*b)),
            Value::Object(m) if m.contains_key("mod") => {
                let and = match m.get("mod") {
                    Some(Value::String(s)) if s == "and" => true,
                    Some(Value::String(s)) if s == "or" => false,
                    other => {
                        return Err(invalid_filter(format!(
                            "Invalid filter group mod '{}'",
                            crate::types::js::js_string(other)
                        )));
                    }
                };
                let Some(Value::Array(inner)) = m.get("filters") else {
                    return Err(invalid_filter("A filter group needs an array of filters"));
                };
                Ok(Filter::group(
                    and,
                    self.transform_all(inner, collection, vars, opts)?,
                ))
            }
            Value::Array(parts) if is_statement(parts) => {
                self.statement(parts, collection, vars, opts)
            }
            Value::Object(m) if m.contains_key("exists") => {
                let Some(Value::Object(exists)) = m.get("exists") else {
                    return Err(invalid_filter("Filter is not valid format"));
                };
                if exists.contains_key("_extends") {
                    self.relationship_exists(exists, collection, vars, opts)
                } else if exists.contains_key("collectionName") {
                    self.exists(exists, vars, opts)
                } else {
                    Err(invalid_filter("Filter is not valid format"))
                }
            }
            _ => Err(invalid_filter("Filter is not valid format")),
        }
    }

    /// An `exists` over a subquery: only its collection and `where` count.
    fn exists(
        &mut self,
        sub: &Map<String, Value>,
        vars: &Vars,
        opts: &Opts,
    ) -> Result<Filter, TriplitError> {
        let mut q = Map::new();
        q.insert(
            "collectionName".into(),
            sub.get("collectionName").cloned().unwrap_or(Value::Null),
        );
        if let Some(w) = sub.get("where") {
            q.insert("where".into(), w.clone());
        }
        let query = self.query(&Value::Object(q), vars, opts)?;
        Ok(Filter::Exists(Box::new(Exists {
            query,
            strict: opts.expanding,
        })))
    }

    fn exists_with(
        &mut self,
        mut sub: Map<String, Value>,
        extra: Vec<Value>,
        vars: &Vars,
        opts: &Opts,
    ) -> Result<Filter, TriplitError> {
        let mut w = match sub.get("where") {
            Some(Value::Array(w)) => w.clone(),
            _ => Vec::new(),
        };
        w.extend(extra);
        sub.insert("where".into(), Value::Array(w));
        if !sub.contains_key("collectionName") {
            return Err(invalid_filter("Filter is not valid format"));
        }
        self.exists(&sub, vars, opts)
    }

    fn statement(
        &mut self,
        parts: &[Value],
        collection: &str,
        vars: &Vars,
        opts: &Opts,
    ) -> Result<Filter, TriplitError> {
        let prop = parts[0].as_str().unwrap_or_default().to_string();
        let mut op = parts[1].as_str().unwrap_or_default().to_string();
        let mut val = parts[2].clone();
        if let Some(schema) = self.paths_schema(collection) {
            let segs: Vec<&str> = prop.split('.').collect();
            let mut prop_type: Option<&DataType> = None;
            for (i, attr) in walk(schema, collection, &segs).into_iter().enumerate() {
                if let Some(rel @ Attr::Relation(_)) = attr {
                    let sub = rel.relation_query().cloned().unwrap_or_default();
                    if let Value::String(s) = &val
                        && s.starts_with('$')
                    {
                        val = Value::String(increment(s, 1));
                    }
                    let rest = segs[i + 1..].join(".");
                    let extra = vec![Value::Array(vec![
                        Value::String(rest),
                        Value::String(op),
                        val,
                    ])];
                    return self.exists_with(sub, extra, vars, opts);
                }
                prop_type = attr.and_then(|a| a.data_type());
            }
            let Some(t) = prop_type else {
                return Err(invalid_filter(format!(
                    "Could not find property '{prop}' in the schema"
                )));
            };
            if matches!(t, DataType::Set { .. }) && !op.starts_with("SET_") {
                op = format!("SET_{op}");
            }
            if !supported_operators(t).contains(&op.as_str()) {
                return Err(invalid_filter(format!(
                    "Operator '{op}' is not valid for property '{prop}' of type '{}'",
                    t.type_name()
                )));
            }
        }
        let mut value = Operand::from_prepared(Some(val.clone()));
        if is_variable(&val) {
            let var = val.as_str().unwrap_or_default();
            let mut c = components(var);
            if c.scope.is_none() {
                c.scope = Some(Scope::Relative(1));
                value = Operand::Json(Value::String(c.to_var()));
            }
            match c.scope {
                Some(Scope::Relative(n)) => {
                    if let Some(f) = self.relational_value(&prop, &op, n, &c.path, vars, opts)? {
                        return Ok(f);
                    }
                }
                Some(scope) => {
                    let found = scope
                        .key()
                        .and_then(|k| vars.get(k))
                        .and_then(|root| value_at(root, c.path.iter().map(String::as_str)))
                        .map(|v| v.into_owned());
                    value = Operand::from_prepared(found);
                }
                None => {}
            }
        }
        Ok(Filter::Stmt(Stmt {
            path: prop,
            op,
            value,
        }))
    }

    /// A relational variable through a relation: the flipped `exists`.
    fn relational_value(
        &mut self,
        prop: &str,
        op: &str,
        scope: i64,
        path: &[String],
        vars: &Vars,
        opts: &Opts,
    ) -> Result<Option<Filter>, TriplitError> {
        let Some(schema) = self.schema else {
            return Ok(None);
        };
        let idx = self.stack.len() as i64 - scope - 1;
        let Some(reference) = usize::try_from(idx)
            .ok()
            .and_then(|i| self.stack.get(i))
            .cloned()
        else {
            return Err(engine(
                "Cannot read properties of undefined (reading 'collectionName'): a relational variable refers past the outermost query",
            ));
        };
        let segs: Vec<&str> = path.iter().map(String::as_str).collect();
        for (i, attr) in walk(schema, &reference, &segs).into_iter().enumerate() {
            let Some(rel @ Attr::Relation(_)) = attr else {
                continue;
            };
            let sub = rel.relation_query().cloned().unwrap_or_default();
            let sub = increment_query(&sub, self.stack.len() as i64 - 1);
            let flipped = vec![Value::Array(vec![
                Value::String(segs[i + 1..].join(".")),
                Value::String(flip_operator(op)?.into()),
                Value::String(format!("$1.{prop}")),
            ])];
            return self.exists_with(sub, flipped, vars, opts).map(Some);
        }
        Ok(None)
    }

    fn relationship_exists(
        &mut self,
        exists: &Map<String, Value>,
        collection: &str,
        vars: &Vars,
        opts: &Opts,
    ) -> Result<Filter, TriplitError> {
        let Some(schema) = self.schema else {
            return Err(invalid_filter(
                "A schema is required to execute an exists filter",
            ));
        };
        let mut ext = exists.clone();
        let relationship = match ext.remove("_extends") {
            Some(Value::String(s)) => s,
            other => crate::types::js::js_string(other.as_ref()),
        };
        let segs: Vec<&str> = relationship.split('.').collect();
        let walked = walk(schema, collection, &segs);
        let found = walked
            .iter()
            .position(|a| matches!(a, Some(Attr::Relation(_))));
        let (depth, attr) = match found {
            Some(i) => (i + 1, walked[i]),
            None => (segs.len(), walked.last().copied().flatten()),
        };
        let Some(attr) = attr else {
            return Err(invalid_filter(format!(
                "Could not find property '{relationship}' in the schema"
            )));
        };
        if !matches!(attr, Attr::Relation(_)) {
            return Err(invalid_filter(
                "Cannot execute an exists filter on a non-relation property",
            ));
        }
        let sub = attr.relation_query().cloned().unwrap_or_default();
        let extra = if depth < segs.len() {
            let mut nested = Map::new();
            nested.insert("_extends".into(), Value::String(segs[depth..].join(".")));
            nested.extend(ext);
            let mut f = Map::new();
            f.insert("exists".into(), Value::Object(nested));
            vec![Value::Object(f)]
        } else {
            match ext.get("where") {
                Some(Value::Array(w)) => w.clone(),
                _ => Vec::new(),
            }
        };
        self.exists_with(sub, extra, vars, opts)
    }
}

/// `flipOperator`: the operator that holds with the operands swapped.
fn flip_operator(op: &str) -> Result<&'static str, TriplitError> {
    Ok(match op {
        "=" => "=",
        "!=" => "!=",
        "<" => ">",
        ">" => "<",
        "<=" => ">=",
        ">=" => "<=",
        "in" => "SET_has",
        "nin" => "SET_!has",
        "SET_has" => "in",
        "SET_!has" => "nin",
        _ => return Err(engine(format!("Cannot flip operator {op}"))),
    })
}

/// `prependPermissionFilterVariables`: unscoped variables in statements
/// (also inside groups, not inside subqueries) read as `$0.x`.
fn prefix_permission_variables(filters: &[Value]) -> Vec<Value> {
    filters
        .iter()
        .map(|f| match f {
            Value::Array(parts) if is_statement(parts) => {
                let mut parts = parts.clone();
                if let Value::String(s) = &parts[2]
                    && s.starts_with('$')
                {
                    let mut c = components(s);
                    if c.scope.is_none() {
                        c.scope = Some(Scope::Relative(0));
                        parts[2] = Value::String(c.to_var());
                    }
                }
                Value::Array(parts)
            }
            Value::Object(m) if m.contains_key("mod") => {
                let mut m = m.clone();
                if let Some(Value::Array(inner)) = m.get("filters") {
                    let inner = prefix_permission_variables(inner);
                    m.insert("filters".into(), Value::Array(inner));
                }
                Value::Object(m)
            }
            other => other.clone(),
        })
        .collect()
}
