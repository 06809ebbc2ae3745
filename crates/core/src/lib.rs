//! Pure domain primitives shared by every Ferry crate.
//!
//! This crate does no I/O of its own. Time and randomness enter through the
//! [`TimeSource`] and [`RandomSource`] traits so that tests can control them;
//! the hybrid logical clock ([`HybridClock`]) is built on top of them.
//!
//! Invariant: nothing here depends on tokio, a storage engine or a wire
//! protocol.

mod hlc;
mod random;
mod time;

pub use hlc::{Hlc, HybridClock, READ_SLOTS};
pub use random::{RandomSource, SeededRandom, SystemRandom};
pub use time::{ManualTime, SystemTime, TimeSource};
