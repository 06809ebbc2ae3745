//! The Triplit protocol on Ferry.
//!
//! This crate owns everything Triplit-specific: the data model (one JSON
//! document per entity, deep-merge patches, sets as `{item: bool}`), the
//! schema and its types, the SuperJSON change codec, the query language
//! and its evaluation, permissions, and transport-independent handlers for
//! the HTTP routes. The server crate only translates HTTP/WebSocket to
//! calls here.

pub mod changes;
pub mod db;
pub mod error;
pub mod http;
pub mod ids;
pub mod indexes;
pub mod jsnum;
pub mod keys;
pub mod merge;
pub mod permissions;
pub mod query;
pub mod schema;
pub mod session;
pub mod superjson;
pub mod sync;
pub mod types;

pub use changes::{CollectionChanges, DbChanges};
pub use error::TriplitError;
