//! Upstream's schema-change classification (`DANGEROUS_EDITS`), the data
//! checks behind it and the `SchemaChange` that `/override-schema` answers.
//!
//! Each attribute diff is matched against the dangerous edits in order and
//! takes the first that applies; relationship, permission and role diffs
//! are never dangerous. An edit names the data constraint that makes it
//! safe; the check runs the query upstream runs (`select id, limit 1`,
//! rules skipped) with the operator prepared against the **old** schema
//! (a set attribute gets the `SET_` form, an operator the type does not
//! support is an `InvalidFilterError`).

use serde_json::{Map, Value, json};

use super::Schema;
use super::diff::{AttributeChange, AttributeDiff, SchemaDiff, diff_schemas, strict_eq};
use crate::TriplitError;
use crate::jsnum::js_parse_float;
use crate::schema::DataType;
use crate::types::js::{has_no_value, js_get, js_string, js_truthy};
use crate::types::supported_operators;

/// What existing data must satisfy for a dangerous edit to be safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataConstraint {
    /// `collection_is_empty`: no entity in the collection.
    CollectionIsEmpty,
    /// `attribute_is_empty`: no entity has a value (other than `null`).
    AttributeIsEmpty,
    /// `attribute_has_no_undefined`: every entity has a non-`null` value.
    AttributeHasNoUndefined,
    /// `attribute_has_no_null`: no entity has `null` or no value.
    AttributeHasNoNull,
    /// `attribute_satisfies_enum`: every value is in the new enum.
    AttributeSatisfiesEnum,
}

impl DataConstraint {
    /// The wire name (`dataConstraint`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CollectionIsEmpty => "collection_is_empty",
            Self::AttributeIsEmpty => "attribute_is_empty",
            Self::AttributeHasNoUndefined => "attribute_has_no_undefined",
            Self::AttributeHasNoNull => "attribute_has_no_null",
            Self::AttributeSatisfiesEnum => "attribute_satisfies_enum",
        }
    }

    fn data_cure(self, collection: &str, path: &str) -> String {
        match self {
            Self::CollectionIsEmpty => {
                format!("delete all entities in '{collection}' to allow this edit")
            }
            Self::AttributeIsEmpty => {
                format!("set all values of '{path}' to undefined to allow this edit")
            }
            Self::AttributeHasNoUndefined => {
                format!("ensure all values of '{path}' are not undefined to allow this edit")
            }
            Self::AttributeHasNoNull => {
                format!("ensure all values of '{path}' are not null to allow this edit")
            }
            Self::AttributeSatisfiesEnum => {
                format!("ensure all values of '{path}' are in the enum to allow this edit")
            }
        }
    }
}

/// A backwards-incompatible edit (upstream's `BackwardsIncompatibleEdit`).
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// The dangerous edit's description (`issue`).
    pub issue: &'static str,
    /// What data must satisfy for the edit to be safe.
    pub data_constraint: DataConstraint,
    /// The attribute diff it was found in.
    pub context: AttributeDiff,
    attribute_cure: Option<String>,
}

/// An edit with the outcome of its data check (`PossibleDataViolation`).
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// The edit.
    pub edit: Edit,
    /// Whether stored entities break the edit's data constraint.
    pub violates_existing_data: bool,
}

fn is_optional(data_type: &Value) -> bool {
    let flag = |k| js_get(data_type, "config").and_then(|c| js_get(c, k)) == Some(&json!(true));
    flag("optional") || flag("nullable")
}

/// Classifies one attribute diff: the first of upstream's dangerous edits
/// it matches, if any.
pub fn classify(d: &AttributeDiff) -> Option<Edit> {
    let path = d.attribute.join(".");
    let retype = || {
        Some(format!(
            "revert the change to '{path}' and create a different, optional, attribute with the new type"
        ))
    };
    let (issue, data_constraint, attribute_cure) = match &d.change {
        AttributeChange::Delete { data_type } if is_optional(data_type) => (
            "removed an optional attribute",
            DataConstraint::AttributeIsEmpty,
            None,
        ),
        AttributeChange::Delete { .. } => (
            "removed a required attribute",
            DataConstraint::CollectionIsEmpty,
            Some(format!("make '{path}' optional")),
        ),
        AttributeChange::Update(c) if c.optional == Some(false) => (
            "changed a attribute from optional to required",
            DataConstraint::AttributeHasNoUndefined,
            None,
        ),
        AttributeChange::Update(c) if c.type_name.is_some() => (
            "changed the type of an attribute",
            DataConstraint::AttributeIsEmpty,
            retype(),
        ),
        AttributeChange::Update(c) if c.items_type.is_some() => (
            "changed the type of a set's items",
            DataConstraint::AttributeIsEmpty,
            retype(),
        ),
        AttributeChange::Insert {
            data_type,
            is_new_collection: false,
        } if !is_optional(data_type) => (
            "added an attribute where optional is not set",
            DataConstraint::CollectionIsEmpty,
            Some(format!("make '{path}' optional")),
        ),
        AttributeChange::Update(c) if c.nullable == Some(false) => (
            "changed an attribute from nullable to non-nullable",
            DataConstraint::AttributeHasNoNull,
            None,
        ),
        // Upstream calls this cure without the enum, hence the "undefined".
        AttributeChange::Update(c) if c.enum_values.is_some() => (
            "added an enum to an attribute or removed an option from an existing enum",
            DataConstraint::AttributeSatisfiesEnum,
            Some(format!(
                "revert the change to '{path}' and create a different, optional, attribute with the new enum OR ensure all values of '{path} are in the new enum: undefined"
            )),
        ),
        _ => return None,
    };
    Some(Edit {
        issue,
        data_constraint,
        context: d.clone(),
        attribute_cure,
    })
}

/// Upstream's `getBackwardsIncompatibleEdits`: the dangerous edits of a
/// diff, in diff order.
pub fn backwards_incompatible_edits(diff: &[SchemaDiff]) -> Vec<Edit> {
    diff.iter()
        .filter_map(|d| match d {
            SchemaDiff::Attribute(a) => classify(a),
            _ => None,
        })
        .collect()
}

/// Whether a client on schema `client` can sync with a server on schema
/// `server`: `diffSchemas(client, server)` has no dangerous edit (what
/// upstream checks before answering a `SCHEMA_RESPONSE`).
pub fn is_backwards_compatible(client: &Schema, server: &Schema) -> bool {
    backwards_incompatible_edits(&diff_schemas(client, server)).is_empty()
}

fn invalid_filter(context: String) -> TriplitError {
    TriplitError::new(
        "InvalidFilterError",
        400,
        "Your query passed a filter that is invalid.",
        Some(context),
    )
}

impl Edit {
    /// The `cure`: the attribute cure (if any) `or` the data cure.
    pub fn cure(&self) -> String {
        let data = self
            .data_constraint
            .data_cure(&self.context.collection, &self.context.attribute.join("."));
        match &self.attribute_cure {
            Some(a) => format!("{a} or {data}"),
            None => data,
        }
    }

    /// Runs the edit's data check over the collection's stored entities,
    /// preparing the filter against `old` (the schema being replaced).
    /// Errors are upstream's: an `InvalidFilterError` for an operator the
    /// old type does not support or a set holding a non-object, a 500 where
    /// upstream's path lookup crashes on a `null` parent.
    pub fn violated_by(
        &self,
        old: &Schema,
        entities: &[Map<String, Value>],
    ) -> Result<bool, TriplitError> {
        let (op, filter) = match self.data_constraint {
            DataConstraint::CollectionIsEmpty => return Ok(!entities.is_empty()),
            DataConstraint::AttributeIsEmpty => ("isDefined", json!(true)),
            DataConstraint::AttributeHasNoUndefined => ("isDefined", json!(false)),
            DataConstraint::AttributeHasNoNull => ("=", Value::Null),
            DataConstraint::AttributeSatisfiesEnum => match &self.context.change {
                AttributeChange::Update(c) => ("nin", c.enum_values.clone().unwrap_or(Value::Null)),
                _ => ("nin", Value::Null),
            },
        };
        let path = &self.context.attribute;
        let prop = path.join(".");
        let t = old
            .collection(&self.context.collection)
            .and_then(|c| c.schema.path(path.iter().map(String::as_str)))
            .ok_or_else(|| {
                invalid_filter(format!("Could not find property '{prop}' in the schema"))
            })?;
        let op = match t {
            DataType::Set { .. } => format!("SET_{op}"),
            _ => op.to_owned(),
        };
        if !supported_operators(t).contains(&op.as_str()) {
            return Err(invalid_filter(format!(
                "Operator '{op}' is not valid for property '{prop}' of type '{}'",
                t.type_name()
            )));
        }
        for entity in entities {
            if satisfies(value_at(entity, path)?, &op, &filter)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// `ValuePointer.Get`: a missing key gives `undefined`; stepping into
/// `null` is a `TypeError` upstream.
fn value_at<'a>(
    entity: &'a Map<String, Value>,
    path: &[String],
) -> Result<Option<&'a Value>, TriplitError> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(None);
    };
    let mut cur = entity.get(first);
    for key in rest {
        cur = match cur {
            None => return Ok(None),
            Some(Value::Null) => {
                return Err(TriplitError::internal(
                    "An unknown error occurred while handling the request: override-schema",
                ));
            }
            Some(v) => js_get(v, key),
        };
    }
    Ok(cur)
}

/// Upstream's `evaluateFilterStatement` for the operators the checks use
/// (`isDefined`, `=`, `nin`, and their `SET_` forms).
fn satisfies(value: Option<&Value>, op: &str, filter: &Value) -> Result<bool, TriplitError> {
    let empty = has_no_value(value);
    if let Some(set_op) = op.strip_prefix("SET_") {
        let live: Vec<String> = match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(m)) => m
                .iter()
                .filter(|(_, v)| js_truthy(v))
                .map(|(k, _)| k.clone())
                .collect(),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .filter(|(_, v)| js_truthy(v))
                .map(|(i, _)| i.to_string())
                .collect(),
            Some(other) => {
                return Err(invalid_filter(format!(
                    "The operator requires a set value, but got {}",
                    js_string(Some(other))
                )));
            }
        };
        if set_op == "isDefined" {
            return Ok(js_truthy(filter) != empty);
        }
        for key in live {
            let item = match filter {
                Value::Bool(_) => Value::Bool(key == "true"),
                Value::Number(_) => crate::jsnum::js_number_to_json(js_parse_float(&key)),
                _ => Value::String(key),
            };
            if satisfies(Some(&item), set_op, filter)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    Ok(match op {
        "isDefined" => js_truthy(filter) != empty,
        // The checks only compare with `null`, and `compareValue` of any
        // other value with `null` is non-zero.
        "=" if filter.is_null() => empty,
        "nin" => {
            empty
                || filter.is_null()
                || match filter {
                    Value::Array(items) => !items.iter().any(|i| strict_eq(Some(i), value)),
                    Value::Object(_) => !js_get(filter, &js_string(value)).is_some_and(js_truthy),
                    _ => false,
                }
        }
        _ => {
            return Err(invalid_filter(format!(
                "The operator {op} is not recognized."
            )));
        }
    })
}

/// The `message` and `code` of a `SchemaChange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaChangeCode {
    /// `SUCCESS`.
    Success,
    /// `SCHEMA_INVALID`: the new schema failed validation.
    SchemaInvalid,
    /// `EXISTING_DATA_MISMATCH`: stored data violates an edit.
    ExistingDataMismatch,
    /// `SCHEMA_COMPATIBILITY_MISMATCH`: refused by
    /// `failOnBackwardsIncompatibleChange`.
    SchemaCompatibilityMismatch,
}

impl SchemaChangeCode {
    /// The wire code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::SchemaInvalid => "SCHEMA_INVALID",
            Self::ExistingDataMismatch => "EXISTING_DATA_MISMATCH",
            Self::SchemaCompatibilityMismatch => "SCHEMA_COMPATIBILITY_MISMATCH",
        }
    }
}

/// Upstream's `SchemaChange`, the `/override-schema` answer (always HTTP 200).
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaChange {
    /// The outcome (`successful` is `code == SUCCESS`).
    pub code: SchemaChangeCode,
    /// Upstream's message for the outcome.
    pub message: String,
    /// Every dangerous edit with its data-check outcome.
    pub issues: Vec<Issue>,
    /// The diff from the old schema to the new one.
    pub diff: Vec<SchemaDiff>,
    /// The schema before (omitted when there was none).
    pub old_schema: Option<Value>,
    /// The schema pushed.
    pub new_schema: Value,
}

impl SchemaChange {
    /// `successful`: the code is `SUCCESS`.
    pub fn successful(&self) -> bool {
        self.code == SchemaChangeCode::Success
    }

    /// The JSON body `{successful, code, message, issues, diff, oldSchema?, newSchema}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("successful".into(), json!(self.successful()));
        m.insert("code".into(), json!(self.code.as_str()));
        m.insert("message".into(), json!(self.message));
        let issues = self.issues.iter().map(Issue::to_json).collect();
        m.insert("issues".into(), Value::Array(issues));
        let diff = self.diff.iter().map(SchemaDiff::to_json).collect();
        m.insert("diff".into(), Value::Array(diff));
        if let Some(old) = &self.old_schema {
            m.insert("oldSchema".into(), old.clone());
        }
        m.insert("newSchema".into(), self.new_schema.clone());
        Value::Object(m)
    }
}

impl Issue {
    /// `{issue, dataConstraint, context, violatesExistingData, cure}`.
    pub fn to_json(&self) -> Value {
        json!({
            "issue": self.edit.issue,
            "dataConstraint": self.edit.data_constraint.as_str(),
            "context": self.edit.context.to_json(),
            "violatesExistingData": self.violates_existing_data,
            "cure": self.edit.cure(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn todos(props: Value) -> Schema {
        let mut properties = json!({"id": {"type": "string", "config": {}}});
        if let (Some(p), Value::Object(extra)) = (properties.as_object_mut(), props) {
            p.extend(extra);
        }
        let collections =
            json!({"todos": {"schema": {"type": "record", "properties": properties}}});
        Schema::from_json(&json!({ "collections": collections })).expect("valid")
    }

    /// The single edit from `old` to `new`, checked against `rows`.
    fn check(old: Value, new: Value, rows: Value) -> (Edit, Result<bool, TriplitError>) {
        let (old, new) = (todos(old), todos(new));
        let mut edits = backwards_incompatible_edits(&diff_schemas(&old, &new));
        assert_eq!(edits.len(), 1);
        let edit = edits.remove(0);
        let rows: Vec<Map<String, Value>> = serde_json::from_value(rows).expect("rows");
        let result = edit.violated_by(&old, &rows);
        (edit, result)
    }

    #[test]
    fn set_checks_use_the_set_operators() {
        let set = |c| json!({"s": {"type": "set", "items": {"type": "string"}, "config": c}});
        let (old, new) = (set(json!({"nullable": true})), set(json!({})));
        // `SET_=` null never matches, so a null set does not violate it.
        let empty = json!([{"id": "a", "s": null}, {"id": "b"}]);
        let (edit, result) = check(old.clone(), new.clone(), empty);
        assert_eq!(edit.data_constraint, DataConstraint::AttributeHasNoNull);
        assert_eq!(result, Ok(false));
        let err = check(old, new, json!([{"id": "a", "s": "x"}]))
            .1
            .expect_err("not a set");
        assert_eq!((err.name.as_ref(), err.status), ("InvalidFilterError", 400));
    }

    #[test]
    fn enum_checks_treat_missing_values_as_outside() {
        let old = json!({"e": {"type": "string", "config": {"optional": true}}});
        let new = json!({"e": {"type": "string", "config": {"optional": true, "enum": ["a"]}}});
        let (edit, result) = check(old.clone(), new.clone(), json!([{"id": "a", "e": "a"}]));
        assert_eq!(edit.data_constraint.as_str(), "attribute_satisfies_enum");
        assert_eq!(result, Ok(false));
        assert_eq!(check(old, new, json!([{"id": "a"}])).1, Ok(true));
    }

    #[test]
    fn a_null_parent_is_upstreams_crash() {
        let x = |t| json!({"x": {"type": t, "config": {"optional": true}}});
        let r =
            |t| json!({"r": {"type": "record", "config": {"nullable": true}, "properties": x(t)}});
        let err = check(r("number"), r("string"), json!([{"id": "a", "r": null}]))
            .1
            .expect_err("crash");
        assert_eq!((err.name.as_ref(), err.status), ("TriplitError", 500));
        assert_eq!(
            check(r("number"), r("string"), json!([{"id": "a"}])).1,
            Ok(false)
        );
    }

    #[test]
    fn compatibility_ignores_relationships_permissions_and_roles() {
        let old = todos(json!({}));
        let perms = json!({"collections": {"todos": {
            "schema": {"type": "record", "properties": {"id": {"type": "string"}}},
            "permissions": {"user": {"read": {"filter": [true]}}}}},
            "roles": {"user": {"match": {"sub": "$s"}}}});
        let new = Schema::from_json(&perms).expect("valid");
        // `collectionPermissions` and `roles`, neither of them dangerous.
        assert_eq!(diff_schemas(&old, &new).len(), 2);
        assert!(is_backwards_compatible(&old, &new));
        let required = todos(json!({"n": {"type": "number"}}));
        assert!(!is_backwards_compatible(&old, &required));
    }
}
