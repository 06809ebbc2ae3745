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

/// Records `stamp` as the clock's floor inside `txn`.
pub fn persist_clock(txn: &mut dyn WriteTxn, stamp: Hlc) -> Result<(), StoreError> {
    txn.put(CLOCK_KEY, &stamp.to_bytes())
}

/// The highest clock value persisted, or [`Hlc::ZERO`].
pub fn load_clock_floor(txn: &dyn ReadTxn) -> Result<Hlc, StoreError> {
    Ok(txn
        .get(CLOCK_KEY)?
        .and_then(|b| Hlc::from_bytes(&b))
        .unwrap_or(Hlc::ZERO))
}
