//! The query errors upstream's preparation throws, with its names,
//! statuses and messages.
//!
//! Upstream's constructors put their first argument into different places:
//! some into the `contextMessage`, some (limit, after, where, inclusion)
//! into the `baseMessage` through `JSON.stringify`. The shapes below follow
//! each constructor.

use serde_json::Value;

use crate::TriplitError;
use crate::types::js::{js_json_stringify, js_string};

fn bad(name: &'static str, base: impl Into<String>, context: Option<String>) -> TriplitError {
    TriplitError::new(name, 400, base, context)
}

/// `InvalidFilterError(context)`.
pub fn invalid_filter(context: impl Into<String>) -> TriplitError {
    bad(
        "InvalidFilterError",
        "Your query passed a filter that is invalid.",
        Some(context.into()),
    )
}

/// `InvalidCollectionNameError(name, context)`.
pub fn invalid_collection(name: Option<&Value>, context: &str) -> TriplitError {
    TriplitError::invalid_collection_name(&js_string(name), Some(context.into()))
}

/// `InvalidSelectClauseError(context)`.
pub fn invalid_select(context: String) -> TriplitError {
    bad(
        "InvalidSelectClauseError",
        "The select clause of this query has been determined to be invalid.",
        Some(context),
    )
}

/// `InvalidOrderClauseError(context)`.
pub fn invalid_order(context: String) -> TriplitError {
    bad(
        "InvalidOrderClauseError",
        "An order clause has been determined to be invalid.",
        Some(context),
    )
}

/// `InvalidQueryLimitError(message)`: the message lands in the base
/// message as JSON.
pub fn invalid_limit(message: &str) -> TriplitError {
    bad(
        "InvalidQueryLimitError",
        format!(
            "A limit was provided to a query that is not valid or could not be transformed into a valid limit. The limit was: {}",
            js_json_stringify(&Value::String(message.into()))
        ),
        None,
    )
}

/// `InvalidQueryAfterError(message)`.
pub fn invalid_after(message: &str) -> TriplitError {
    bad(
        "InvalidQueryAfterError",
        format!(
            "An after cursor was provided to a query that is not valid or could not be transformed into a valid after cursor. The after cursor was: {}",
            js_json_stringify(&Value::String(message.into()))
        ),
        None,
    )
}

/// `InvalidQueryWhereError(where, context)`.
pub fn invalid_where(where_: &Value, context: &str) -> TriplitError {
    bad(
        "InvalidQueryWhereError",
        format!(
            "A where clause was provided to a query that is not valid or could not be transformed into a valid where clause. The where clause was: {}",
            js_json_stringify(where_)
        ),
        Some(context.into()),
    )
}

/// `InvalidQueryInclusionError(inclusion)`.
pub fn invalid_inclusion(inclusion: &Value) -> TriplitError {
    bad(
        "InvalidQueryInclusionError",
        format!(
            "An inclusion was provided to a query that is not valid or could not be transformed into a valid inclusion. The inclusion was: {}",
            js_json_stringify(inclusion)
        ),
        None,
    )
}

/// `InvalidQueryCardinalityError(cardinality)`.
pub fn invalid_cardinality(cardinality: Option<&Value>) -> TriplitError {
    bad(
        "InvalidQueryCardinalityError",
        format!(
            "The cardinality {} is not valid for the query type.",
            js_string(cardinality)
        ),
        None,
    )
}

/// `RelationDoesNotExistError(relation, alias, collection)`.
pub fn relation_does_not_exist(relation: &str, alias: &str, collection: &str) -> TriplitError {
    bad(
        "RelationDoesNotExistError",
        format!(
            "Your attempt to load '{relation}' at alias '{alias}' failed because '{relation}' does not exist in the schema for the collection '{collection}'."
        ),
        None,
    )
}

/// `IncludedNonRelationError(relation, alias, collection)`.
pub fn included_non_relation(relation: &str, alias: &str, collection: &str) -> TriplitError {
    bad(
        "IncludedNonRelationError",
        format!(
            "Your attempt to load '{relation}' at alias '{alias}' failed because '{relation}' in the collection '{collection}' in not a query type."
        ),
        None,
    )
}

/// A plain `TriplitError` (500) where upstream throws one without a class,
/// or crashes with a JavaScript error.
pub fn engine(context: impl Into<String>) -> TriplitError {
    TriplitError::internal(context)
}
