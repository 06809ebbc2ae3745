//! Ferry's storage contract.
//!
//! A [`Store`] is one ordered key-value space (byte keys compared as
//! unsigned bytes) with
//! - consistent read transactions ([`ReadTxn`]) that can point-read and
//!   range-scan in either direction,
//! - serialisable write transactions ([`WriteTxn`]) that read their own
//!   writes, commit atomically and are acknowledged only once durable,
//! - a health signal ([`Store::health`]) saying whether the backend can
//!   be reached, which the layers above consume without knowing the
//!   backend,
//! - an ordered change feed: a write transaction may append one payload,
//!   which receives the next sequence number at commit and can be read back
//!   with [`Store::changes_since`]; [`Store::watch`] wakes followers.
//!
//! Protocol crates build their own tables and indexes on this with the
//! order-preserving tuple encoding in [`key`]. Transactions run as closures
//! on the backend's own threads so that query evaluation does not hop
//! threads per key and never blocks the async runtime.
//!
//! Invariants: this crate contains no SQL and names no concrete backend
//! other than the in-memory one; every backend passes [`conformance`]
//! (feature `conformance`).

mod clock;
mod error;
mod health;
pub mod key;
mod memory;
mod txn;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use clock::{CLOCK_KEY, load_clock_floor, persist_clock, take_stamp};
pub use error::StoreError;
pub use health::{Backoff, Health, always_available, wait_unavailable};
pub use memory::MemoryStore;
pub use txn::{
    Change, KeyRange, OnCommit, ReadFn, ReadTxn, ScanVisitor, Store, StoreExt, WriteFn,
    WriteOutcome, WriteTxn,
};
