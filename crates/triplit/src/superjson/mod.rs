//! The SuperJSON codec for `DBChanges`.
//!
//! Upstream sends `changes` (in `CHANGES`, `ENTITY_DATA` and
//! `/apply-changes`) as `SuperJSON.serialize(changes)` with superjson 2.x,
//! where `changes` is `{[collection]: {sets: Map<id, entity|patch>,
//! deletes: Set<id>}}`. The payload is `{json, meta?}`:
//!
//! - `json` is plain JSON: a `Map` becomes an array of `[key, value]` pairs,
//!   a `Set` an array, `undefined` `null`, `NaN`/`±Infinity`/`-0` the
//!   strings `"NaN"`, `"Infinity"`, `"-Infinity"`, `"-0"`, and a `Date` its
//!   ISO string;
//! - `meta.values` says which paths to turn back: a tree whose keys are
//!   dotted paths (`.` and `\` escaped as `\.` and `\\`, see
//!   [`escape_path_segment`]) and whose leaves are `[type]` or
//!   `[type, {relative path: subtree}]`, e.g.
//!   `{"todos.sets": ["map", {"0.1.due": ["undefined"]}], "todos.deletes": ["set"]}`;
//! - `meta.v` is `1` since superjson 2.2.3; without it (2.2.2 and older
//!   clients) paths use the legacy escaping, where only `\.` is an escape
//!   and backslashes are not escaped;
//! - `meta.referentialEqualities` marks repeated object instances. The JSON
//!   holds full copies anyway, so it is ignored here.
//!
//! [`decode_changes`] follows `SuperJSON.deserialize` and then reads the
//! result the way Ferry stores it (what `JSON.stringify` would keep):
//! `undefined` → `null` (= unset), `["number"]` → the number, with `NaN`
//! and `±Infinity` → `null` and `-0` → `0`, `["Date"]` → the ISO string as
//! sent. It is more lenient than upstream about structure (see
//! [`decode_changes`]). [`encode_changes`] produces exactly what
//! `SuperJSON.serialize` produces for a `DBChanges` built from `Map`s and
//! `Set`s (checked against superjson 2.2.7 by the fixtures under
//! `tests/fixtures/superjson/`).
//!
//! Layout: `paths.rs` (annotation paths), `decode.rs` (payload → changes),
//! `encode.rs` (changes → payload, in JS key order).

mod decode;
mod encode;
mod paths;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::error::TriplitError;

pub use decode::decode_changes;
pub use encode::{encode_changes, encode_changes_text, encode_set_entry};
pub use paths::{escape_path_segment, join_annotation_path, split_annotation_path};

/// `baseMessage` of the error [`decode_changes`] returns.
pub const DESERIALIZATION_ERROR_MESSAGE: &str =
    "There was an error deserializing an input to an acceptable format.";

/// Annotation trees nested deeper than this are rejected (upstream would
/// overflow its stack; `serde_json` parsing already stops at 128).
pub(super) const MAX_TREE_DEPTH: usize = 256;

/// `2^53`: integers beyond this magnitude are not exact doubles.
pub(super) const MAX_SAFE_INTEGER_PLUS_ONE: u64 = 1 << 53;

/// One collection's `sets`: `(id, change)` in order.
pub(super) type Sets = Vec<(String, Map<String, Value>)>;

/// The `DBDeserializationError` (400) for a payload that is not a
/// well-formed SuperJSON `DBChanges`; `context` says what and where.
pub fn deserialization_error(context: impl Into<String>) -> TriplitError {
    TriplitError::new(
        "DBDeserializationError",
        400,
        DESERIALIZATION_ERROR_MESSAGE,
        Some(context.into()),
    )
}
