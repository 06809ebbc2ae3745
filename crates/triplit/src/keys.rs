//! Where Triplit data lives in the ordered store.
//!
//! | key | value |
//! |---|---|
//! | `("triplit", "e", collection, id)` | the entity, one JSON document |
//! | `("triplit", "t", collection, id)` | the entity's last-write timestamp (12-byte HLC); kept after deletes |
//! | `("triplit", "schema")` | the schema JSON (also stored as the entity `_metadata/_schema`, `{id: "_schema", ...schema}`, written with it in one transaction) |
//! | `("triplit", "g", collection, id)` | the set items a deleted entity had, all `false` (`db/ghosts.rs`); removed when the id is inserted again |
//! | `("triplit", "i", collection, path, encoded value, id)` | empty: one attribute-index entry (see `indexes`) |
//! | `("triplit", "ix")` | the index registry: which `(collection, path)` indexes are maintained |
//!
//! Ids sort by their UTF-8 bytes, which is Unicode code-point order: the
//! order upstream's key-value stores scan in (triplit.md Appendix C).

use ferry_store::key::{KeyBuf, Part, decode};

const ROOT: &str = "triplit";

fn root() -> KeyBuf {
    KeyBuf::new().str(ROOT)
}

/// The key of an entity document.
pub fn entity(collection: &str, id: &str) -> Vec<u8> {
    root().str("e").str(collection).str(id).finish()
}

/// The prefix of every entity document.
pub fn all_entities() -> Vec<u8> {
    root().str("e").finish()
}

/// The prefix of a collection's entity documents.
pub fn collection(collection: &str) -> Vec<u8> {
    root().str("e").str(collection).finish()
}

/// The key of an entity's last-write timestamp.
pub fn timestamp(collection: &str, id: &str) -> Vec<u8> {
    root().str("t").str(collection).str(id).finish()
}

/// The prefix of every entity timestamp.
pub fn all_timestamps() -> Vec<u8> {
    root().str("t").finish()
}

/// The key of the set items remembered from a deleted entity.
pub fn ghost(collection: &str, id: &str) -> Vec<u8> {
    root().str("g").str(collection).str(id).finish()
}

/// The key of the stored schema.
pub fn schema() -> Vec<u8> {
    root().str("schema").finish()
}

/// The key of the read-stamp lease earlier versions kept (Unix ms, 8 bytes
/// big-endian); read once at open and removed.
pub fn clock_lease() -> Vec<u8> {
    root().str("lease").finish()
}

/// The prefix of every attribute-index entry.
pub fn all_index_entries() -> Vec<u8> {
    root().str("i").finish()
}

/// The prefix of a collection's index entries.
pub fn collection_index(collection: &str) -> Vec<u8> {
    root().str("i").str(collection).finish()
}

/// The prefix of the entries of the index on `path` of `collection`.
pub fn index(collection: &str, path: &str) -> Vec<u8> {
    root().str("i").str(collection).str(path).finish()
}

/// An index entry: the index prefix, the order-preserving encoded value
/// (`indexes::encode`) and the entity id.
pub fn index_entry(collection: &str, path: &str, encoded: &[u8], id: &str) -> Vec<u8> {
    root()
        .str("i")
        .str(collection)
        .str(path)
        .raw(encoded)
        .str(id)
        .finish()
}

/// The key of the index registry.
pub fn index_registry() -> Vec<u8> {
    root().str("ix").finish()
}

/// Splits an entity key into `(collection, id)`.
pub fn parse_entity(key: &[u8]) -> Option<(String, String)> {
    let mut parts = decode(key)?.into_iter();
    match (parts.next()?, parts.next()?, parts.next()?, parts.next()?) {
        (Part::Str(r), Part::Str(e), Part::Str(c), Part::Str(id)) if r == ROOT && e == "e" => {
            Some((c, id))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_keys_round_trip_and_sort_by_code_point() {
        let k = entity("todos", "z😀");
        assert_eq!(parse_entity(&k), Some(("todos".into(), "z😀".into())));
        // Appendix C: zé < zＡ < z😀 (code-point order, not UTF-16 order).
        let mut ids = ["z😀", "zＡ", "zé"].map(|id| entity("c", id));
        ids.sort();
        assert_eq!(ids, ["zé", "zＡ", "z😀"].map(|id| entity("c", id)));
        assert!(collection("c").len() < entity("c", "").len());
    }
}
