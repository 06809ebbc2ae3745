//! Comparing the roles of two tokens (for token refresh).
//!
//! A refreshed token keeps the session only if it yields the same roles
//! with the same role variables as the token the session started with
//! (upstream's `sessionRolesAreEquivalent`). Roles come from the schema's
//! `roles` patterns matched against the claims (`matchPattern`).

use serde_json::{Map, Value};

use crate::schema::Schema;
use crate::session::Session;

/// `(role key, bound role variables)` in schema order.
pub type RoleMatch = (String, Map<String, Value>);

fn match_pattern(pattern: &Value, value: Option<&Value>, vars: &mut Map<String, Value>) -> bool {
    let Some(value) = value else { return false };
    match pattern {
        Value::Object(p) => p.iter().all(|(k, sub)| {
            let inner = match value {
                Value::Object(v) => v.get(k),
                _ => None,
            };
            match_pattern(sub, inner, vars)
        }),
        // `typeof null === 'object'` upstream: a null matcher recurses over
        // no keys and matches any present value.
        Value::Null => true,
        Value::String(s) if s.starts_with('$') => {
            vars.insert(s[1..].to_string(), value.clone());
            true
        }
        other => other == value,
    }
}

/// The session variables roles are matched against: the claims plus
/// upstream's `SESSION_USER_ID` and `_scope`.
pub fn session_vars(session: &Session) -> Value {
    let mut vars = session.claims.clone();
    if let Some(uid) = session.claims.get("x-triplit-user-id") {
        vars.insert("SESSION_USER_ID".into(), uid.clone());
    }
    if let Some(Value::String(scope)) = session.claims.get("scope") {
        vars.insert(
            "_scope".into(),
            Value::Array(scope.split(' ').map(|s| Value::String(s.into())).collect()),
        );
    }
    Value::Object(vars)
}

/// The roles `session` has under `schema`.
pub fn roles_of(schema: Option<&Schema>, session: &Session) -> Vec<RoleMatch> {
    let Some(roles) = schema.and_then(|s| s.roles()) else {
        return Vec::new();
    };
    let vars = session_vars(session);
    let mut out = Vec::new();
    for (key, role) in roles {
        let Some(pattern) = role.get("match") else {
            continue;
        };
        let mut bound = Map::new();
        if match_pattern(pattern, Some(&vars), &mut bound) {
            out.push((key.clone(), bound));
        }
    }
    out
}

/// Whether two sessions have equivalent roles.
pub fn same_roles(schema: Option<&Schema>, a: &Session, b: &Session) -> bool {
    let mut ra = roles_of(schema, a);
    let mut rb = roles_of(schema, b);
    ra.sort_by(|x, y| x.0.cmp(&y.0));
    rb.sort_by(|x, y| x.0.cmp(&y.0));
    ra == rb
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn session(claims: Value) -> Session {
        Session {
            claims: claims.as_object().unwrap().clone(),
            ..Session::default()
        }
    }

    #[test]
    fn wildcards_bind_and_exact_values_compare() {
        let mut vars = Map::new();
        assert!(match_pattern(
            &json!({"sub": "$userId"}),
            Some(&json!({"sub": "u1"})),
            &mut vars
        ));
        assert_eq!(vars["userId"], "u1");
        assert!(!match_pattern(
            &json!({"sub": "$userId"}),
            Some(&json!({})),
            &mut Map::new()
        ));
        assert!(match_pattern(
            &json!({"a": null}),
            Some(&json!({"a": 5})),
            &mut Map::new()
        ));
        assert!(!match_pattern(
            &json!({"t": "anon"}),
            Some(&json!({"t": "secret"})),
            &mut Map::new()
        ));
    }

    #[test]
    fn refresh_with_same_user_keeps_roles() {
        let schema = Schema::from_json(
            &json!({"collections": {}, "roles": {"user": {"match": {"sub": "$userId"}}}}),
        )
        .unwrap();
        let a = session(json!({"sub": "u1", "exp": 1}));
        let b = session(json!({"sub": "u1", "exp": 2}));
        let c = session(json!({"sub": "u2"}));
        assert!(same_roles(Some(&schema), &a, &b));
        assert!(!same_roles(Some(&schema), &a, &c));
    }
}
