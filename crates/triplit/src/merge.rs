//! How a change is applied to a stored entity.
//!
//! Upstream's rule (`applyChange`): for each key of the change, when both
//! the stored value and the new value are objects (the new one not an
//! array), merge recursively; otherwise the new value replaces the old
//! one. `null` is an ordinary value that means "unset". Arrays replace.

use serde_json::{Map, Value};

/// Merges `change` into `current` in place. Returns whether anything
/// changed.
pub fn apply_change(current: &mut Map<String, Value>, change: &Map<String, Value>) -> bool {
    let mut changed = false;
    for (key, value) in change {
        match (current.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(patch)) => {
                changed |= apply_change(existing, patch);
            }
            (Some(existing), _) if existing == value => {}
            _ => {
                current.insert(key.clone(), value.clone());
                changed = true;
            }
        }
    }
    changed
}

/// Merges `later` into `earlier` the way a transaction combines two
/// updates of the same entity (deep object assign).
pub fn combine_patches(earlier: &mut Map<String, Value>, later: &Map<String, Value>) {
    for (key, value) in later {
        match (earlier.get_mut(key), value) {
            (Some(Value::Object(a)), Value::Object(b)) => combine_patches(a, b),
            _ => {
                earlier.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Whether a patch holds nothing but (possibly nested) empty objects.
pub fn deep_is_empty(v: &Map<String, Value>) -> bool {
    v.values().all(|v| match v {
        Value::Object(m) => deep_is_empty(m),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn objects_merge_arrays_and_scalars_replace_null_unsets() {
        let mut e = obj(
            json!({"id":"t1","tags":{"a":true,"b":true},"meta":{"prio":1,"x":{"y":1}},"arr":[1,2],"due":"2025"}),
        );
        let changed = apply_change(
            &mut e,
            &obj(json!({"tags":{"a":false,"c":true},"meta":{"x":{"z":2}},"arr":[3],"due":null})),
        );
        assert!(changed);
        assert_eq!(
            Value::Object(e),
            json!({"id":"t1","tags":{"a":false,"b":true,"c":true},"meta":{"prio":1,"x":{"y":1,"z":2}},"arr":[3],"due":null})
        );
    }

    #[test]
    fn object_over_scalar_replaces_and_identical_values_do_not_count() {
        let mut e = obj(json!({"a": 1, "b": {"c": 1}}));
        assert!(!apply_change(&mut e, &obj(json!({"a": 1, "b": {"c": 1}}))));
        assert!(apply_change(&mut e, &obj(json!({"a": {"x": 1}}))));
        assert_eq!(e["a"], json!({"x": 1}));
    }

    #[test]
    fn emptiness_is_deep() {
        assert!(deep_is_empty(&obj(json!({"a": {}, "b": {"c": {}}}))));
        assert!(!deep_is_empty(&obj(json!({"a": {"b": null}}))));
    }

    #[test]
    fn combined_patches_assign_deeply() {
        let mut a = obj(json!({"m": {"x": 1}, "k": 1}));
        combine_patches(&mut a, &obj(json!({"m": {"y": 2}, "k": [1]})));
        assert_eq!(Value::Object(a), json!({"m": {"x": 1, "y": 2}, "k": [1]}));
    }
}
