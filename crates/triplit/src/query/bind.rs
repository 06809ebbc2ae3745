//! Binding variables at run time (upstream's `bindVariablesInFilters` and
//! `resolveVariable`).
//!
//! A `$N.path` value reads the `N`-th row up the stack (`$1` is the
//! parent); `$view_N.path` reads that path off every row of a computed
//! view; anything else resolves to `undefined`. A resolved array becomes a
//! set, and an object inside it (a stored set) contributes its live keys.

use serde_json::Value;

use super::ast::{Filter, Stmt};
use super::engine::Exec;
use super::errors::engine;
use super::operand::Operand;
use super::row::Row;
use super::variables::{Scope, components};
use crate::TriplitError;
use crate::types::js::{js_entries, js_truthy};

impl Exec<'_> {
    pub(super) fn bind_all(
        &self,
        filters: &[Filter],
        stack: &[Row],
    ) -> Result<Vec<Filter>, TriplitError> {
        filters.iter().map(|f| self.bind_filter(f, stack)).collect()
    }

    /// `bindVariablesInFilter`.
    pub(super) fn bind_filter(&self, f: &Filter, stack: &[Row]) -> Result<Filter, TriplitError> {
        Ok(match f {
            Filter::Group(g) => Filter::group(g.and, self.bind_all(&g.filters, stack)?),
            Filter::Stmt(s) if s.value.as_variable().is_some() => Filter::Stmt(Stmt {
                path: s.path.clone(),
                op: s.op.clone(),
                value: self.bind_value(&s.value, stack, true)?,
            }),
            other => other.clone(),
        })
    }

    pub(super) fn bind_value(
        &self,
        v: &Operand,
        stack: &[Row],
        with_views: bool,
    ) -> Result<Operand, TriplitError> {
        match v.as_variable() {
            Some(var) => Ok(to_operand(self.resolve(var, stack, with_views)?)),
            None => Ok(v.clone()),
        }
    }

    /// `resolveVariable`: `None` is `undefined`.
    pub(super) fn resolve(
        &self,
        var: &str,
        stack: &[Row],
        with_views: bool,
    ) -> Result<Option<Value>, TriplitError> {
        let c = components(var);
        match c.scope {
            Some(Scope::Relative(n)) => {
                if (stack.len() as i64) < n {
                    return Err(engine(format!(
                        "Variable reference is out of bounds. Tried to find {var} in stack of size {}",
                        stack.len()
                    )));
                }
                let idx = stack.len() as i64 - n;
                let frame = usize::try_from(idx).ok().and_then(|i| stack.get(i));
                Ok(frame.and_then(|f| f.lookup(&c.path)))
            }
            None if c.path.first().is_some_and(|p| p.starts_with("view_")) => {
                let name = &c.path[0];
                let view = match name[5..]
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.views.get(i))
                {
                    Some(Some(v)) if with_views => v,
                    _ => return Err(engine(format!("View {name} not found in vars"))),
                };
                let rest = &c.path[1..];
                Ok(Some(Value::Array(
                    view.iter()
                        .map(|r| r.lookup(rest).unwrap_or(Value::Null))
                        .collect(),
                )))
            }
            _ => Ok(None),
        }
    }

    /// The ids an `id =`/`id in` statement looks up, in order, deduplicated.
    pub(super) fn ids(&self, v: &Operand, stack: &[Row]) -> Result<Vec<String>, TriplitError> {
        let mut raw = Vec::new();
        match v {
            Operand::Json(Value::String(s)) if s.starts_with('$') => {
                id_array(self.resolve(s, stack, true)?.as_ref(), &mut raw);
            }
            Operand::Json(Value::String(s)) => raw.push(s.clone()),
            Operand::Set(set) => {
                let items = set.items();
                raw.extend(items.iter().filter_map(|i| i.as_str().map(str::to_string)))
            }
            Operand::Undefined | Operand::Json(Value::Null) => {}
            Operand::Json(other) => {
                return Err(engine(format!(
                    "{other} is not iterable (an id filter needs an id or a list of ids)"
                )));
            }
        }
        let mut out: Vec<String> = Vec::with_capacity(raw.len());
        for id in raw {
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }
}

/// `resolvedVarToIdArray`.
fn id_array(v: Option<&Value>, out: &mut Vec<String>) {
    match v {
        Some(Value::String(s)) => out.push(s.clone()),
        Some(Value::Array(items)) => items.iter().for_each(|i| id_array(Some(i), out)),
        Some(Value::Object(m)) => out.extend(
            crate::types::js::js_key_order(m)
                .into_iter()
                .filter(|k| m.get(*k) == Some(&Value::Bool(true)))
                .cloned(),
        ),
        _ => {}
    }
}

/// A resolved variable as a filter value: arrays become sets, with the
/// live keys of objects inside them (stored sets) as members.
fn to_operand(v: Option<Value>) -> Operand {
    match v {
        None => Operand::Undefined,
        Some(Value::Array(items)) => {
            let mut members = Vec::new();
            for item in items {
                if matches!(item, Value::Object(_) | Value::Array(_)) {
                    for (k, live) in js_entries(&item) {
                        if js_truthy(live) {
                            members.push(Value::String(k));
                        }
                    }
                } else {
                    members.push(item);
                }
            }
            Operand::set_from(members)
        }
        Some(v) => Operand::Json(v),
    }
}
