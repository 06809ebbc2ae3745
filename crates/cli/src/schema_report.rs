//! Human-readable text for schema changes: the answer of
//! `/override-schema` (upstream's `SchemaChange` JSON, from Ferry or from
//! Triplit) and diff entries.
//!
//! Everything here reads the wire JSON, not Ferry's types, so that
//! `ferry schema push` reports an upstream server's answer the same way.

use serde_json::Value;

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn attribute_path(context: &Value) -> String {
    match context.get("attribute") {
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| {
                p.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| p.to_string())
            })
            .collect::<Vec<_>>()
            .join("."),
        _ => String::new(),
    }
}

/// Whether an `/override-schema` answer says the schema was saved.
pub fn successful(change: &Value) -> bool {
    change.get("successful") == Some(&Value::Bool(true))
}

/// The number of diff entries in an `/override-schema` answer.
pub fn diff_len(change: &Value) -> usize {
    change
        .get("diff")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// The issues of an answer (or of a local diff), one block per
/// collection: each attribute with its issue and its cure, and whether
/// stored data violates it.
pub fn issues(list: &[Value]) -> String {
    let mut out = String::new();
    let mut collections: Vec<&str> = Vec::new();
    for i in list {
        let c = i.get("context").map_or("", |c| text(c, "collection"));
        if !collections.contains(&c) {
            collections.push(c);
        }
    }
    for collection in collections {
        out.push_str(&format!("  Collection '{collection}':\n"));
        for i in list {
            let context = i.get("context").unwrap_or(&Value::Null);
            if text(context, "collection") != collection {
                continue;
            }
            let violated = match i.get("violatesExistingData") {
                Some(Value::Bool(true)) => " (existing data violates it)",
                _ => "",
            };
            out.push_str(&format!(
                "    '{}': {}{violated}\n      needs: {}\n      fix:   {}\n",
                attribute_path(context),
                text(i, "issue"),
                text(i, "dataConstraint"),
                text(i, "cure"),
            ));
        }
    }
    out
}

/// The report of a refused change: the message, the code and every issue.
pub fn refusal(change: &Value) -> String {
    let list = change
        .get("issues")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = format!(
        "Schema update failed: {} [{}]\n",
        text(change, "message"),
        text(change, "code")
    );
    if !list.is_empty() {
        out.push_str(&format!(
            "Please resolve the following {} issue(s):\n",
            list.len()
        ));
        out.push_str(&issues(&list));
    }
    out
}

fn type_label(data_type: &Value) -> String {
    let t = text(data_type, "type");
    let config = data_type.get("config");
    let flag = |k| config.and_then(|c| c.get(k)) == Some(&Value::Bool(true));
    let mut label = t.to_string();
    if t == "set" {
        let items = data_type.get("items").map_or("", |i| text(i, "type"));
        label = format!("set<{items}>");
    }
    if flag("optional") {
        label.push_str(", optional");
    }
    if flag("nullable") {
        label.push_str(", nullable");
    }
    label
}

/// One line per diff entry (`{_diff: 'collectionAttribute', …}` and the
/// relationship, permission and role entries).
pub fn diff(entries: &[Value]) -> String {
    let mut out = String::new();
    for d in entries {
        let collection = text(d, "collection");
        let line = match text(d, "_diff") {
            "collectionAttribute" => {
                let path = attribute_path(d);
                match text(d, "type") {
                    "insert" => {
                        let data_type = d.get("dataType").unwrap_or(&Value::Null);
                        let new = if d.get("isNewCollection") == Some(&Value::Bool(true)) {
                            " (new collection)"
                        } else {
                            ""
                        };
                        format!("+ {collection}.{path}: {}{new}", type_label(data_type))
                    }
                    "delete" => {
                        let data_type = d.get("dataType").unwrap_or(&Value::Null);
                        format!("- {collection}.{path}: {}", type_label(data_type))
                    }
                    _ => {
                        let changes = d.get("changes").cloned().unwrap_or(Value::Null);
                        format!("~ {collection}.{path}: {changes}")
                    }
                }
            }
            "collectionRelationships" => format!("~ {collection}: relationships changed"),
            "collectionPermissions" => format!("~ {collection}: permissions changed"),
            "roles" => "~ roles changed".to_string(),
            other => format!("? {other}: {d}"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused() -> Value {
        json!({
            "successful": false,
            "code": "EXISTING_DATA_MISMATCH",
            "message": "Schema update failed due to existing data violations.",
            "issues": [{
                "issue": "added an attribute where optional is not set",
                "dataConstraint": "collection_is_empty",
                "context": {"_diff": "collectionAttribute", "collection": "todos",
                            "type": "insert", "attribute": ["n"]},
                "violatesExistingData": true,
                "cure": "make 'n' optional or delete all entities in 'todos' to allow this edit"
            }],
            "diff": [{"_diff": "collectionAttribute", "collection": "todos", "type": "insert",
                      "attribute": ["n"], "dataType": {"type": "number", "config": {}},
                      "isNewCollection": false}]
        })
    }

    #[test]
    fn a_refusal_names_code_issue_and_cure() {
        let change = refused();
        assert!(!successful(&change));
        let text = refusal(&change);
        assert!(text.contains("[EXISTING_DATA_MISMATCH]"), "{text}");
        assert!(text.contains("Collection 'todos'"), "{text}");
        assert!(
            text.contains(
                "'n': added an attribute where optional is not set (existing data violates it)"
            ),
            "{text}"
        );
        assert!(text.contains("fix:   make 'n' optional"), "{text}");
    }

    #[test]
    fn diff_lines_show_what_changed() {
        let change = refused();
        let lines = diff(change["diff"].as_array().unwrap());
        assert_eq!(lines, "+ todos.n: number\n");
        let more = vec![
            json!({"_diff": "collectionAttribute", "collection": "t", "type": "delete",
                   "attribute": ["a", "b"], "dataType": {"type": "set", "items": {"type": "string"},
                   "config": {"optional": true}}}),
            json!({"_diff": "roles"}),
        ];
        assert_eq!(
            diff(&more),
            "- t.a.b: set<string>, optional\n~ roles changed\n"
        );
        assert_eq!(diff_len(&change), 1);
    }
}
