//! Persisting the hybrid logical clock through the store.
//!
//! Every write transaction that stamps data with the clock also records the
//! stamp under [`CLOCK_KEY`]; at start the clock resumes above the stored
//! value, so timestamps never regress across restarts.

use ferry_core::Hlc;

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

/// The highest clock value persisted, or [`Hlc::ZERO`].
pub fn load_clock_floor(txn: &dyn ReadTxn) -> Result<Hlc, StoreError> {
    Ok(txn
        .get(CLOCK_KEY)?
        .and_then(|b| Hlc::from_bytes(&b))
        .unwrap_or(Hlc::ZERO))
}
