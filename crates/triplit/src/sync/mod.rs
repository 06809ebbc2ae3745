//! Triplit's realtime sync protocol (WebSocket), transport-independent.
//!
//! [`SyncConnection`] is one client's session: it turns incoming text
//! frames into replies (`CHANGES_ACK`, `ERROR`, `PONG`, the first
//! `ENTITY_DATA` of a query) and, after commits, computes the
//! `ENTITY_DATA` diff of the union of its queries' closures ([`view`]).
//! The server crate owns the socket, timers and fan-out of commits.

mod chunks;
mod closure;
mod connection;
mod entity_key;
mod maintained;
pub mod protocol;
pub mod roles;
pub mod settle;
mod shared;
pub mod view;

pub use chunks::{Chunks, json_string_units, raw_chunk_data};
pub use closure::Subscription;
pub use connection::{Outbound, SyncConnection, close, close_retry, entity_data};
pub use entity_key::EntityKey;
pub use protocol::CloseReason;
pub use shared::{SharedResult, SharedResults};
