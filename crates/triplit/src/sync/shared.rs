//! Results shared across connections.
//!
//! After a commit, every connection subscribed to the same prepared query
//! (same tree, same bound permissions) needs the same closure. The first
//! connection to refresh computes it and leaves it here; the others reuse
//! it when it is at least as fresh as what they know about. A result is
//! stored with the change-feed position read before its snapshot (`seq`:
//! every commit up to it is included) and the read stamp taken before the
//! snapshot (`stamp`: every write stamped below it is included), so a
//! connection may reuse it when `seq` covers the commits it was told about
//! and `stamp` is above the last stamp it sent (clients ignore data stamped
//! at or below what they hold).

use std::collections::HashMap;
use std::sync::Arc;

use ferry_core::Hlc;
use parking_lot::Mutex;

use super::view::HashedClosure;
use crate::query::PreparedQuery;

/// Distinct prepared queries kept before the table is cleared.
const MAX_QUERIES: usize = 10_000;

/// One computed closure.
#[derive(Debug, Clone)]
pub struct SharedResult {
    /// Every commit up to this feed position is reflected.
    pub seq: u64,
    /// Every write stamped below this is reflected.
    pub stamp: Hlc,
    /// The closure.
    pub closure: Arc<HashedClosure>,
}

/// The table, one per process.
#[derive(Debug, Default)]
pub struct SharedResults {
    by_hash: Mutex<HashMap<u32, Vec<(PreparedQuery, SharedResult)>>>,
}

impl SharedResults {
    /// A result for `query` covering `known_seq` and stamped after `after`.
    pub fn get(&self, query: &PreparedQuery, known_seq: u64, after: Hlc) -> Option<SharedResult> {
        let map = self.by_hash.lock();
        map.get(&query.hash())?
            .iter()
            .find(|(q, r)| r.seq >= known_seq && r.stamp > after && q.same_as(query))
            .map(|(_, r)| r.clone())
    }

    /// Stores a freshly computed result (replacing an older one).
    pub fn put(&self, query: &PreparedQuery, result: SharedResult) {
        let mut map = self.by_hash.lock();
        if map.len() >= MAX_QUERIES {
            map.clear();
        }
        let slot = map.entry(query.hash()).or_default();
        match slot.iter_mut().find(|(q, _)| q.same_as(query)) {
            Some((_, existing)) => {
                if result.seq >= existing.seq && result.stamp > existing.stamp {
                    *existing = result;
                }
            }
            None => slot.push((query.clone(), result)),
        }
    }
}
