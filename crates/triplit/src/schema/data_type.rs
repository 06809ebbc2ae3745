//! The data types of a Triplit schema (`{"type": …, "config": …}` JSON)
//! as Rust values.
//!
//! Parsing here is for schemas that already passed
//! [`validation`](super::validation); it reads the config the way upstream's
//! type code does (`optional`/`nullable` count only when `=== true`, a
//! `default` of `null` is no default, a default object with a `func` key is
//! a default function).

use serde_json::Value;

use crate::types::js::{js_entries, js_get};

/// A default function of `config.default: {func, args}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultFunc {
    /// `now`: the current time as an ISO string.
    Now,
    /// `nanoid`: a nanoid, `args[0]` characters long when given (21 otherwise).
    Nanoid,
    /// `uuid` (deprecated): upstream generates a **nanoid** for it.
    Uuid,
    /// `uuidv4`: a random UUID.
    UuidV4,
    /// `uuidv7`: a time-ordered UUID.
    UuidV7,
    /// `Set.empty`: the empty set `{}`.
    SetEmpty,
}

impl DefaultFunc {
    /// The function for its schema identifier.
    pub fn from_id(id: &str) -> Option<Self> {
        Some(match id {
            "now" => Self::Now,
            "nanoid" => Self::Nanoid,
            "uuid" => Self::Uuid,
            "uuidv4" => Self::UuidV4,
            "uuidv7" => Self::UuidV7,
            "Set.empty" => Self::SetEmpty,
            _ => return None,
        })
    }

    /// The schema identifier.
    pub fn id(self) -> &'static str {
        match self {
            Self::Now => "now",
            Self::Nanoid => "nanoid",
            Self::Uuid => "uuid",
            Self::UuidV4 => "uuidv4",
            Self::UuidV7 => "uuidv7",
            Self::SetEmpty => "Set.empty",
        }
    }
}

/// `config.default`.
#[derive(Debug, Clone, PartialEq)]
pub enum DefaultValue {
    /// A value used as given (a string, number, boolean, or for `json` and
    /// `set` any object or array without a `func` key).
    Literal(Value),
    /// A default function and its raw `args`.
    Func {
        /// Which function.
        func: DefaultFunc,
        /// `args` as given (`null`, absent or an array).
        args: Option<Value>,
    },
}

/// The `config` of a type.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TypeConfig {
    /// `config.optional === true` (`S.Optional`).
    pub optional: bool,
    /// `config.nullable === true`.
    pub nullable: bool,
    /// `config.default` unless absent or `null`.
    pub default: Option<DefaultValue>,
    /// `config.enum` of a string type.
    pub enum_values: Option<Vec<String>>,
}

impl TypeConfig {
    fn from_json(config: Option<&Value>) -> Self {
        let Some(c) = config.filter(|c| c.is_object()) else {
            return Self::default();
        };
        let default = match c.get("default") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) if m.contains_key("func") => {
                let func = m
                    .get("func")
                    .and_then(Value::as_str)
                    .and_then(DefaultFunc::from_id);
                func.map(|func| DefaultValue::Func {
                    func,
                    args: m.get("args").cloned(),
                })
            }
            Some(v) => Some(DefaultValue::Literal(v.clone())),
        };
        Self {
            optional: c.get("optional") == Some(&Value::Bool(true)),
            nullable: c.get("nullable") == Some(&Value::Bool(true)),
            default,
            enum_values: c.get("enum").and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            }),
        }
    }
}

/// A schema data type.
#[derive(Debug, Clone, PartialEq)]
pub enum DataType {
    /// `string`.
    String(TypeConfig),
    /// `number` (a double).
    Number(TypeConfig),
    /// `boolean`.
    Boolean(TypeConfig),
    /// `date`, stored as an ISO string.
    Date(TypeConfig),
    /// `set` of a primitive type, stored as `{key: bool}`.
    Set {
        /// The item type (string, number, boolean or date).
        items: Box<DataType>,
        /// The set's own config.
        config: TypeConfig,
    },
    /// `record`: nested properties, in schema (JS) order.
    Record {
        /// `(name, type)` in order.
        properties: Vec<(String, DataType)>,
        /// The record's config.
        config: TypeConfig,
    },
    /// `json`: any JSON, stored raw.
    Json(TypeConfig),
}

impl DataType {
    /// Parses a type of a validated schema; `None` for what validation rejects.
    pub fn from_json(v: &Value) -> Option<DataType> {
        let config = TypeConfig::from_json(js_get(v, "config"));
        Some(match js_get(v, "type")?.as_str()? {
            "string" => DataType::String(config),
            "number" => DataType::Number(config),
            "boolean" => DataType::Boolean(config),
            "date" => DataType::Date(config),
            "json" => DataType::Json(config),
            "set" => {
                let items = DataType::from_json(js_get(v, "items")?)?;
                if !items.is_primitive() {
                    return None;
                }
                DataType::Set {
                    items: Box::new(items),
                    config,
                }
            }
            "record" => {
                let props = js_get(v, "properties").filter(|p| p.is_object() || p.is_array())?;
                let properties = js_entries(props)
                    .into_iter()
                    .map(|(k, t)| DataType::from_json(t).map(|t| (k, t)))
                    .collect::<Option<Vec<_>>>()?;
                DataType::Record { properties, config }
            }
            _ => return None,
        })
    }

    /// The type's config.
    pub fn config(&self) -> &TypeConfig {
        match self {
            DataType::String(c)
            | DataType::Number(c)
            | DataType::Boolean(c)
            | DataType::Date(c)
            | DataType::Json(c) => c,
            DataType::Set { config, .. } | DataType::Record { config, .. } => config,
        }
    }

    /// The schema's `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            DataType::String(_) => "string",
            DataType::Number(_) => "number",
            DataType::Boolean(_) => "boolean",
            DataType::Date(_) => "date",
            DataType::Set { .. } => "set",
            DataType::Record { .. } => "record",
            DataType::Json(_) => "json",
        }
    }

    /// The name upstream's errors use: the type, or `set<item>` for sets.
    pub fn error_label(&self) -> String {
        match self {
            DataType::Set { items, .. } => format!("set<{}>", items.type_name()),
            other => other.type_name().to_owned(),
        }
    }

    /// Upstream's `isOptional`: `optional` or `nullable` is `true`; such a
    /// property may be absent or `null`.
    pub fn is_optional(&self) -> bool {
        let c = self.config();
        c.optional || c.nullable
    }

    /// String, number, boolean or date (what a set may hold).
    pub fn is_primitive(&self) -> bool {
        matches!(
            self,
            DataType::String(_) | DataType::Number(_) | DataType::Boolean(_) | DataType::Date(_)
        )
    }

    /// A record's properties in order; `None` for other types.
    pub fn properties(&self) -> Option<&[(String, DataType)]> {
        match self {
            DataType::Record { properties, .. } => Some(properties),
            _ => None,
        }
    }

    /// A record's property by name.
    pub fn property(&self, name: &str) -> Option<&DataType> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, t)| t)
    }

    /// The type at a dotted path of record properties (`["meta", "prio"]`).
    pub fn path<'a>(&self, path: impl IntoIterator<Item = &'a str>) -> Option<&DataType> {
        path.into_iter().try_fold(self, |t, p| t.property(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_types_and_config() {
        let t = DataType::from_json(&json!({"type":"record","config":{},"properties":{
            "id":{"type":"string","config":{"nullable":false,"default":{"func":"nanoid","args":null}}},
            "tags":{"type":"set","items":{"type":"number","config":{}},"config":{"optional":true}},
            "e":{"type":"string","config":{"enum":["a","b"],"default":"a"}},
            "1":{"type":"json"}}}))
        .expect("valid");
        let names: Vec<_> = t
            .properties()
            .unwrap_or_default()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(names, ["1", "id", "tags", "e"]);
        let id = t.property("id").expect("id");
        assert!(!id.is_optional());
        assert_eq!(
            id.config().default,
            Some(DefaultValue::Func {
                func: DefaultFunc::Nanoid,
                args: Some(Value::Null)
            })
        );
        assert_eq!(
            t.property("tags").map(DataType::error_label).as_deref(),
            Some("set<number>")
        );
        assert!(t.property("tags").is_some_and(DataType::is_optional));
        let e = t.property("e").expect("e");
        assert_eq!(e.config().enum_values, Some(vec!["a".into(), "b".into()]));
        assert_eq!(e.config().default, Some(DefaultValue::Literal(json!("a"))));
        assert!(DataType::from_json(&json!({"type":"set","items":{"type":"json"}})).is_none());
        assert!(DataType::from_json(&json!({"type":"int"})).is_none());
    }
}
