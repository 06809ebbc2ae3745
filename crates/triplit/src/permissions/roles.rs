//! Session variables and roles: which of a schema's `roles` a token has.
//!
//! Session variables are the token's claims, plus `SESSION_USER_ID` (from
//! `x-triplit-user-id`) and `_scope` (the `scope` claim split on spaces).
//! A role matches when its `match` pattern matches them key by key: a
//! missing claim fails, an object (or `null`) pattern recurses (so `null`
//! matches any present value), a `$name` string matches anything and binds
//! `$role.name`, and anything else must be `===` the claim. A token can
//! hold several roles; a schema without `roles` gets the default
//! `anonymous`/`authenticated` pair, and custom roles replace them.

use serde_json::{Map, Value};

use crate::query::hash::fnv1a;
use crate::schema::{Schema, default_roles};
use crate::session::Session;
use crate::types::js::{js_entries, js_get};

/// A role the session holds, with the variables its pattern bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// The role's key in `schema.roles`.
    pub key: String,
    /// `$role.*`: what the pattern's `$name` wildcards matched.
    pub vars: Map<String, Value>,
}

/// Upstream's `normalizeSessionVars`: what `$session`/`$token` expose and
/// what role patterns match against.
pub fn session_vars(claims: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(uid) = claims.get("x-triplit-user-id") {
        out.insert("SESSION_USER_ID".into(), uid.clone());
    }
    for (k, v) in claims {
        out.insert(k.clone(), v.clone());
    }
    if let Some(Value::String(scope)) = out.get("scope")
        && !out.contains_key("_scope")
    {
        let parts = scope.split(' ').map(|s| Value::String(s.into())).collect();
        out.insert("_scope".into(), Value::Array(parts));
    }
    out
}

/// `value[key]` as JavaScript reads it off a claim value.
fn member<'a>(value: &'a Value, key: &str) -> Option<std::borrow::Cow<'a, Value>> {
    match value {
        Value::Object(_) | Value::Array(_) => js_get(value, key).map(std::borrow::Cow::Borrowed),
        Value::String(_) => crate::query::value_at(value, [key]),
        _ => None,
    }
}

/// Upstream's `matchPattern`: the bound wildcards, or `None` for no match.
/// (Upstream throws a `TypeError` when a nested pattern meets a `null`
/// claim; that is no match here.)
pub fn match_pattern(pattern: &Value, value: &Value) -> Option<Map<String, Value>> {
    let mut bound = Map::new();
    if value.is_null() && !js_entries(pattern).is_empty() {
        return None;
    }
    for (key, matcher) in js_entries(pattern) {
        let found = member(value, &key)?;
        match matcher {
            Value::Object(_) | Value::Array(_) | Value::Null => {
                let nested = match_pattern(matcher, &found)?;
                bound.extend(nested);
            }
            Value::String(s) if s.starts_with('$') => {
                bound.insert(s[1..].to_string(), found.into_owned());
            }
            m => {
                if !crate::query::same_value_zero(m, &found) {
                    return None;
                }
            }
        }
    }
    Some(bound)
}

/// The roles `schema` gives `session` (`getRolesFromSession`), in the
/// schema's role order. Without a schema there are no roles (and no
/// permissions to apply them to).
pub fn session_roles(schema: Option<&Schema>, session: &Session) -> Vec<Role> {
    let Some(schema) = schema else {
        return Vec::new();
    };
    let defaults;
    let roles = match schema.roles() {
        Some(r) => r,
        None => {
            defaults = default_roles();
            &defaults
        }
    };
    let vars = Value::Object(session_vars(&session.claims));
    let mut out = Vec::new();
    for (key, role) in crate::types::js::js_key_order(roles)
        .into_iter()
        .filter_map(|k| roles.get(k).map(|r| (k, r)))
    {
        let pattern = js_get(role, "match").cloned().unwrap_or(Value::Null);
        if let Some(vars) = match_pattern(&pattern, &vars) {
            out.push(Role {
                key: key.clone(),
                vars,
            });
        }
    }
    out
}

/// Upstream's `hashObject` serialisation (sorted keys, `String(value)`
/// for primitives), the basis of role equivalence.
fn serialize_for_hash(v: &Value) -> String {
    match v {
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(serialize_for_hash)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| crate::query::compare_js_str(a, b));
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", serialize_for_hash(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        other => crate::types::js::js_string(Some(other)),
    }
}

/// Upstream's `sessionRolesAreEquivalent`: the same role keys, and equal
/// hashes of each role's variables. Token refresh closes the connection
/// with `ROLES_MISMATCH` when this is false.
pub fn roles_equivalent(a: &[Role], b: &[Role]) -> bool {
    if a.is_empty() && b.is_empty() {
        return true;
    }
    if a.len() != b.len() {
        return false;
    }
    if a.iter().any(|r| !b.iter().any(|o| o.key == r.key)) {
        return false;
    }
    let hash = |roles: &[Role], key: &str| {
        roles
            .iter()
            .rev()
            .find(|r| r.key == key)
            .map(|r| fnv1a(&serialize_for_hash(&Value::Object(r.vars.clone()))))
    };
    a.iter().all(|r| hash(a, &r.key) == hash(b, &r.key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn session_vars_add_user_id_and_scope() {
        let v = session_vars(&m(json!({"x-triplit-user-id": "u1", "scope": "a b"})));
        assert_eq!(v["SESSION_USER_ID"], json!("u1"));
        assert_eq!(v["_scope"], json!(["a", "b"]));
        let v = session_vars(&m(json!({"scope": "a", "_scope": 1})));
        assert_eq!(v["_scope"], json!(1));
    }

    #[test]
    fn patterns_bind_wildcards_and_null_matches_anything_present() {
        let claims = json!({"sub": "u1", "org": {"id": "o1", "tier": 2}, "plan": 0});
        assert_eq!(
            match_pattern(&json!({"sub": "$userId"}), &claims),
            Some(m(json!({"userId": "u1"})))
        );
        assert_eq!(
            match_pattern(&json!({"org": {"id": "$orgId", "tier": 2}}), &claims),
            Some(m(json!({"orgId": "o1"})))
        );
        assert_eq!(
            match_pattern(&json!({"plan": null}), &claims),
            Some(Map::new())
        );
        assert_eq!(match_pattern(&json!({"missing": null}), &claims), None);
        assert_eq!(match_pattern(&json!({"org": {"tier": "2"}}), &claims), None);
        assert_eq!(match_pattern(&json!({"sub": "u2"}), &claims), None);
    }

    #[test]
    fn custom_roles_replace_defaults_and_several_can_match() {
        let schema = Schema::from_json(&json!({"collections": {"a": {"schema": {"type": "record", "properties": {"id": {"type": "string"}}}}},
            "roles": {"user": {"match": {"sub": "$userId"}}, "admin": {"match": {"admin": true}}}})).unwrap();
        let s = Session {
            claims: m(json!({"sub": "u1", "admin": true})),
            ..Session::default()
        };
        let keys: Vec<String> = session_roles(Some(&schema), &s)
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(keys, ["user", "admin"]);
        let anon = Session {
            claims: m(json!({"x-triplit-token-type": "anon"})),
            ..Session::default()
        };
        assert!(session_roles(Some(&schema), &anon).is_empty());
        let plain = Schema::from_json(&json!({"collections": {"a": {"schema": {"type": "record", "properties": {"id": {"type": "string"}}}}}})).unwrap();
        assert_eq!(session_roles(Some(&plain), &anon)[0].key, "anonymous");
    }

    #[test]
    fn equivalence_compares_keys_and_variables() {
        let r = |k: &str, v: Value| Role {
            key: k.into(),
            vars: m(v),
        };
        assert!(roles_equivalent(
            &[r("user", json!({"id": "1"}))],
            &[r("user", json!({"id": 1}))]
        ));
        assert!(!roles_equivalent(
            &[r("user", json!({"id": "1"}))],
            &[r("user", json!({"id": "2"}))]
        ));
        assert!(!roles_equivalent(
            &[r("user", json!({}))],
            &[r("admin", json!({}))]
        ));
        assert!(roles_equivalent(&[], &[]));
    }
}
