//! Persisting the hybrid logical clock through the store.
//!
//! Every write transaction that stamps data with the clock also records the
//! stamp under [`CLOCK_KEY`]; at start the clock resumes above the stored
//! value, so timestamps never regress across restarts.
//!
//! [`take_stamp`] stamps a write inside its transaction after observing
//! the stored floor. Backends run write transactions one at a time (the
//! SQLite writer thread, PostgreSQL's cluster-wide write lock), so write
//! stamps increase in commit order across every node sharing the store,
//! and the floor a read snapshot holds is the stamp of the last write it
//! contains: every write stamped up to it is in the snapshot, every write
//! not in it is stamped above it.

use ferry_core::{Hlc, HybridClock};

use crate::{ReadTxn, StoreError, WriteTxn};

/// The key holding the highest persisted clock value. It sorts before every
/// tuple-encoded key (those start with a type tag ≥ 0x01).
pub const CLOCK_KEY: &[u8] = b"\x00clock";

/// Records `stamp` as the clock's floor inside `txn`, unless a higher
/// floor is already stored (several nodes share one store: a node's stamp
/// may be below another's, and the floor must never move down).
pub fn persist_clock(txn: &mut dyn WriteTxn, stamp: Hlc) -> Result<(), StoreError> {
    let stored = txn
        .get(CLOCK_KEY)?
        .and_then(|b| Hlc::from_bytes(&b))
        .unwrap_or(Hlc::ZERO);
    if stamp > stored {
        txn.put(CLOCK_KEY, &stamp.to_bytes())?;
    }
    Ok(())
}

/// The next write stamp of `clock`, taken inside `txn` above the floor any
/// node stored, and recorded as the new floor.
pub fn take_stamp(txn: &mut dyn WriteTxn, clock: &HybridClock) -> Result<Hlc, StoreError> {
    if let Some(stored) = txn.get(CLOCK_KEY)?.and_then(|b| Hlc::from_bytes(&b)) {
        clock.observe(stored);
    }
    let stamp = clock.next();
    txn.put(CLOCK_KEY, &stamp.to_bytes())?;
    Ok(stamp)
}

/// The highest clock value persisted, or [`Hlc::ZERO`].
pub fn load_clock_floor(txn: &dyn ReadTxn) -> Result<Hlc, StoreError> {
    Ok(txn
        .get(CLOCK_KEY)?
        .and_then(|b| Hlc::from_bytes(&b))
        .unwrap_or(Hlc::ZERO))
}
